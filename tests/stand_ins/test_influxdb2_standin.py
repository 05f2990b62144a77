"""The InfluxDB 2 stand-in, driven by the real influxdb-client and by raw HTTP for the error paths."""

from __future__ import annotations

import gzip
import warnings

import pytest
import requests
from influxdb_client import InfluxDBClient, Permission, PermissionResource
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.rest import ApiException

from .influxdb2 import InfluxDB2StandIn, LineProtocolError, Point, parse_line_protocol

warnings.filterwarnings("ignore", module="influxdb_client")

S = 1_000_000_000  # nanoseconds per second


@pytest.fixture
def client(influx2):
    with InfluxDBClient(url=influx2.url, token=influx2.admin_token, org=influx2.org, timeout=2000) as c:
        yield c


@pytest.fixture
def bucket(client, influx2):
    return client.buckets_api().create_bucket(bucket_name="energy", org=influx2.org)


def write(influx2, body, token=None, bucket="energy", precision="s", **extra):
    params = {"org": influx2.org, "bucket": bucket, "precision": precision, **extra}
    return requests.post(
        f"{influx2.url}/api/v2/write",
        params=params,
        data=body,
        headers={"Authorization": f"Token {token or influx2.admin_token}"},
        timeout=2,
    )


def body_of(exc) -> str:
    """ApiException.body is str for most calls, bytes for queries."""
    body = exc.value.body
    return body.decode() if isinstance(body, bytes) else body


def token_for(client, influx2, bucket, *actions):
    perms = [
        Permission(action=a, resource=PermissionResource(type="buckets", id=bucket.id, org_id=influx2.org_id))
        for a in actions
    ]
    return client.authorizations_api().create_authorization(org_id=influx2.org_id, permissions=perms)


# ------------------------------------------------------------------ with the real client


def test_health_and_ping_need_no_token(influx2):
    assert requests.get(f"{influx2.url}/health", timeout=2).json()["status"] == "pass"
    ping = requests.get(f"{influx2.url}/ping", timeout=2)
    assert ping.status_code == 204 and ping.headers["X-Influxdb-Build"] == "OSS"


def test_bucket_create_find_delete_with_the_client(client, influx2):
    api = client.buckets_api()
    created = api.create_bucket(bucket_name="energy", org=influx2.org)
    assert created.org_id == influx2.org_id and len(created.id) == 16
    assert influx2.buckets["energy"]["id"] == created.id
    assert api.find_bucket_by_name("energy").id == created.id
    assert api.find_bucket_by_name("missing") is None  # no org given: a listing
    assert {b.name for b in api.find_buckets().buckets} == {"_monitoring", "_tasks", "energy"}
    with pytest.raises(ApiException) as exc:  # name AND org: a lookup
        api.find_buckets(name="missing", org=influx2.org)
    assert exc.value.status == 404 and 'bucket \\"missing\\" not found' in body_of(exc)
    with pytest.raises(ApiException) as exc:
        api.create_bucket(bucket_name="energy", org=influx2.org)
    assert exc.value.status == 422 and '"code":"conflict"' in body_of(exc)
    api.delete_bucket(created)
    assert "energy" not in influx2.buckets
    with pytest.raises(ApiException) as exc:
        api.delete_bucket(created.id)
    assert exc.value.status == 404


@pytest.mark.parametrize(
    "name, fragment", [("_internal", "may not start with underscore"), ('say"hi', "may not include quotation marks")]
)
def test_bucket_name_rules(client, influx2, name, fragment):
    with pytest.raises(ApiException) as exc:
        client.buckets_api().create_bucket(bucket_name=name, org=influx2.org)
    assert exc.value.status == 400 and fragment in body_of(exc)
    assert name not in influx2.buckets


def test_write_through_the_gzip_client_at_precision_s(influx2, bucket):
    with InfluxDBClient(url=influx2.url, token=influx2.admin_token, org=influx2.org, enable_gzip=True) as c:
        c.write_api(write_options=SYNCHRONOUS).write(
            bucket="energy",
            write_precision="s",
            record=["power,channel=M1\\ U1 P=1.5,E=3i 1700000000", "power,channel=M1\\ U1 P=2.5 1700000000"],
        )
    last = influx2.requests[-1]
    assert last.headers["Content-Encoding"] == "gzip" and last.status == 204
    assert last.body.startswith(b"power,channel=M1\\ U1 P=1.5")  # recorded decompressed
    assert influx2.points("energy") == [
        Point("power", {"channel": "M1 U1"}, {"P": 1.5, "E": 3}, 1700000000 * S),
        Point("power", {"channel": "M1 U1"}, {"P": 2.5}, 1700000000 * S),
    ]
    latest = influx2.latest("energy")  # last write wins
    assert latest[("power", (("channel", "M1 U1"),), "P", 1700000000 * S)].fields == {"P": 2.5}
    assert influx2.schema("energy") == {("power", "P"): "float", ("power", "E"): "integer"}


