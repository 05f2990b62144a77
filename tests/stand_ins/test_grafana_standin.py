"""The Grafana stand-in answers as Grafana's HTTP API reference says (see its docstring)."""

from __future__ import annotations

import requests

ADMIN = ("admin", "admin-password")
BEARER = {"Authorization": "Bearer sa-token"}


def call(grafana, method, path, auth=ADMIN, headers=None, **kwargs):
    return requests.request(method, grafana.url + path, auth=auth, headers=headers, timeout=10, **kwargs)


def test_health_needs_no_auth_everything_else_does(grafana):
    assert call(grafana, "GET", "/api/health", auth=None).json()["database"] == "ok"
    assert call(grafana, "GET", "/api/org", auth=None).status_code == 401
    bad = call(grafana, "GET", "/api/org", auth=("admin", "nope"))
    assert bad.status_code == 401 and bad.json()["message"] == "Invalid username or password"
    assert call(grafana, "GET", "/api/org", auth=None, headers={"Authorization": "Bearer x"}).status_code == 401
    assert call(grafana, "GET", "/api/org", auth=None, headers=BEARER).status_code == 200
    assert [r["auth"] for r in grafana.requests] == [None, None, "invalid-basic", "invalid-token", "bearer"]


def test_teams(grafana):
    assert call(grafana, "GET", "/api/teams/search", params={"name": "t"}).status_code == 404
    created = call(grafana, "POST", "/api/teams", json={"name": "t"})
    assert created.status_code == 200 and created.json()["message"] == "Team created"
    taken = call(grafana, "POST", "/api/teams", json={"name": "t"})
    assert taken.status_code == 409 and taken.json()["message"] == "Team name taken"
    found = call(grafana, "GET", "/api/teams/search", params={"name": "t"}).json()
    assert found["totalCount"] == 1 and found["teams"][0]["id"] == created.json()["teamId"]
    team_id = created.json()["teamId"]
    assert call(grafana, "POST", f"/api/teams/{team_id}/members", json={"userId": grafana.admin_id}).status_code == 200
    again = call(grafana, "POST", f"/api/teams/{team_id}/members", json={"userId": grafana.admin_id})
    assert again.status_code == 400 and again.json()["message"] == "User is already added to this team"
    assert call(grafana, "DELETE", f"/api/teams/{team_id}").status_code == 200
    assert call(grafana, "DELETE", f"/api/teams/{team_id}").status_code == 404


def test_folders_and_permissions(grafana):
    assert call(grafana, "GET", "/api/folders/f1").json() == {"message": "Folder not found", "status": "not-found"}
    assert call(grafana, "POST", "/api/folders", json={"uid": "f1", "title": "One"}).status_code == 200
    assert call(grafana, "POST", "/api/folders", json={"uid": "f1", "title": "Two"}).status_code == 409
    assert call(grafana, "POST", "/api/folders", json={"uid": "f2", "title": "One"}).status_code == 409
    assert call(grafana, "POST", "/api/folders", json={"uid": "a.b", "title": "Dot"}).status_code == 400
    acl = call(grafana, "GET", "/api/folders/f1/permissions").json()
    assert {(i.get("role"), i["permission"]) for i in acl if i.get("role")} == {("Viewer", 1), ("Editor", 2)}
    team_id = call(grafana, "POST", "/api/teams", json={"name": "t"}).json()["teamId"]
    assert (
        call(
            grafana, "POST", "/api/folders/f1/permissions", json={"items": [{"teamId": team_id, "permission": 1}]}
        ).status_code
        == 200
    )
    assert [(i["teamId"], i["permission"]) for i in call(grafana, "GET", "/api/folders/f1/permissions").json()] == [
        (team_id, 1)
    ]


def test_datasources_keep_secrets_secret(grafana):
    assert call(grafana, "GET", "/api/datasources/name/ds").status_code == 404
    body = {"name": "ds", "type": "influxdb", "url": "http://i:8086", "secureJsonData": {"token": "s3cret"}}
    created = call(grafana, "POST", "/api/datasources", json=body)
    assert created.status_code == 200 and created.json()["message"] == "Datasource added"
    dup = call(grafana, "POST", "/api/datasources", json=body)
    assert dup.status_code == 409 and dup.json()["message"] == "data source with the same name already exists"
    got = call(grafana, "GET", "/api/datasources/name/ds")
    assert "s3cret" not in got.text and got.json()["secureJsonFields"] == {"token": True}
    uid = got.json()["uid"]
    # an update that does not carry secureJsonData keeps the stored token
    assert (
        call(
            grafana,
            "PUT",
            f"/api/datasources/uid/{uid}",
            json={"name": "ds", "type": "influxdb", "url": "http://j:8086"},
        ).status_code
        == 200
    )
    ds_id = got.json()["id"]
    assert grafana.datasource_secrets[ds_id] == {"token": "s3cret"}
    assert call(grafana, "DELETE", f"/api/datasources/uid/{uid}").json()["message"] == "Data source deleted"
    assert call(grafana, "DELETE", f"/api/datasources/uid/{uid}").status_code == 404


