"""The HTTP API (FastAPI): the channel catalogue, the clients, their series configuration.

Reads are open (Grafana's proxy reads them); writes need `Authorization: Bearer <token>` when a
token is configured. Names in paths and bodies follow the project's rules
(`powerview.core.names.name_problem`: a bucket is a company name). The contract: docs/config-api.md.
"""

from __future__ import annotations

import hmac
import re
import sqlite3
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from powerview import __version__
from powerview.core.names import name_problem

from .store import Conflict, NotFound, Store, UnknownChannels

MAX_BODY_BYTES = 1 << 20  # 1 MiB
MAX_CHANNELS = 2000  # channels in one POST, entries in one save
MAX_TEXT = 256  # any string field

_CLIENT_ID = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._@-]{0,254}\Z")

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _no_control(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("control characters (newline, tab, ...) are not allowed")
    if not _storable(value):
        raise ValueError("not valid Unicode text (a lone surrogate such as \\ud800)")
    return value


def _storable(text: str) -> bool:
    """True when `text` is valid Unicode (SQLite stores UTF-8: a lone surrogate is not)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _printable(value) -> str:
    """Any value as JSON-safe text for an error message (no lone surrogate, no NaN)."""
    text = value if isinstance(value, str) else str(value)
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _validation_errors(errors) -> list[dict]:
    """FastAPI's 422 detail without the refused input itself: an input such as 1e400 (inf) or a
    lone surrogate cannot be written back as JSON, which made the answer a 500."""
    return [
        {
            "type": _printable(error.get("type", "")),
            "loc": [item if isinstance(item, int) else _printable(item) for item in error.get("loc", ())],
            "msg": _printable(error.get("msg", "")),
        }
        for error in errors
    ]


# a bounded string without control characters (no newline in a label or an id)
Text = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TEXT), AfterValidator(_no_control)]
OptionalText = Annotated[str, StringConstraints(max_length=MAX_TEXT), AfterValidator(_no_control)] | None
Name = Annotated[str, StringConstraints(max_length=MAX_TEXT)]  # checked by name_problem


def _campaign(value: str) -> str:
    problem = name_problem("campaign", value)
    if problem:
        raise ValueError(problem)
    return value


CampaignName = Annotated[str, StringConstraints(max_length=MAX_TEXT), AfterValidator(_campaign)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ChannelIn(Strict):
    fieldId: Text
    channelId: Text | None = None
    channelUnit: Text | None = None
    channelLabel: OptionalText = None
    deviceMasterSn: OptionalText = None

    @model_validator(mode="after")
    def ids_from_field(self):
        """fieldId is `<channelId>_<channelUnit>`; either part may be omitted (derived from it)."""
        channel_id, sep, unit = self.fieldId.rpartition("_")
        if self.channelId is None and self.channelUnit is None:
            if not (sep and channel_id and unit):
                raise ValueError(f"fieldId {self.fieldId!r} is not <channelId>_<channelUnit>: give both")
            self.channelId, self.channelUnit = channel_id, unit
        elif self.channelId is None or self.channelUnit is None:
            raise ValueError("give channelId and channelUnit together, or neither")
        if self.fieldId != f"{self.channelId}_{self.channelUnit}":
            raise ValueError(
                f"fieldId {self.fieldId!r} must be channelId + '_' + channelUnit ({self.channelId}_{self.channelUnit})"
            )
        return self


class ChannelsIn(Strict):
    campaign: CampaignName
    channels: Annotated[list[ChannelIn], Field(min_length=1, max_length=MAX_CHANNELS)]


class ClientIn(Strict):
    bucket: Name


class SeriesConfigIn(Strict):
    fieldId: Text
    displayName: OptionalText = None
    visible: bool | None = None
    unit: OptionalText = None
    order: Annotated[int, Field(ge=0, le=100_000)] | None = None
    color: OptionalText = None


class SeriesConfigsIn(Strict):
    campaign: CampaignName
    configs: Annotated[list[SeriesConfigIn], Field(min_length=1, max_length=MAX_CHANNELS)]


def _checked(kind: str, value: str) -> str:
    problem = name_problem(kind, value)
    if problem:
        raise HTTPException(422, problem)
    return value


def _checked_client(client_id: str) -> str:
    if not _CLIENT_ID.match(client_id):
        raise HTTPException(
            422,
            f"client id {client_id!r} is not allowed: use 1 to 255 letters, digits, "
            "'.', '_', '-' or '@', not starting with '.'",
        )
    return client_id


class BodyLimit:
    """ASGI middleware: a request body larger than `limit` bytes is answered 413, unread beyond it."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        for name, value in scope.get("headers", []):
            if name == b"content-length" and (not value.isdigit() or int(value) > self.limit):
                return await self._too_large(scope, receive, send)
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.limit:
                return await self._too_large(scope, receive, send)
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)

    async def _too_large(self, scope, receive, send):
        response = JSONResponse({"detail": f"request body larger than {self.limit} bytes"}, status_code=413)
        await response(scope, receive, send)