def test_authorizations_create_find_patch_delete(client, influx2, bucket):
    api = client.authorizations_api()
    auth = token_for(client, influx2, bucket, "write")
    assert len(auth.token) == 88 and auth.permissions[0].resource.name == "energy"
    listed = {a.id: a for a in api.find_authorizations()}
    assert set(listed) == {a["id"] for a in influx2.authorizations} and listed[auth.id].token == auth.token
    assert len(listed) == 2  # the operator token is listed too
    auth.status = "inactive"
    assert api.update_authorization(auth).status == "inactive"
    api.delete_authorization(auth)
    assert auth.id not in {a["id"] for a in influx2.authorizations}
    with pytest.raises(ApiException) as exc:
        api.find_authorization_by_id(auth.id)
    assert exc.value.status == 404 and "authorization not found" in body_of(exc)


def test_redacted_tokens_except_in_the_creation_answer():
    with (
        InfluxDB2StandIn(redact_tokens=True) as influx2,
        InfluxDBClient(url=influx2.url, token=influx2.admin_token, org=influx2.org) as client,
    ):
        b = client.buckets_api().create_bucket(bucket_name="energy", org=influx2.org)
        created = token_for(client, influx2, b, "write")
        assert created.token not in ("redacted", None)
        assert {a.token for a in client.authorizations_api().find_authorizations()} == {"redacted"}
        assert created.token in {a["token"] for a in influx2.authorizations}


def test_token_permissions_for_write_and_query(client, influx2, bucket):
    writer = token_for(client, influx2, bucket, "write")
    reader = token_for(client, influx2, bucket, "read")
    with InfluxDBClient(url=influx2.url, token=writer.token, org=influx2.org) as w:
        w.write_api(write_options=SYNCHRONOUS).write(bucket="energy", record="m v=1 1700000000", write_precision="s")
        with pytest.raises(ApiException) as exc:  # write-only token cannot read
            w.query_api().query('from(bucket: "energy") |> range(start: 0)')
        assert exc.value.status == 404 and 'could not find bucket \\"energy\\"' in body_of(exc)
    with InfluxDBClient(url=influx2.url, token=reader.token, org=influx2.org) as r:
        tables = r.query_api().query('from(bucket: "energy") |> range(start: 0)')
        assert [(rec.get_field(), rec.get_value()) for t in tables for rec in t.records] == [("v", 1.0)]
        with pytest.raises(ApiException) as exc:  # read-only token cannot write
            r.write_api(write_options=SYNCHRONOUS).write(
                bucket="energy", record="m v=2 1700000001", write_precision="s"
            )
        assert exc.value.status == 403 and "insufficient permissions for write" in body_of(exc)
        assert r.buckets_api().find_buckets().buckets[0].name == "energy"  # only what it may read
    assert len(influx2.points("energy")) == 1


def test_a_token_cannot_grant_more_than_it_holds(client, influx2, bucket):
    with InfluxDBClient(
        url=influx2.url, token=token_for(client, influx2, bucket, "write").token, org=influx2.org
    ) as weak:
        with pytest.raises(ApiException) as exc:
            weak.authorizations_api().create_authorization(
                org_id=influx2.org_id,
                permissions=[
                    Permission(action="read", resource=PermissionResource(type="buckets", org_id=influx2.org_id))
                ],
            )
    assert exc.value.status == 401 and "authorizations is unauthorized" in body_of(exc)


def test_inactive_token_cannot_write(client, influx2, bucket):
    auth = token_for(client, influx2, bucket, "write")
    auth.status = "inactive"
    client.authorizations_api().update_authorization(auth)
    assert write(influx2, "m v=1 1700000000", token=auth.token).status_code == 403
    assert influx2.points("energy") == []


# ------------------------------------------------------------------ raw HTTP: error paths


@pytest.mark.parametrize("header", [None, "Token nope", "Bearer nope", "Basic YWRtaW46cHc="])
def test_missing_or_unknown_token_is_401(influx2, bucket, header):
    headers = {"Authorization": header} if header else {}
    answer = requests.post(
        f"{influx2.url}/api/v2/write?org={influx2.org}&bucket=energy", data="m v=1", headers=headers, timeout=2
    )
    assert answer.status_code == 401
    assert answer.json() == {"code": "unauthorized", "message": "unauthorized access"}


def test_bearer_scheme_is_accepted(influx2, bucket):
    answer = requests.get(
        f"{influx2.url}/api/v2/buckets", headers={"Authorization": f"Bearer {influx2.admin_token}"}, timeout=2
    )
    assert answer.status_code == 200


