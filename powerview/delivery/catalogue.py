"""The channel catalogue of powerview-config-api, fed by the parser.

Every successfully ingested file's channels are published to
`{CONFIG_API_URL}/buckets/{bucket}/channels` (the deployed request body). Every publication goes
through a durable outbox (`<POWERVIEW_SPOOL_DIR>/outbox/catalogue/`) first: a file's publications
are queued as soon as its points are written, before it moves to parsed/ (Recorder), and
delivered at the end of the run, so that a parser killed in between loses none, and one the API
did not accept (down, 5xx, timeout, an HTML page) is delivered by a later run, in order. A
publication never changes a file's outcome nor the parser's exit code; the report says, per
file, `"catalogue": "published" | "queued" | "off"` ("failed" when even the outbox is unwritable).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from powerview.core import peers
from powerview.core.outcome import FileOutcome, Status
from powerview.core.settings import ConfigError, Env, load_env
from powerview.delivery.outbox import Outbox, Refused

if TYPE_CHECKING:
    import requests

log = logging.getLogger(__name__)

PUBLISHED, QUEUED, OFF, FAILED = "published", "queued", "off", "failed"
MAX_CHANNELS = 2000  # the API's limit per request
MAX_TEXT = 256  # the API's limit per string
# 4xx but these: the API will never accept this body (set it aside, the next one goes on); the
# ones listed are a setting to fix or a passing state, and keep the message for a later run
NOT_REFUSALS = (401, 403, 404, 405, 407, 408, 421, 425, 429)


def refused(status: int) -> bool:
    return 400 <= status < 500 and status not in NOT_REFUSALS


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class CatalogueUnavailable(Exception):
    """The config API did not accept a publication this time (kept for a later run)."""


@dataclass(frozen=True)
class CatalogueSettings:
    url: str | None  # CONFIG_API_URL; None: nothing is published
    token: str | None  # CONFIG_API_TOKEN
    timeout_s: float  # CONFIG_API_TIMEOUT (default 10)
    outbox_dir: Path  # <POWERVIEW_SPOOL_DIR>/outbox/catalogue

    def __repr__(self) -> str:  # never show the token, nor a password in the URL
        return f"CatalogueSettings(url={peers.redact_url(self.url)!r}, outbox_dir={str(self.outbox_dir)!r}, ...)"

    @classmethod
    def load(
        cls, env_file: Env | Path | str | None = None, environ: Mapping[str, str] | None = None
    ) -> CatalogueSettings:
        env = load_env(env_file, environ)
        return cls(
            url=env.url("CONFIG_API_URL", None),
            token=env.text("CONFIG_API_TOKEN"),
            timeout_s=env.number("CONFIG_API_TIMEOUT", 10.0, minimum=0.1),
            outbox_dir=env.plain_dir("POWERVIEW_SPOOL_DIR", "/srv/sftpgo/spool") / "outbox" / "catalogue",
        )


def _text(value) -> str | None:
    if value is None:
        return None
    text = _CONTROL.sub(" ", str(value))[:MAX_TEXT]
    return text or None


def bodies_for(campaign: str, device_master_sn: str | None, channels: Mapping[str, Mapping]) -> list[dict]:
    """The request bodies for one file's channels (the deployed shape; chunked at MAX_CHANNELS).
    Channels without a unit are left out, as the deployed parser did."""
    items = []
    for channel_id, ch in channels.items():
        unit = ch.get("unit") or ""
        if not channel_id or not unit:
            continue
        items.append(
            {
                "fieldId": f"{channel_id}_{unit}",
                "channelId": channel_id,
                "channelUnit": unit,
                "channelLabel": _text(ch.get("label")),
                "deviceMasterSn": _text(device_master_sn),
            }
        )
    return [{"campaign": campaign, "channels": items[i : i + MAX_CHANNELS]} for i in range(0, len(items), MAX_CHANNELS)]


class ConfigAPIClient:
    """The config API's client (requests: imported only when a catalogue is configured)."""

    def __init__(self, settings: CatalogueSettings, session: requests.Session | None = None):
        if not settings.url:
            raise ConfigError("missing setting CONFIG_API_URL (environment or .env)")
        self.settings = settings
        from powerview.core.peer_requests import Session

        self.session = session or Session()
        self.session.headers["User-Agent"] = "powerview-catalogue"
        if settings.token:
            self.session.headers["Authorization"] = f"Bearer {settings.token}"

    def post_channels(self, bucket: str, body: dict) -> dict:
        """POST one body. Returns {"inserted": n, "updated": m}; raises Refused (never acceptable)
        or CatalogueUnavailable (try again later)."""
        import requests

        url = f"{self.settings.url}/buckets/{quote(bucket, safe='')}/channels"
        shown = peers.redact_url(url)  # what logs, reasons and reports say: no password of the URL
        try:
            # the whole request within CONFIG_API_TIMEOUT (peer_requests.Session), not each socket read
            answer = self.session.post(url, json=body, timeout=self.settings.timeout_s)
        except requests.RequestException as exc:
            error = peers.redact_text(f"{exc.__class__.__name__}: {exc}")
            raise CatalogueUnavailable(f"POST {shown}: {error}") from None
        if refused(answer.status_code):
            raise Refused(f"POST {shown}: HTTP {answer.status_code}: {peers.redact_text(answer.text[:500])}")
        if not 200 <= answer.status_code < 300:
            raise CatalogueUnavailable(
                f"POST {shown}: HTTP {answer.status_code}: {peers.redact_text(answer.text[:200])}"
            )
        try:
            counts = answer.json()
        except ValueError:
            counts = None
        if not (
            isinstance(counts, dict)
            and isinstance(counts.get("inserted"), int)
            and isinstance(counts.get("updated"), int)
        ):
            raise CatalogueUnavailable(
                f"POST {shown}: HTTP {answer.status_code} but not the config API's answer "
                f"({answer.headers.get('Content-Type', '?')}: {answer.text[:100]!r})"
            )
        return counts

    def send(self, message: dict) -> None:
        """An outbox message: {"bucket": ..., "body": ...}."""
        if not isinstance(message.get("bucket"), str) or not isinstance(message.get("body"), dict):
            raise Refused("not a catalogue publication (bucket, body)")
        self.post_channels(message["bucket"], message["body"])


