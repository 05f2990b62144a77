"""Replace a company's deployed read+write InfluxDB token by a read-only one, in InfluxDB and in
the company's Grafana data sources (`powerview-tokens --migrate`).

The deployed manage_influx_tokens.py gave each company one token described
`powerview_token_for_bucket_<company>`, read AND write on the company bucket and read on its
derived buckets; the deployed playbooks put it into the data sources `influxdb_<company>` and
`influxdb_<company>_<login>`. Per company, in this order:

1. the read-only token (read on the bucket and its derived buckets): the one made by an earlier
   run (or by manage_influx_tokens.py) is adopted, else a new one is created;
2. every Grafana data source of the company gets it (PUT /api/datasources/uid/:uid with the data
   source as read, the new secrets and jsonData.powerviewTokenId), then is read back: the answer
   and the data source read again must list the token fields in secureJsonFields and carry the
   new token id (Grafana never returns a secret; that id is written by the same update);
3. only when every data source answered so, the deployed token is deleted.

Any failure leaves the deployed token in place (the data sources not yet updated keep working
with it) and the company is reported not done; a rerun adopts the read-only token and updates
only the data sources that do not carry it yet. Token values never reach a log line, an
exception message or the report.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from influxdb_client.domain.authorization import Authorization

from powerview.core.exitcodes import ExitCode, worst
from powerview.core.names import name_problem
from powerview.core.settings import ConfigError
from powerview.delivery.influx import InfluxRejected, InfluxUnavailable
from powerview.onboarding.grafana import render
from powerview.onboarding.grafana.client import Grafana, GrafanaError, seg
from powerview.onboarding.grafana.company import Company, ProvisioningError, Run, datasource_owner
from powerview.onboarding.grafana.settings import GrafanaSettings
from powerview.onboarding.influx_tokens import _HIDDEN, DESCRIPTION_PREFIX, TokenManager, check_bucket_name

log = logging.getLogger(__name__)

# what Grafana answers with and what an update must not send back (read-only or legacy fields)
_NOT_SENT = ("typeLogoUrl", "typeName", "readOnly", "secureJsonFields", "password", "basicAuthPassword")


@dataclass
class CompanyMigration:
    """What `migrate` did (or would do) for one company. Never holds a token value."""

    bucket: str
    status: str = "not done"  # "done", "nothing to do", "would migrate", "not done"
    code: ExitCode = ExitCode.OK
    token_id: str | None = None
    token_action: str = ""  # "adopted", "created", "would create", "would adopt"
    deployed: list[str] = field(default_factory=list)  # ids of the tokens to replace (deployed, or older ones)
    updated: list[str] = field(default_factory=list)  # data sources given the read-only token
    already: list[str] = field(default_factory=list)  # data sources that carried it already
    deleted: list[str] = field(default_factory=list)  # authorizations deleted
    reason: str = ""

    @property
    def done(self) -> bool:
        return self.status in ("done", "nothing to do", "would migrate", "would rotate")

    def as_dict(self) -> dict[str, Any]:
        return {
            "bucket": self.bucket,
            "status": self.status,
            "exit_code": int(self.code),
            "token_id": self.token_id,
            "token_action": self.token_action,
            "deployed_tokens": self.deployed,
            "datasources_updated": self.updated,
            "datasources_already": self.already,
            "deleted": self.deleted,
            "reason": self.reason,
        }

    def line(self) -> str:
        parts = [f"{self.bucket}: {self.status}"]
        if self.token_id or self.token_action:
            parts.append(f"read-only token {self.token_id or '(new)'} {self.token_action}".rstrip())
        if self.updated:
            verb = "to update" if self.status.startswith("would") else "updated"
            parts.append(f"data sources {verb}: {', '.join(self.updated)}")
        if self.already:
            parts.append(f"already on it: {', '.join(self.already)}")
        if self.deployed:
            gone = "deleted" if self.deleted else ("to delete" if self.status.startswith("would") else "kept")
            parts.append(f"old token {', '.join(self.deployed)} {gone}")
        if self.reason:
            parts.append(self.reason)
        return "; ".join(parts)


class MigrationFailed(Exception):
    """One company cannot be migrated now; `code` says why (exitcodes)."""

    def __init__(self, code: ExitCode, message: str):
        super().__init__(message)
        self.code = code


def _grafana_failure(exc: GrafanaError) -> MigrationFailed:
    outage = exc.status == 0 or exc.status >= 500
    return MigrationFailed(
        ExitCode.TEMPFAIL if outage else ExitCode.USAGE,
        f"Grafana: {exc}" + (" (run again later)" if outage else ""),
    )


class Migrator:
    """Migrates companies with one TokenManager (InfluxDB 2) and one Grafana."""

    def __init__(self, tokens: TokenManager, settings: GrafanaSettings, grafana: Grafana, dry_run: bool = False):
        self.tokens = tokens
        self.settings = settings
        self.grafana = grafana
        self.dry_run = dry_run

    # ---- which companies ----------------------------------------------------------------------
    def companies(self) -> list[str]:
        """Every bucket that still has a deployed read+write token, sorted."""
        found = set()
        for auth in self.tokens._authorizations():
            description = auth.description or ""
            if not description.startswith(DESCRIPTION_PREFIX) or auth.status != "active":
                continue
            bucket = description[len(DESCRIPTION_PREFIX) :]
            if name_problem("company", bucket):
                log.warning("authorization %s: %r is not a company name, skipped", auth.id, bucket)
                continue
            ids = self._existing_ids(bucket)
            if ids and self.tokens.is_deployed_shape(auth, ids):
                found.add(bucket)
        return sorted(found)

    def _existing_ids(self, bucket: str) -> list[str]:
        """Ids of the bucket then of its existing derived buckets; [] when the bucket is absent."""
        found = [self.tokens.find_bucket(name) for name in self.tokens.covered(bucket)]
        if not found[0]:
            return []
        return [b.id for b in found if b]

    # ---- one company --------------------------------------------------------------------------
    def migrate(self, bucket: str, rotate: bool = False) -> CompanyMigration:
        """Replace the deployed token of `bucket` (or, `rotate`, every read-only token it has, ours
        included) by a read-only token in its Grafana data sources, then delete the old ones."""
        result = CompanyMigration(bucket)
        try:
            if rotate:
                self._rotate(bucket, result)
            else:
                self._migrate(bucket, result)
        except MigrationFailed as exc:
            result.status, result.code, result.reason = "not done", exc.code, str(exc)
        except GrafanaError as exc:
            failure = _grafana_failure(exc)
            result.status, result.code, result.reason = "not done", failure.code, str(failure)
        except ProvisioningError as exc:
            result.status, result.code, result.reason = "not done", ExitCode.USAGE, str(exc)
        except ConfigError as exc:
            result.status, result.code, result.reason = "not done", ExitCode.USAGE, str(exc)
        except InfluxUnavailable as exc:
            result.status, result.code = "not done", ExitCode.TEMPFAIL
            result.reason = f"InfluxDB unavailable: {exc} (run again later)"
        except InfluxRejected as exc:
            result.status, result.code, result.reason = "not done", ExitCode.USAGE, f"InfluxDB refused: {exc}"
        if result.status == "not done" and result.deployed and not result.deleted:
            result.reason += "; the old token is kept: the data sources that use it keep working"
        return result

    def _rotate(self, bucket: str, result: CompanyMigration) -> None:
        """A new read-only token into every data source of the company (read back), then every
        older token of the bucket (read-only, outdated or deployed) deleted. A company with no
        data source is rotated all the same: nothing in Grafana uses its token."""
        check_bucket_name(bucket)
        existing = self._existing_ids(bucket)
        if not existing:
            raise MigrationFailed(ExitCode.USAGE, f"bucket {bucket!r} does not exist")
        exact, outdated, _ = self.tokens._matching(bucket, existing, write=False)
        old = exact + outdated + self.tokens.deployed_tokens(bucket, existing)
        result.deployed = [a.id for a in old]
        company = Company(Run(self.grafana, check=self.dry_run), self.settings, bucket)
        datasources = self._datasources(company)
        if self.dry_run:
            result.token_action = "would create"
            result.updated = [str(d.get("name")) for d in datasources]
            result.status = "would rotate"
            return
        bucket_ids, _ = self.tokens._bucket_ids(bucket, create=True)
        token = self.tokens._create(bucket, bucket_ids, write=False)
        result.token_id, result.token_action = token.id, "created"
        for datasource in datasources:
            self._put_token(company, datasource, token, result)
        self._finish(
            result,
            old,
            f"new read-only token {token.id} in {len(result.updated)} data source(s); "
            f"old token(s) {', '.join(result.deployed) or '(none)'} deleted",
        )

    def _migrate(self, bucket: str, result: CompanyMigration) -> None:
        check_bucket_name(bucket)
        existing = self._existing_ids(bucket)
        if not existing:
            raise MigrationFailed(ExitCode.USAGE, f"bucket {bucket!r} does not exist")
        deployed = self.tokens.deployed_tokens(bucket, existing)
        result.deployed = [a.id for a in deployed]
        if not deployed:
            result.status, result.reason = "nothing to do", "no deployed read+write token"
            return
        if any(a.token in _HIDDEN for a in deployed):
            log.info("the server hides token values: the deployed token is recognised by its permissions")
        company = Company(Run(self.grafana, check=self.dry_run), self.settings, bucket)
        datasources = self._datasources(company)
        if not datasources:
            raise MigrationFailed(
                ExitCode.USAGE,
                f"no Grafana data source of company {bucket} (influxdb_{bucket}, influxdb_{bucket}_<login>) "
                "found: nothing would take the read-only token",
            )
        token, stale = self._read_only_token(bucket, result)
        for datasource in datasources:
            self._put_token(company, datasource, token, result)
        if self.dry_run:
            result.status = "would migrate"
            return
        self._finish(
            result,
            deployed + stale,
            f"read-only token {result.token_id} in {len(result.updated) + len(result.already)} data source(s); "
            f"deployed token(s) {', '.join(result.deployed)} deleted",
        )

    def _finish(self, result: CompanyMigration, old: list, done: str) -> None:
        """The data sources hold the new token: the `old` ones are deleted; `done` is logged."""
        for auth in old:
            self.tokens._delete(auth.id)
            result.deleted.append(auth.id)
        result.status = "done"
        log.info("bucket %s: %s", result.bucket, done)

    def _read_only_token(self, bucket: str, result: CompanyMigration) -> tuple[Authorization | None, list]:
        """(the read-only token to use, the older read-only ones to delete with the deployed token).

        An earlier run's token is adopted when its value can be read; where the server hides the
        values, a new one is made and the hidden ones are deleted only at the end (some data
        sources may use them until this run has updated them)."""
        if self.dry_run:
            plan = self.tokens.plan(bucket)
            if plan["action"] == "reuse" and not plan.get("deployed"):
                result.token_id, result.token_action = plan["id"], "would adopt"
            else:
                result.token_action = "would create"
            return None, []
        bucket_ids, _ = self.tokens._bucket_ids(bucket, create=True)
        exact, _, _ = self.tokens._matching(bucket, bucket_ids, write=False)
        visible = [a for a in exact if a.token not in _HIDDEN]
        if visible:
            token = visible[0]
            result.token_action = "adopted"
            log.info("bucket %s: adopting read-only token %s", bucket, token.id)
        else:
            token = self.tokens._create(bucket, bucket_ids, write=False)
            result.token_action = "created"
        result.token_id = token.id
        return token, [a for a in exact if a.id != token.id]

    def _datasources(self, company: Company) -> list[dict]:
        """The company's own data source and its users' ones, in the company's tenancy."""
        if company.in_org and not company.use_org(create=False):
            return []
        answer = company._read("/api/datasources", ok=(200,))
        found = [
            d
            for d in (answer.body or [])
            if isinstance(d, dict) and (datasource_owner(d) or ("", ""))[0] == company.company
        ]
        return sorted(found, key=lambda d: str(d.get("name")))

    def _put_token(self, company: Company, listed: dict, token: Authorization | None, result: CompanyMigration) -> None:
        name, uid = str(listed.get("name")), str(listed.get("uid"))
        path = f"/api/datasources/uid/{seg(uid)}"
        current = company._read(path, ok=(200,)).body or {}
        keys = self._secret_keys(current)
        json_data = dict(current.get("jsonData") or {})
        token_id = token.id if token is not None else result.token_id
        if token_id and json_data.get("powerviewTokenId") == token_id and self._has(current, keys):
            result.already.append(name)
            return
        result.updated.append(name)
        if token is None:  # dry run
            company.run.changes.append(f"update data source {name}")
            return
        body = {k: v for k, v in current.items() if k not in _NOT_SENT}
        body["jsonData"] = {**json_data, "powerviewTokenId": token.id}
        secure = {"httpHeaderValue1": f"Token {token.token}"}
        if "token" in keys:
            secure["token"] = token.token
        body["secureJsonData"] = secure
        answer = company._write(f"update data source {name}", "PUT", path, json=body)
        stored = (answer.body or {}).get("datasource") if answer is not None else None
        again = company._read(path, ok=(200,)).body or {}
        for what, seen in (("the update's answer", stored), ("the data source read back", again)):
            if not isinstance(seen, dict) or not self._has(seen, keys):
                raise MigrationFailed(
                    ExitCode.TEMPFAIL, f"data source {name}: {what} does not list the token fields {', '.join(keys)}"
                )
        if (again.get("jsonData") or {}).get("powerviewTokenId") != token.id:
            raise MigrationFailed(
                ExitCode.TEMPFAIL, f"data source {name}: read back without the new token id {token.id}"
            )
        log.info("data source %s (uid %s) now uses read-only token %s", name, uid, token.id)

    @staticmethod
    def _secret_keys(datasource: dict) -> tuple[str, ...]:
        """The secrets that carry the token: the header always; `token` too for the Flux plugin (as
        the deployed playbooks set it) or where the data source has it."""
        fields = datasource.get("secureJsonFields") or {}
        if fields.get("token") or not render.is_influxql(str(datasource.get("type"))):
            return ("httpHeaderValue1", "token")
        return ("httpHeaderValue1",)

    @staticmethod
    def _has(datasource: dict, keys: tuple[str, ...]) -> bool:
        fields = datasource.get("secureJsonFields") or {}
        return all(fields.get(k) for k in keys)


def overall(results: list[CompanyMigration]) -> ExitCode:
    return worst(r.code for r in results)