def create_app(store: Store, token: str | None) -> FastAPI:
    app = FastAPI(
        title="powerview-config-api",
        version=__version__,
        description="Channel catalogue and series configuration of PowerView (docs/config-api.md).",
    )

    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)

    @app.exception_handler(RequestValidationError)
    async def refused(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _validation_errors(exc.errors())}, status_code=422)

    @app.exception_handler(UnicodeError)
    async def not_storable(request: Request, exc: UnicodeError) -> JSONResponse:
        # a safety net: any text that reached the store unchecked and cannot be stored as UTF-8
        return JSONResponse({"detail": "the request holds text that is not valid Unicode"}, status_code=422)

    def writer(request: Request) -> None:
        if not token:
            return
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            raise HTTPException(
                401,
                "a write needs the header 'Authorization: Bearer <CONFIG_API_TOKEN>'",
                headers={"WWW-Authenticate": "Bearer"},
            )

    write = [Depends(writer)]

    @app.get("/health")
    def health():
        try:
            problem = store.write_problem()
            if problem is None:
                store.ping()
        except (OSError, sqlite3.Error) as exc:
            problem = f"the database cannot be read: {exc}"
        if problem:  # 200 only when a write would succeed now
            return JSONResponse({"status": "unavailable", "detail": problem}, status_code=503)
        return {
            "status": "ok",
            "version": __version__,
            "schemaVersion": store.schema_version(),
            "auth": "token" if token else "open",
        }

    @app.post("/buckets/{bucket}/channels", dependencies=write)
    def post_channels(bucket: str, body: ChannelsIn):
        _checked("company", bucket)
        inserted, updated = store.upsert_channels(bucket, body.campaign, [c.model_dump() for c in body.channels])
        return {"inserted": inserted, "updated": updated}

    @app.get("/buckets/{bucket}/channels")
    def get_channels(bucket: str, campaign: Annotated[str | None, Query(max_length=MAX_TEXT)] = None):
        _checked("company", bucket)
        if campaign is not None:
            _checked("campaign", campaign)
        return store.channels(bucket, campaign)

    @app.put("/clients/{client_id}", dependencies=write, status_code=200)
    def put_client(client_id: str, body: ClientIn, response: Response):
        _checked_client(client_id)
        _checked("company", body.bucket)
        try:
            created = store.put_client(client_id, body.bucket)
        except Conflict as exc:
            raise HTTPException(409, str(exc)) from None
        response.status_code = 201 if created else 200
        return {"clientId": client_id, "bucket": body.bucket}

    @app.get("/clients/{client_id}")
    def get_client(client_id: str):
        _checked_client(client_id)
        try:
            return {"clientId": client_id, "bucket": store.client_bucket(client_id)}
        except NotFound as exc:
            raise HTTPException(404, str(exc)) from None

    @app.delete("/clients/{client_id}", dependencies=write, status_code=204)
    def delete_client(client_id: str):
        _checked_client(client_id)
        try:
            store.delete_client(client_id)
        except NotFound as exc:
            raise HTTPException(404, str(exc)) from None
        return Response(status_code=204)

    @app.get("/clients/{client_id}/series-config/configs")
    def get_series_configs(client_id: str, campaign: Annotated[str | None, Query(max_length=MAX_TEXT)] = None):
        _checked_client(client_id)
        if campaign is not None:
            _checked("campaign", campaign)
        try:
            return store.series_configs(client_id, campaign)
        except NotFound as exc:
            raise HTTPException(404, str(exc)) from None

    @app.put("/clients/{client_id}/series-config/configs", dependencies=write)
    def save_series_configs(client_id: str, body: SeriesConfigsIn):
        _checked_client(client_id)
        try:
            store.save_series_configs(client_id, body.campaign, [c.model_dump() for c in body.configs])
            return store.series_configs(client_id, body.campaign)
        except NotFound as exc:
            raise HTTPException(404, str(exc)) from None
        except UnknownChannels as exc:
            raise HTTPException(422, str(exc)) from None

    @app.delete("/clients/{client_id}/series-config/configs", dependencies=write)
    def reset_series_configs(
        client_id: str,
        campaign: Annotated[str, Query(max_length=MAX_TEXT)],
        fieldId: Annotated[str | None, Query(max_length=MAX_TEXT)] = None,
    ):  # noqa: N803
        _checked_client(client_id)
        _checked("campaign", campaign)
        try:
            return {"reset": store.reset_series_configs(client_id, campaign, fieldId)}
        except NotFound as exc:
            raise HTTPException(404, str(exc)) from None

    return app
