"""The InfluxDB datasources of a company's views: influxdb_<company> (its own) and
influxdb_<company>_<login> (a user's). PowerView's carry their owner in jsonData
(powerviewCompany, powerviewUser): the deployed names can collide (company acme's user x and
company acme_x), and a datasource owned by another company or user is never changed nor deleted.
One that exists is the customer's: only what it lacks is added."""

from __future__ import annotations

from typing import Any

from . import render
from .client import seg
from .scope import ProvisioningError, Scope, View

SECRET_JSON_KEYS = ("token", "httpHeaderValue1")
# what a datasource update carries back (GET /api/datasources/name/:name → PUT .../uid/:uid)
DATASOURCE_FIELDS = (
    "name",
    "type",
    "access",
    "url",
    "user",
    "database",
    "basicAuth",
    "basicAuthUser",
    "withCredentials",
    "isDefault",
    "version",
)
# lists the production plugin lets users edit: set when missing, never reset
PLUGIN_EDITABLE = ("channelsList", "triphasicList", "virtualSeries")


def client_id_of(datasource: dict, view: View) -> str:
    """The config-API client id a dashboard of `view` uses: the datasource's own when it has one
    (the deployed ones say <company>_<login>), else PowerView's name for `view`."""
    client_id = (datasource.get("jsonData") or {}).get("clientId")
    return client_id if isinstance(client_id, str) and client_id else view.client_id


def describe_owner(owner: tuple[str, str] | None) -> str:
    if owner is None:
        return "nobody PowerView knows (made by hand, or by another tool)"
    company, login = owner
    return f"user {login} of company {company}" if login else f"company {company} (its own data source)"


def datasource_owner(datasource: dict) -> tuple[str, str] | None:
    """(company, user login or "") that PowerView made `datasource` for; None when not PowerView's.

    Read from the jsonData markers powerviewCompany/powerviewUser; a datasource made before them
    (the deployed playbooks, an older PowerView) is recognised by its bucket and client id:
    influxdb_<bucket> is the company's own, influxdb_<clientId> with clientId <bucket>_<login> the
    user's. Never by the name alone."""
    json_data = datasource.get("jsonData") or {}
    company = json_data.get("powerviewCompany")
    if isinstance(company, str) and company:
        login = json_data.get("powerviewUser")
        return company, login if isinstance(login, str) else ""
    bucket = json_data.get("defaultBucket") or json_data.get("dbName")
    if not isinstance(bucket, str) or not bucket:
        return None
    name = datasource.get("name")
    if name == f"influxdb_{bucket}":
        return bucket, ""
    client_id = json_data.get("clientId")
    if isinstance(client_id, str) and client_id.startswith(bucket + "_") and name == f"influxdb_{client_id}":
        return bucket, client_id[len(bucket) + 1 :]
    return None