def _queue(outbox: Outbox, entry: FileOutcome, bodies: list[dict]) -> list[Path] | None:
    """Put one file's publications in the outbox; None when the outbox is unwritable."""
    files: list[Path] = []
    for body in bodies:
        message = {
            "bucket": entry.bucket,
            "body": body,
            "file": entry.file,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        try:
            files.append(outbox.put(message))
        except OSError as exc:
            log.error("channel catalogue: cannot queue %s in %s: %s", entry.file, outbox.folder, exc)
            return None
    return files


class Recorder:
    """The per-file step of a run, called between a file's write and its move to parsed/: the
    file's publications go to the outbox there, so that a parser killed at any point leaves no
    file in parsed/ whose channels are not queued (the next run, or the worker's pass, delivers
    them). publish_entries() then delivers, and reports each file's state.

    `settings`: the run's, read with the rest of its settings (None: nothing is published)."""

    def __init__(self, settings: CatalogueSettings | None):
        self._settings = settings
        self.queued: dict[str, list[Path] | None] = {}  # by entry.file; None: the outbox was unwritable

    @classmethod
    def load(cls, env_file: Env | Path | str | None = None, environ: Mapping[str, str] | None = None) -> Recorder:
        """A recorder with the catalogue's settings; wrong ones are logged and publish nothing (a bad
        CONFIG_API_URL never stops an ingestion)."""
        try:
            return cls(CatalogueSettings.load(env_file, environ))
        except ConfigError as exc:
            log.error("channel catalogue not published: %s", exc)
            return cls(None)

    def settings(self) -> CatalogueSettings | None:
        return self._settings

    def __call__(self, entry: FileOutcome) -> None:
        settings = self._settings
        if settings is None or not settings.url or entry.status != Status.SUCCESS:
            return
        bodies = bodies_for(entry.campaign, entry.device_master_sn, entry.channels or {})
        if bodies:
            self.queued[entry.file] = _queue(Outbox(settings.outbox_dir), entry, bodies)


def publish_entries(entries: list[FileOutcome], recorder: Recorder, dry_run: bool = False) -> None:
    """Publish the channels of every `success` entry (queued before the file's move when
    `recorder` was the run's per-file step); set `entry.catalogue` on each entry.
    Never raises: the ingestion's outcome does not depend on the config API."""
    settings = recorder.settings()
    for entry in entries:
        entry.catalogue = OFF
    if settings is None or not settings.url or dry_run:
        return
    try:
        _publish(entries, settings, recorder.queued)
    except Exception as exc:  # a bug or a full disk must not cost the run its report
        log.error("channel catalogue: %s: %s", exc.__class__.__name__, exc)


def _publish(entries: list[FileOutcome], settings: CatalogueSettings, queued: dict[str, list[Path] | None]) -> None:
    outbox = Outbox(settings.outbox_dir)
    client = ConfigAPIClient(settings)
    with ExitStack() as stack:
        try:
            stack.enter_context(outbox.locked())
        except OSError as exc:  # a read-only spool, a file in place of the folder, a full disk
            log.warning(
                "channel catalogue: the outbox %s cannot be used (%s): nothing can be kept for a later "
                "run, each publication is tried once (check POWERVIEW_SPOOL_DIR and its permissions)",
                outbox.folder,
                exc.strerror or exc,
            )
            for entry in entries:
                if entry.status != Status.SUCCESS:
                    continue
                bodies = bodies_for(entry.campaign, entry.device_master_sn, entry.channels or {})
                if bodies:
                    entry.catalogue = _send_now(client, entry.bucket, bodies)
            return
        _publish_locked(entries, outbox, client, queued)


def _within(budget_s: float, send):
    """`send`, refusing to start a request once `budget_s` has passed: one pass never holds the
    outbox's lock (nor the worker's) for longer than that plus one request's deadline, whatever
    the backlog; the rest waits for the next pass, in order."""
    deadline = time.monotonic() + budget_s

    def bounded(message: dict) -> None:
        if time.monotonic() > deadline:
            raise CatalogueUnavailable(f"this pass's delivery time ({budget_s:g} s) is spent")
        send(message)

    return bounded


def _publish_locked(
    entries: list[FileOutcome], outbox: Outbox, client: ConfigAPIClient, queued: dict[str, list[Path] | None]
) -> None:
    send = _within(max(60.0, 6 * client.settings.timeout_s), client.send)
    delivered, failure = outbox.deliver(send)
    if delivered:
        log.info("channel catalogue: %d queued publication(s) delivered", len(delivered))
    mine: list[tuple[FileOutcome, list]] = []
    for entry in entries:
        if entry.status != Status.SUCCESS:
            continue
        bodies = bodies_for(entry.campaign, entry.device_master_sn, entry.channels or {})
        if not bodies:
            continue
        files = queued[entry.file] if entry.file in queued else _queue(outbox, entry, bodies)
        if files is None:  # no outbox: one direct try, nothing kept
            entry.catalogue = _send_now(client, entry.bucket, bodies) if failure is None else FAILED
            continue
        mine.append((entry, files))
    if failure is None and mine:
        _, failure = outbox.deliver(send)
    for entry, files in mine:
        if any(path.exists() for path in files):
            entry.catalogue = QUEUED
        elif any(outbox.was_rejected(path) for path in files):
            entry.catalogue = FAILED
        else:
            entry.catalogue = PUBLISHED
    left = outbox.waiting()
    if failure is not None:
        log.warning(
            "channel catalogue: config API unavailable, %d publication(s) kept in %s for a later run: %s",
            len(left),
            outbox.folder,
            failure,
        )


def _send_now(client: ConfigAPIClient, bucket: str, bodies: list[dict]) -> str:
    try:
        for body in bodies:
            client.post_channels(bucket, body)
    except (Refused, CatalogueUnavailable) as exc:
        log.error("channel catalogue: %s (not kept: the outbox is unwritable)", exc)
        return FAILED
    return PUBLISHED
