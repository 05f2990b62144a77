"""Per-company InfluxDB tokens for Grafana: read on the company's bucket and its derived buckets
(`<bucket>_1h`, `<bucket>_1d`, `<bucket>_1w`: the levels of TSV_DOWNSAMPLE_LEVELS) and nothing else.

One job: find, create, rotate, revoke and list the authorizations described
`powerview_token_for_bucket_<bucket>` through the InfluxDB 2 HTTP API. The authorizations (and
the organization and bucket look-ups that go with them) use influxdb-client, the one place of the
project that still does (`connect`); a missing bucket is created through the project's HTTP layer
(`influx_targets.ensure_bucket`), as the parser creates it.
InfluxDB 2 only: per-bucket read tokens do not exist as such on 1.x (a user with
`GRANT READ ON <db>` per database) nor on 3.x Core (admin tokens only); InfluxDB 3 Enterprise
has database tokens (docs/buckets-derives.md says how to make them by hand).

Rules:
- a token is reused only when it is active, carries that description and its permissions are
  exactly the wanted ones (read on the bucket and its derived buckets; read and write with
  `write=True`);
- a token made before the derived buckets existed (read on the company bucket alone) is
  rotated: a new one with the full set is created, then the old one deleted; a token is never
  widened in place;
- an authorization with the description but other permissions is never changed (never widened
  nor narrowed silently): a new one with the exact permissions is made beside it, and it is
  reported so that an operator can revoke it;
- where the server hides token values in listings (InfluxDB Cloud answers `"token": "redacted"`),
  the token cannot be reused: a new one is created, then the old ones are deleted (rotation);
- the token the deployed manage_influx_tokens.py made (same description; read AND write on the
  company bucket, read on its derived buckets) is in the Grafana data sources of the deployed
  system: while no read-only token exists, `ensure` (read-only) adopts it rather than making a
  second token beside it, and says so; `powerview-tokens --migrate` replaces it (token_migration.py).
Token values never reach a log line or an exception message.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field

from influxdb_client import InfluxDBClient
from influxdb_client.domain.authorization import Authorization
from influxdb_client.domain.permission import Permission
from influxdb_client.domain.permission_resource import PermissionResource
from influxdb_client.rest import ApiException

from powerview.core.names import bucket_name_problem
from powerview.core.schema import DERIVED_LEVELS
from powerview.core.settings import ConfigError, InfluxSettings, TokenSettings
from powerview.delivery.influx import V2_CREDENTIALS, with_retries
from powerview.delivery.influx_http import Connection
from powerview.delivery.influx_targets import ensure_bucket

log = logging.getLogger(__name__)

warnings.filterwarnings("ignore", module="influxdb_client")


def connect(settings: InfluxSettings) -> InfluxDBClient:
    """An influxdb-client client from the settings (the authorizations API, and the acceptance
    checks' Flux queries). Raises ConfigError when a required variable is missing."""
    settings.require()
    return InfluxDBClient(
        url=settings.url,
        token=settings.token or "",
        org=settings.org or "",
        timeout=int(settings.timeout_s * 1000),
        enable_gzip=settings.gzip,
        retries=False,  # retries are ours: bounded in total time, Retry-After honoured
    )


DESCRIPTION_PREFIX = "powerview_token_for_bucket_"
_HIDDEN = (None, "", "redacted")
_NOT_FOUND = object()


def description_for(bucket: str) -> str:
    return DESCRIPTION_PREFIX + bucket


def check_bucket_name(bucket: str) -> None:
    """Raise ConfigError when `bucket` is not an allowed company (bucket) name."""
    problem = bucket_name_problem(bucket)
    if problem:
        raise ConfigError(problem)


@dataclass(frozen=True)
class TokenInfo:
    """An authorization as listed: everything but the token value."""

    id: str
    description: str
    status: str
    permissions: tuple[str, ...]  # "read:buckets/<id>" ...
    created_at: str
    token_visible: bool


@dataclass
class Outcome:
    """What `ensure`/`rotate` did. `token` is the secret: keep it out of logs (not in repr)."""

    bucket: str
    id: str
    token: str = field(repr=False)
    created: bool = False
    rotated: bool = False
    bucket_created: bool = False
    deleted: list[str] = field(default_factory=list)

    deployed: bool = False  # the deployed read+write token, adopted (see `deployed_tokens`)

    @property
    def changed(self) -> bool:
        return self.created or self.bucket_created or bool(self.deleted)


class TokenManager:
    """Token operations for one organization. `client` comes from `connect(settings)`."""

    def __init__(
        self, client: InfluxDBClient, org: str, budget_s: float = 60.0, levels: tuple[str, ...] = DERIVED_LEVELS
    ):
        self.client = client
        self.org = org
        self.budget_s = budget_s
        self.levels = tuple(levels)
        self._org_id: str | None = None

    # ---- plumbing --------------------------------------------------------------------------
    def _call(self, what: str, action, allow_404: bool = False):
        def attempt():
            try:
                return action()
            except ApiException as exc:
                if allow_404 and exc.status == 404:
                    return _NOT_FOUND
                raise

        return with_retries(attempt, self.budget_s, what)

    def _ensure_bucket(self, bucket: str) -> bool:
        """Create `bucket` unless it exists (the parser's way: the project's HTTP layer, on the
        client's address and token); True when created."""
        http = Connection(
            self.client.url,
            ("token", self.client.token),
            timeout_s=(self.client.api_client.configuration.timeout or 30_000) / 1000,
            budget_s=self.budget_s,
            credentials=V2_CREDENTIALS,
        )
        try:
            return ensure_bucket(http, self.org, bucket, self.org_id)[0]
        finally:
            http.close()

    @property
    def org_id(self) -> str:
        if self._org_id is None:
            api = self.client.organizations_api()
            orgs = self._call(
                f"looking up organization {self.org}", lambda: api.find_organizations(org=self.org), allow_404=True
            )
            if orgs is _NOT_FOUND or not orgs:
                raise ConfigError(f"InfluxDB organization {self.org!r} not found: check INFLUXDB_ORG")
            self._org_id = next((o.id for o in orgs if o.name == self.org), orgs[0].id)
        return self._org_id

    def find_bucket(self, bucket: str):
        api = self.client.buckets_api()
        found = self._call(
            f"looking up bucket {bucket}", lambda: api.find_buckets(name=bucket, org_id=self.org_id), allow_404=True
        )
        if found is _NOT_FOUND:
            return None
        return next((b for b in (found.buckets or []) if b.name == bucket), None)

    def _authorizations(self) -> list[Authorization]:
        api = self.client.authorizations_api()
        found = self._call("listing authorizations", lambda: api.find_authorizations(org_id=self.org_id))
        return list(found or [])

    def covered(self, bucket: str) -> list[str]:
        """The buckets a company's token reads: its own, then its derived buckets."""
        return [bucket] + [f"{bucket}_{level}" for level in self.levels]

    def _wanted(self, bucket_ids: list[str], write: bool) -> set[tuple[str, str, str]]:
        actions = ("read", "write") if write else ("read",)
        return {(action, "buckets", bucket_id) for action in actions for bucket_id in bucket_ids}

    @staticmethod
    def _permission_set(auth: Authorization) -> set[tuple[str, str, str | None]]:
        out: set[tuple[str, str, str | None]] = set()
        for perm in auth.permissions or []:
            res = perm.resource
            out.add((perm.action, (res.type if res else None) or "", res.id if res else None))
        return out

    def _touches(self, auth: Authorization, bucket_id: str | None) -> bool:
        return any(
            res_id == bucket_id
            for _, res_type, res_id in self._permission_set(auth)
            if res_type == "buckets" and bucket_id
        )

    def _matching(self, bucket: str, bucket_ids: list[str], write: bool) -> tuple[list, list, list]:
        """(authorizations reusable for these permissions, newest first; outdated ones: the same
        permissions on the company bucket alone, to rotate; others with the description)."""
        wanted = self._wanted(bucket_ids, write)
        before_derived = self._wanted(bucket_ids[:1], write)
        exact, outdated, other = [], [], []
        for auth in self._authorizations():
            if auth.description != description_for(bucket):
                continue
            permissions = self._permission_set(auth)
            if auth.status == "active" and permissions == wanted:
                exact.append(auth)
            elif auth.status == "active" and permissions == before_derived:
                outdated.append(auth)
            else:
                other.append(auth)
        exact.sort(key=lambda a: str(a.created_at or ""), reverse=True)
        return exact, outdated, other

    def is_deployed_shape(self, auth: Authorization, bucket_ids: list[str]) -> bool:
        """The permissions the deployed manage_influx_tokens.py gave: read and write on the company
        bucket (`bucket_ids[0]`), read on derived buckets (all of them, or some for an older one)."""
        permissions = self._permission_set(auth)
        raw = bucket_ids[0]
        core = {("read", "buckets", raw), ("write", "buckets", raw)}
        derived = {("read", "buckets", bucket_id) for bucket_id in bucket_ids[1:]}
        return core <= permissions and permissions <= core | derived

    def deployed_tokens(self, bucket: str, bucket_ids: list[str]) -> list[Authorization]:
        """The active authorizations the deployed system made for `bucket`, newest first."""
        found = [
            auth
            for auth in self._authorizations()
            if auth.description == description_for(bucket)
            and auth.status == "active"
            and self.is_deployed_shape(auth, bucket_ids)
        ]
        found.sort(key=lambda a: str(a.created_at or ""), reverse=True)
        return found

    def _create(self, bucket: str, bucket_ids: list[str], write: bool) -> Authorization:
        actions = ("read", "write") if write else ("read",)
        permissions = [
            Permission(action=a, resource=PermissionResource(type="buckets", id=bucket_id, org_id=self.org_id))
            for bucket_id in bucket_ids
            for a in actions
        ]
        request = Authorization(
            org_id=self.org_id, permissions=permissions, status="active", description=description_for(bucket)
        )
        api = self.client.authorizations_api()
        created = self._call(
            f"creating a token for bucket {bucket}", lambda: api.create_authorization(authorization=request)
        )
        if created.token in _HIDDEN:
            raise ConfigError(f"InfluxDB created authorization {created.id} but did not return its token")
        log.info(
            "created %s token %s for bucket %s%s",
            "read/write" if write else "read-only",
            created.id,
            bucket,
            f" and its derived buckets ({', '.join(self.levels)})" if self.levels else "",
        )
        return created

    def _delete(self, auth_id: str) -> None:
        api = self.client.authorizations_api()
        self._call(f"deleting authorization {auth_id}", lambda: api.delete_authorization(auth_id), allow_404=True)
        log.info("deleted authorization %s", auth_id)

    def _bucket_id(self, bucket: str, create: bool) -> tuple[str, bool]:
        found = self.find_bucket(bucket)
        if found:
            return found.id, False
        if not create:
            raise ConfigError(f"bucket {bucket!r} does not exist in organization {self.org!r}")
        created = self._ensure_bucket(bucket)
        found = self.find_bucket(bucket)
        if not found:
            raise ConfigError(f"bucket {bucket!r} could not be created in organization {self.org!r}")
        return found.id, created

    def _bucket_ids(self, bucket: str, create: bool) -> tuple[list[str], bool]:
        """Ids of the bucket and its derived buckets (created when missing); True if one was made."""
        ids, created_any = [], False
        for name in self.covered(bucket):
            bucket_id, created = self._bucket_id(name, create)
            ids.append(bucket_id)
            created_any = created_any or created
        return ids, created_any

    def _warn_others(self, others: list, bucket_ids: list[str] | None = None) -> None:
        for auth in others:
            if bucket_ids and auth.status == "active" and self.is_deployed_shape(auth, bucket_ids):
                continue  # the deployed token: reported by `ensure` / `migrate`, never "other"
            log.warning(
                "authorization %s (%s, %s) has the description but other permissions: left as it is "
                "(remove it with --revoke if it is not wanted)",
                auth.id,
                auth.status,
                ", ".join(sorted(f"{a}:{t}/{i}" for a, t, i in self._permission_set(auth))),
            )

    # ---- operations ------------------------------------------------------------------------
    def ensure(self, bucket: str, write: bool = False, adopt_deployed: bool = True) -> Outcome:
        """The token for `bucket`: an existing exact one when its value can be read, else (read-only,
        `adopt_deployed`) the deployed read+write one, else a new one (then the exact ones whose
        value is hidden, and the outdated ones, are deleted: rotation)."""
        check_bucket_name(bucket)
        bucket_ids, bucket_created = self._bucket_ids(bucket, create=True)
        exact, outdated, others = self._matching(bucket, bucket_ids, write)
        self._warn_others(others, bucket_ids)
        visible = [a for a in exact if a.token not in _HIDDEN]
        if visible:
            log.info("reusing token %s for bucket %s", visible[0].id, bucket)
            outcome = Outcome(bucket, visible[0].id, visible[0].token, bucket_created=bucket_created)
            self._retire(outdated, outcome, "without the derived buckets")
            return outcome
        deployed = self._adoptable(bucket, bucket_ids, others) if adopt_deployed and not write else None
        if deployed is not None:
            log.warning(
                "bucket %s has no read-only token but the deployed read+write token %s: adopting it (the "
                "data sources that use it keep working); replace it with a read-only one with "
                "`powerview-tokens --migrate --bucket %s` (docs/migration.md)",
                bucket,
                deployed.id,
                bucket,
            )
            return Outcome(bucket, deployed.id, deployed.token, bucket_created=bucket_created, deployed=True)
        created = self._create(bucket, bucket_ids, write)
        outcome = Outcome(bucket, created.id, created.token, created=True, bucket_created=bucket_created)
        if exact:
            log.info("the server hides the values of %d existing token(s): rotating", len(exact))
        self._retire(exact, outcome, "value hidden")
        self._retire(outdated, outcome, "without the derived buckets")
        return outcome

    def _adoptable(self, bucket: str, bucket_ids: list[str], others: list) -> Authorization | None:
        """The newest deployed token of `bucket` whose value can be read, if any."""
        found = [
            a
            for a in others
            if a.status == "active" and a.token not in _HIDDEN and self.is_deployed_shape(a, bucket_ids)
        ]
        found.sort(key=lambda a: str(a.created_at or ""), reverse=True)
        return found[0] if found else None

    def _retire(self, auths: list, outcome: Outcome, why: str) -> None:
        for auth in auths:
            log.info("rotating out authorization %s (%s)", auth.id, why)
            self._delete(auth.id)
            outcome.deleted.append(auth.id)
            outcome.rotated = True

    def rotate(self, bucket: str, write: bool = False) -> Outcome:
        """A new token for `bucket`, then the old ones with the same (or outdated) permissions deleted."""
        check_bucket_name(bucket)
        bucket_ids, bucket_created = self._bucket_ids(bucket, create=True)
        exact, outdated, others = self._matching(bucket, bucket_ids, write)
        self._warn_others(others, bucket_ids)
        created = self._create(bucket, bucket_ids, write)
        outcome = Outcome(bucket, created.id, created.token, created=True, rotated=True, bucket_created=bucket_created)
        for auth in exact + outdated:
            self._delete(auth.id)
            outcome.deleted.append(auth.id)
        return outcome

    def revoke(self, bucket: str) -> list[str]:
        """Delete every authorization described for `bucket`. Returns their ids."""
        check_bucket_name(bucket)
        deleted = []
        for auth in self._authorizations():
            if auth.description == description_for(bucket):
                self._delete(auth.id)
                deleted.append(auth.id)
        return deleted

    def list(self, bucket: str) -> list[TokenInfo]:
        """The authorizations described for `bucket` or naming it in a permission, without values."""
        check_bucket_name(bucket)
        found = self.find_bucket(bucket)
        bucket_id = found.id if found else None
        out = []
        for auth in self._authorizations():
            if auth.description != description_for(bucket) and not self._touches(auth, bucket_id):
                continue
            perms = tuple(sorted(f"{a}:{t}/{i}" if i else f"{a}:{t}" for a, t, i in self._permission_set(auth)))
            out.append(
                TokenInfo(
                    auth.id,
                    auth.description or "",
                    auth.status or "",
                    perms,
                    str(auth.created_at or ""),
                    auth.token not in _HIDDEN,
                )
            )
        return out

    def plan(self, bucket: str, write: bool = False) -> dict:
        """What `ensure` would do, changing nothing (for the playbook's check mode)."""
        check_bucket_name(bucket)
        found = [self.find_bucket(name) for name in self.covered(bucket)]
        if not found[0]:
            return {"bucket": bucket, "bucket_exists": False, "action": "create", "id": None, "changed": True}
        if not all(found):
            return {"bucket": bucket, "bucket_exists": True, "action": "create", "id": None, "changed": True}
        bucket_ids = [b.id for b in found]
        exact, outdated, others = self._matching(bucket, bucket_ids, write)
        visible = [a for a in exact if a.token not in _HIDDEN]
        if visible:
            return {
                "bucket": bucket,
                "bucket_exists": True,
                "action": "reuse",
                "id": visible[0].id,
                "changed": bool(outdated),
            }
        deployed = self._adoptable(bucket, bucket_ids, others) if not write else None
        if deployed is not None:
            return {
                "bucket": bucket,
                "bucket_exists": True,
                "action": "reuse",
                "id": deployed.id,
                "changed": False,
                "deployed": True,
            }
        return {
            "bucket": bucket,
            "bucket_exists": True,
            "action": "rotate" if exact or outdated else "create",
            "id": None,
            "changed": True,
        }


def manager_for(settings: TokenSettings) -> TokenManager:
    """The TokenManager of the configured organisation. Raises ConfigError on another generation
    than InfluxDB 2 or a missing setting."""
    if settings.influx.version != 2:
        raise ConfigError(
            f"INFLUXDB_VERSION={settings.influx.version}: per-bucket tokens are made on InfluxDB 2 "
            "only (see docs/buckets-derives.md for InfluxDB 1.x users and InfluxDB 3 database tokens)"
        )
    return TokenManager(
        connect(settings.influx), settings.influx.org or "", settings.influx.retry_max_s, settings.downsample_levels
    )