def test_unknown_bucket_is_404(influx2, bucket):
    answer = write(influx2, "m v=1 1700000000", bucket="nope")
    assert answer.status_code == 404
    assert answer.json() == {"code": "not found", "message": 'bucket "nope" not found'}


def test_unknown_path_is_404(influx2):
    answer = requests.get(
        f"{influx2.url}/api/v2/nothing", headers={"Authorization": f"Token {influx2.admin_token}"}, timeout=2
    )
    assert answer.status_code == 404 and answer.json()["message"] == "path not found"


@pytest.mark.parametrize(
    "line, reason",
    [
        ("m v=1 17000000x0", "bad timestamp"),
        ("m,t= v=1", "missing tag value"),
        ("m,t=a", "missing fields"),
        ("m v=", "missing field value"),
        ("m v=1.2.3", "invalid number"),
        ("m v=abc", "invalid boolean"),
        ('m v="open', "unbalanced quotes"),
        ("m v=1i2", "invalid number"),
        ("m v=NaN", "invalid number"),
        ("m,t=a,t=b v=1", "duplicate tags"),
        ("m,t=a=b v=1", "invalid tag format"),
        (",t=a v=1", "missing measurement"),
        ("m v=1 1700000000 9", "point is invalid"),
    ],
)
def test_malformed_line_is_400_and_nothing_is_stored(influx2, bucket, line, reason):
    answer = write(influx2, f"ok v=1 1700000000\nok v=2 1700000001\n{line}\n")
    assert answer.status_code == 400
    body = answer.json()
    assert body["code"] == "invalid" and body["message"] == f"unable to parse '{line}': {reason}"
    assert answer.headers["X-Platform-Error-Code"] == "invalid"
    assert influx2.points("energy") == []


@pytest.mark.parametrize(
    "line, point",
    [
        (
            "my\\ meas\\,x,tag\\ key=a\\ b\\,c\\=d field\\=k=1 1700000000",
            Point("my meas,x", {"tag key": "a b,c=d"}, {"field=k": 1.0}, 1700000000 * S),
        ),
        (
            'm s="say \\"hi\\" \\\\ ok",b=T,u=7u,e=-1.5e3 1700000000',
            Point("m", {}, {"s": 'say "hi" \\ ok', "b": True, "u": 7, "e": -1500.0}, 1700000000 * S),
        ),
        ("m,b=2,a=1 v=1i,w=false 1700000000", Point("m", {"a": "1", "b": "2"}, {"v": 1, "w": False}, 1700000000 * S)),
    ],
)
def test_escaping_and_types(influx2, bucket, line, point):
    assert write(influx2, f"# a comment\n\n{line}\n").status_code == 204
    assert influx2.points("energy") == [point]
    assert type(influx2.points("energy")[0].fields.get("v", 0.0)) in (int, float)


@pytest.mark.parametrize("precision, factor", [("ns", 1), ("us", 1_000), ("ms", 1_000_000), ("s", S)])
def test_precision(influx2, bucket, precision, factor):
    assert write(influx2, "m v=1 1700000000", precision=precision).status_code == 204
    assert influx2.points("energy")[0].time == 1700000000 * factor


def test_invalid_precision_is_400(influx2, bucket):
    answer = write(influx2, "m v=1 1700000000", precision="h")
    assert answer.status_code == 400 and "valid precision units are ns, us, ms, and s" in answer.json()["message"]


def test_type_conflict_is_422_and_the_other_points_are_kept(influx2, bucket):
    assert write(influx2, "m v=1.5 1700000000").status_code == 204
    answer = write(influx2, "m v=2i 1700000001\nm w=3 1700000002")
    assert answer.status_code == 422
    assert answer.json() == {
        "code": "unprocessable entity",
        "message": "failure writing points to database: partial write: field type conflict: "
        'input field "v" on measurement "m" is type integer, already exists as type float '
        "dropped=1",
    }
    assert [p.fields for p in influx2.points("energy")] == [{"v": 1.5}, {"w": 3.0}]


def test_gzip_body_is_honoured(influx2, bucket):
    answer = requests.post(
        f"{influx2.url}/api/v2/write",
        params={"org": influx2.org, "bucket": "energy", "precision": "s"},
        data=gzip.compress(b"m v=1 1700000000\n"),
        headers={"Authorization": f"Token {influx2.admin_token}", "Content-Encoding": "gzip"},
        timeout=2,
    )
    assert answer.status_code == 204 and influx2.points("energy")[0].fields == {"v": 1.0}