def test_dashboards(grafana):
    call(grafana, "POST", "/api/folders", json={"uid": "f1", "title": "One"})
    assert (
        call(
            grafana, "POST", "/api/dashboards/db", json={"dashboard": {"uid": "d", "title": "D"}, "folderUid": "nope"}
        ).status_code
        == 400
    )
    saved = call(
        grafana, "POST", "/api/dashboards/db", json={"dashboard": {"uid": "d", "title": "D"}, "folderUid": "f1"}
    )
    assert saved.json()["status"] == "success" and saved.json()["version"] == 1
    stale = call(grafana, "POST", "/api/dashboards/db", json={"dashboard": {"uid": "d", "title": "D"}})
    assert stale.status_code == 412 and stale.json()["status"] == "version-mismatch"
    over = call(
        grafana,
        "POST",
        "/api/dashboards/db",
        json={"dashboard": {"uid": "d", "title": "D"}, "folderUid": "f1", "overwrite": True},
    )
    assert over.json()["version"] == 2
    got = call(grafana, "GET", "/api/dashboards/uid/d").json()
    assert got["meta"]["folderUid"] == "f1" and got["dashboard"]["version"] == 2
    perms = call(grafana, "GET", "/api/dashboards/uid/d/permissions").json()
    assert perms and all(p["inherited"] for p in perms)  # the folder's, inherited
    hits = call(grafana, "GET", "/api/search", params={"type": "dash-db", "folderUIDs": "f1"}).json()
    assert [h["uid"] for h in hits] == ["d"]
    assert call(grafana, "DELETE", "/api/folders/f1").status_code == 200
    assert call(grafana, "GET", "/api/dashboards/uid/d").status_code == 404


def test_users_need_a_server_admin_with_basic_auth(grafana):
    body = {"login": "u", "name": "U", "password": "pass-word"}
    assert call(grafana, "POST", "/api/admin/users", auth=None, headers=BEARER, json=body).status_code == 403
    assert call(grafana, "GET", "/api/users/lookup", params={"loginOrEmail": "u"}).status_code == 404
    created = call(grafana, "POST", "/api/admin/users", json=body)
    assert created.status_code == 200 and created.json()["message"] == "User created"
    taken = call(grafana, "POST", "/api/admin/users", json=body)
    assert taken.status_code == 412 and "already exists" in taken.json()["message"]
    assert call(grafana, "POST", "/api/admin/users", json={"login": "v", "password": "x"}).status_code == 400
    user_id = created.json()["id"]
    assert call(grafana, "GET", "/api/user", auth=("u", "pass-word")).json()["login"] == "u"
    # a plain user is no server admin
    assert (
        call(
            grafana, "POST", "/api/admin/users", auth=("u", "pass-word"), json={"login": "w", "password": "pass-word"}
        ).status_code
        == 403
    )
    assert call(grafana, "PUT", f"/api/admin/users/{user_id}/password", json={"password": "other-pass"}).ok
    assert grafana.check_password("u", "other-pass")
    assert call(grafana, "DELETE", f"/api/admin/users/{user_id}").json()["message"] == "User deleted"
    assert call(grafana, "DELETE", f"/api/admin/users/{user_id}").status_code == 404


def test_organisations_admin_api_and_membership(grafana):
    assert call(grafana, "GET", "/api/orgs/name/acme").status_code == 404
    assert call(grafana, "POST", "/api/orgs", auth=None, headers=BEARER, json={"name": "acme"}).status_code == 403
    created = call(grafana, "POST", "/api/orgs", json={"name": "acme"})
    assert created.status_code == 200 and created.json()["message"] == "Organization created"
    org_id = created.json()["orgId"]
    taken = call(grafana, "POST", "/api/orgs", json={"name": "acme"})
    assert taken.status_code == 409 and taken.json()["message"] == "Organization name taken"
    assert call(grafana, "GET", f"/api/orgs/{org_id}/users").json()[0]["role"] == "Admin"  # the creator
    # resources are per organisation: same name in two orgs, each sees its own
    ds = {"name": "influxdb_acme", "type": "influxdb", "uid": "pvds_acme"}
    assert call(grafana, "POST", "/api/datasources", json=ds, headers={"X-Grafana-Org-Id": str(org_id)}).ok
    assert call(grafana, "POST", "/api/datasources", json=ds).ok
    assert len(grafana.state(org_id).datasources) == 1 and len(grafana.datasources) == 1
    # a user created into the org is a member of it only; it lists the datasources of its org only
    made = call(grafana, "POST", "/api/admin/users", json={"login": "u", "password": "pw-123456", "OrgId": org_id})
    uid = made.json()["id"]
    assert grafana.user_orgs(uid) == {org_id: "Viewer"}
    viewer = ("u", "pw-123456")
    assert [d["name"] for d in call(grafana, "GET", "/api/datasources", auth=viewer).json()] == ["influxdb_acme"]
    assert call(grafana, "GET", "/api/org", auth=viewer).json()["name"] == "acme"
    assert call(grafana, "GET", "/api/org", auth=viewer, headers={"X-Grafana-Org-Id": "1"}).status_code == 401
    assert (
        call(grafana, "GET", "/api/org", auth=None, headers={**BEARER, "X-Grafana-Org-Id": str(org_id)}).status_code
        == 401
    )
    query = {"queries": [{"refId": "A", "datasource": {"uid": "pvds_acme"}}]}
    assert call(grafana, "POST", "/api/ds/query", auth=viewer, json=query).status_code == 200
    assert grafana.queries[-1]["org"] == org_id
    again = call(grafana, "POST", f"/api/orgs/{org_id}/users", json={"loginOrEmail": "u", "role": "Viewer"})
    assert again.status_code == 409 and again.json()["message"] == "User is already member of this organization"
    assert call(grafana, "DELETE", f"/api/orgs/{org_id}").json()["message"] == "Organization deleted"
    assert grafana.user_orgs(uid) == {} and grafana.users[uid]["orgId"] == 0
    assert call(grafana, "DELETE", f"/api/orgs/{org_id}").status_code == 404