class Datasources(Scope):
    """The datasources of the company's views."""

    def desired_datasource(self, token_id: str | None, view: View | None = None) -> dict:
        """The datasource of `view` (default: the company's own) as PowerView wants it (no secret).
        jsonData: what the production plugin reads (as the deployed playbooks set it), or Grafana's
        InfluxDB datasource in InfluxQL; and the owner markers (not secrets)."""
        view = view or self.own_view()
        bucket = self.names["bucket"]
        if render.is_influxql(self.s.datasource_type):
            json_data: dict[str, Any] = {
                "version": "InfluxQL",
                "dbName": bucket,
                "httpMode": "POST",
                "httpHeaderName1": "Authorization",
            }
        else:
            json_data = {
                "version": "Flux",
                "organization": self.s.influx_org,
                "defaultBucket": bucket,
                "httpMode": "POST",
                "httpHeaderName1": "Authorization",
                "readOnly": True,
                "clientId": view.client_id,
                "seriesConfigApiUrl": self.s.series_config_api_url,
            }
        # not a secret: the InfluxDB authorization id, to see when the token has changed
        json_data["powerviewTokenId"] = token_id or ""
        json_data["powerviewCompany"] = view.company
        json_data["powerviewUser"] = view.login
        return {
            "name": view.datasource_name,
            "type": self.s.datasource_type,
            "access": "proxy",
            "url": self.s.influx_url_for_grafana,
            "isDefault": False,
            "jsonData": json_data,
        }

    def secure_json(self, token: str) -> dict:
        secure = {"httpHeaderValue1": f"Token {token}"}
        if not render.is_influxql(self.s.datasource_type):
            secure["token"] = token
        return secure

    def find_datasource(self, view: View | None = None) -> dict | None:
        name = (view or self.own_view()).datasource_name
        answer = self._read(f"/api/datasources/name/{seg(name)}")
        return answer.body if answer.found else None

    def check_owner(self, datasource: dict, view: View) -> None:
        """Refuse a datasource of `view`'s name that PowerView did not make for `view`."""
        owner = datasource_owner(datasource)
        if owner != view.owner:
            raise ProvisioningError(
                f"data source {view.datasource_name} belongs to {describe_owner(owner)}, not to "
                f"{view.label}: not touching it (the names influxdb_<company> and "
                "influxdb_<company>_<login> collide; rename the user or the company, or remove that "
                "data source by hand if it is really unused)"
            )

    def ensure_datasource(self, token: str | None, token_id: str | None, view: View | None = None) -> dict:
        view = view or self.own_view()
        desired = self.desired_datasource(token_id, view)
        current = self.find_datasource(view)
        name = view.datasource_name
        if current is not None:
            self.check_owner(current, view)
        if current is None:
            if not token and not self.run.check:
                raise ProvisioningError(f"no InfluxDB token for data source {name}")
            json_data = {
                **desired["jsonData"],
                **({} if render.is_influxql(self.s.datasource_type) else {k: [] for k in PLUGIN_EDITABLE}),
            }
            body = {
                **desired,
                "jsonData": json_data,
                "uid": view.datasource_uid,
                "secureJsonData": self.secure_json(token or ""),
            }
            answer = self._write(
                f"create data source {name}", "POST", "/api/datasources", json=body, ok=(200, 409)
            )  # 409: made meanwhile
            self.run.diff(f"data source {name}", "absent", desired)
            if answer is None:
                return {**desired, "uid": view.datasource_uid}
            if answer.status == 200:
                return answer.body["datasource"]
            made = self.find_datasource(view) or {}
            self.check_owner(made, view)
            return made
        return self.adopt_datasource(current, desired, token, view)

    def adopt_datasource(self, current: dict, desired: dict, token: str | None, view: View) -> dict:
        """A datasource that exists is the customer's: its type, URL, clientId, token and every
        jsonData value are kept. Only what is missing is added: a jsonData key PowerView needs
        (the owner markers are not needed: `datasource_owner` knows a deployed one by its names),
        the plugin's lists, a secret it lacks (from `token`)."""
        name = view.datasource_name
        if current.get("type") != desired["type"]:
            self.run.notes.append(
                f"data source {name} is of type {current.get('type')}, not {desired['type']} "
                "(GRAFANA_DATASOURCE_TYPE): kept as it is"
            )
            return current
        influxql = render.is_influxql(self.s.datasource_type)
        current_json = current.get("jsonData") or {}
        wanted = {
            **{k: v for k, v in desired["jsonData"].items() if not k.startswith("powerview")},
            **({} if influxql else {k: [] for k in PLUGIN_EDITABLE}),
        }
        missing_json = {k: v for k, v in wanted.items() if k not in current_json}
        wanted_secrets = SECRET_JSON_KEYS if not influxql else ("httpHeaderValue1",)
        missing_secrets = [k for k in wanted_secrets if not (current.get("secureJsonFields") or {}).get(k)]
        if not missing_json and not missing_secrets:
            return current
        if missing_secrets and not token and not self.run.check:
            raise ProvisioningError(
                f"data source {name} has no token and none was given: run with -e force_company=true"
            )
        body = {k: current[k] for k in DATASOURCE_FIELDS if k in current}
        body["jsonData"] = {**missing_json, **current_json}
        if missing_secrets:
            body["secureJsonData"] = {k: v for k, v in self.secure_json(token or "").items() if k in missing_secrets}
        what = sorted(missing_json) + [f"secret {k}" for k in missing_secrets]
        self._write(
            f"add to data source {name} what it lacks ({', '.join(what)})",
            "PUT",
            f"/api/datasources/uid/{seg(current['uid'])}",
            json=body,
        )
        self.run.diff(f"data source {name}", {"lacks": what}, {"added": what})
        return {**current, "jsonData": body["jsonData"]}

    def user_datasources(self, org_id: int | None = None) -> list[tuple[str, dict]]:
        """(login, datasource) of every user view of this company in scope (owner read from jsonData)."""
        if org_id is None:
            answer = self._read("/api/datasources", ok=(200,))
        else:
            answer = self.run.read("/api/datasources", org_id=org_id, ok=(200,))
        found = []
        for datasource in (answer.body or []) if answer.found else []:
            owner = datasource_owner(datasource)
            if owner is not None and owner[0] == self.company and owner[1]:
                found.append((owner[1], datasource))
        return sorted(found, key=lambda pair: pair[0])