def test_injected_503_with_retry_after_reaches_the_client(influx2, bucket):
    influx2.fail_next_writes(503, count=2, retry_after=7)
    with InfluxDBClient(url=influx2.url, token=influx2.admin_token, org=influx2.org) as c:
        api = c.write_api(write_options=SYNCHRONOUS)
        for _ in range(2):
            with pytest.raises(ApiException) as exc:
                api.write(bucket="energy", record="m v=1 1700000000", write_precision="s")
            assert exc.value.status == 503 and exc.value.headers["Retry-After"] == "7"
        api.write(bucket="energy", record="m v=1 1700000000", write_precision="s")
    assert [r.status for r in influx2.requests if r.path == "/api/v2/write"] == [503, 503, 204]
    assert len(influx2.points("energy")) == 1


def test_injected_failure_with_custom_body(influx2, bucket):
    influx2.fail_next_writes(429, body={"code": "too many requests", "message": "slow down"})
    answer = write(influx2, "m v=1 1700000000")
    assert answer.status_code == 429 and answer.json()["message"] == "slow down"
    assert "Retry-After" not in answer.headers and influx2.points("energy") == []


def test_go_down_refuses_connections_then_come_back_on_the_same_port(influx2, bucket):
    url = influx2.url
    session = requests.Session()  # keep-alive connection open before going down
    assert session.get(f"{url}/ping", timeout=2).status_code == 204
    influx2.go_down()
    with pytest.raises(requests.ConnectionError):
        session.get(f"{url}/ping", timeout=2)
    with pytest.raises(requests.ConnectionError) as exc:
        requests.get(f"{url}/ping", timeout=2)
    assert "refused" in str(exc.value).lower()
    influx2.come_back()
    assert influx2.url == url
    assert write(influx2, "m v=1 1700000000").status_code == 204
    assert "energy" in influx2.buckets  # state survives the outage


def test_parser_is_usable_directly():
    ((point, types),) = parse_line_protocol("m,t=x v=1u 5", precision="ms")
    assert point == Point("m", {"t": "x"}, {"v": 1}, 5_000_000) and types == {"v": "unsigned"}
    with pytest.raises(LineProtocolError, match="missing fields"):
        parse_line_protocol("m")


def test_tasks_listed_and_switched_by_the_real_client(influx2, client):
    hourly = influx2.add_task("downsample_acme_1h", 'option task = {name: "downsample_acme_1h", every: 1h}\n', "1h")
    influx2.add_task("downsample_acme_1d", 'option task = {name: "downsample_acme_1d", every: 1d}\n', "1d")
    tasks_api = client.tasks_api()
    found = tasks_api.find_tasks(name="downsample_acme_1h", org=influx2.org)
    assert [(t.id, t.name, t.status, t.every) for t in found] == [(hourly, "downsample_acme_1h", "active", "1h")]
    assert sorted(t.name for t in tasks_api.find_tasks()) == ["downsample_acme_1d", "downsample_acme_1h"]
    assert tasks_api.find_tasks(name="downsample_acme") == []  # an exact name, not a prefix
    task = found[0]
    task.status = "inactive"
    assert tasks_api.update_task(task).status == "inactive"
    assert influx2.tasks["downsample_acme_1h"]["status"] == "inactive"
    assert [t.name for t in tasks_api.find_tasks(status="active")] == ["downsample_acme_1d"]


def test_task_errors_have_the_server_status_codes(influx2):
    task_id = influx2.add_task("t", 'option task = {name: "t", every: 1h}\n', "1h")
    admin = {"Authorization": f"Token {influx2.admin_token}"}

    def patch(tid, body, headers=admin):
        return requests.patch(f"{influx2.url}/api/v2/tasks/{tid}", json=body, headers=headers, timeout=5)

    bad = patch(task_id, {"status": "paused"})
    assert (bad.status_code, bad.json()["message"]) == (400, "failed to decode request: invalid task status")
    assert patch(task_id, {}).status_code == 400
    missing = patch("0000000000000001", {"status": "inactive"})
    assert (missing.status_code, missing.json()["message"]) == (404, "failed to update task: task not found")
    assert patch("nope", {"status": "inactive"}).status_code == 400
    assert patch(task_id, {"status": "inactive"}, headers={"Authorization": "Token wrong"}).status_code == 401
    unknown_org = requests.get(f"{influx2.url}/api/v2/tasks", params={"org": "other"}, headers=admin, timeout=5)
    assert unknown_org.status_code == 400 and "org other not found or unauthorized" in unknown_org.json()["message"]
    assert (
        requests.get(f"{influx2.url}/api/v2/tasks", params={"limit": "501"}, headers=admin, timeout=5).status_code
        == 400
    )
    assert influx2.tasks["t"]["status"] == "active"  # nothing changed by a refused request
