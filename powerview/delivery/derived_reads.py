"""The reads of a derived recompute, through the one InfluxQL client (`influxql.QueryClient`).

InfluxDB 1.x and 2.x run several statements separated by `;` in one /query request; InfluxDB 3
takes one statement a request, so there one statement covers every channel (`for_client`).
On 1.x and 2.x the per-channel statements go without `GROUP BY *` (about twice as fast on 1.x),
followed in the same request by `SHOW SERIES` of the device: a channel's one series gives its
tags; a channel with several series is read again with `GROUP BY *` (_read_narrow).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from functools import partial

from powerview.delivery.influx import InfluxRejected, InfluxUnavailable
from powerview.delivery.influxql import QueryClient, quote_ident
from powerview.delivery.windows import (
    MEASUREMENTS,
    RAW_MEASUREMENT,
    Span,
    by_channel,
    derived_bucket,
    fold_statements,
    where_clause,
)
from powerview.ingestion import lineprotocol

log = logging.getLogger(__name__)


def for_client(span: Span, client: QueryClient) -> Span:
    """The span whose statements suit the server: one statement per channel where a request
    carries several (1.x, 2.x: the fastest there), one statement over every field where it
    carries one (InfluxDB 3: a request a channel would multiply the round trips)."""
    if span.channels and client.single_statement:
        return replace(span, channels=())
    return span


def read_raw(client: QueryClient, span: Span, statements: Callable[[bool], list[str]]) -> list[dict]:
    """Per-channel statements on the raw bucket (see _read_narrow)."""
    return _read_narrow(client, span, span.bucket, (RAW_MEASUREMENT,), statements)


def read_lower(client: QueryClient, span: Span, lower: str, level: str, first: int, last: int) -> list[dict]:
    """The windows of the level below that make up [first, last) of `level` (see _read_narrow)."""
    return _read_narrow(
        client,
        span,
        derived_bucket(span.bucket, lower),
        tuple(MEASUREMENTS.values()),
        partial(fold_statements, span, lower, level, first, last),
    )


def _read_narrow(
    client: QueryClient,
    span: Span,
    database: str,
    measurements: tuple[str, ...],
    statements: Callable[[bool], list[str]],
) -> list[dict]:
    """One result per statement of `statements(True)` (one per channel, `GROUP BY *`: the tags
    of each series in the answer), read the cheaper way where the server takes several statements
    a request: `statements(False)`, the same without `GROUP BY *` (InfluxDB 1.x answers a
    per-channel statement about twice as fast without it), followed in the SAME request by
    `SHOW SERIES` of the span's device. A channel with exactly one series in that list gets its
    tags from it; a channel with several (a label changed between two files), or a list that
    cannot be read back exactly, is read again with `GROUP BY *` (a second request).

    Why the list is complete: InfluxDB adds a series to its index before the points of that
    series can be read, and runs the statements of a request in order; so a series whose points
    a statement read is in the `SHOW SERIES` that follows it, even one written meanwhile."""
    channels = [channel or "" for channel, _ in by_channel(span)]
    if client.single_statement or not span.channels or not getattr(client, "show_series", True):
        return read(client, database, statements(True))
    plain = statements(False)
    show = f"SHOW SERIES FROM {', '.join(quote_ident(m) for m in measurements)} WHERE {where_clause(span, None, None)}"
    try:
        answers = read(client, database, [*plain, show])
    except InfluxRejected as exc:
        grouped = read(client, database, statements(True))  # raises when the statements are refused
        log.info("%s: %s: reading with GROUP BY * from now on", database, exc)
        client.show_series = False  # the server refuses SHOW SERIES
        return grouped
    known = series_by_channel(answers[-1], measurements)
    results: list[dict] = []
    again: list[int] = []
    for index, result in enumerate(answers[:-1]):
        found = result.get("series") or []
        tag_sets = None if known is None else known.get(channels[index % len(channels)], set())
        if tag_sets is not None and len(tag_sets) == 1:
            tags = dict(next(iter(tag_sets)))
            result = {**result, "series": [{**one, "tags": tags} for one in found]}
        elif tag_sets is None or tag_sets or found:  # several series, or rows without a series
            again.append(index)
        results.append(result)
    if again:
        with_tags = statements(True)
        for index, result in zip(again, read(client, database, [with_tags[i] for i in again])):
            results[index] = result
    return results


def series_by_channel(result: dict, measurements: Iterable[str]) -> dict[str, set[tuple]] | None:
    """Answer of `SHOW SERIES` -> {channel_id: {tag set (sorted items)}} over `measurements`;
    None when a series key does not read back exactly (an escape this reading cannot undo)."""
    wanted = set(measurements)
    by_channel: dict[str, set[tuple]] = {}
    tag_sets: dict[str, tuple | None] = {}  # the same tags recur in every measurement
    for one in result.get("series") or []:
        for row in one.get("values") or []:
            key = str(row[0])
            measurement, _, rest = key.partition(",")
            if "\\" in measurement:
                return None
            if rest not in tag_sets:
                tag_sets[rest] = _parse_tags(rest)
            tags = tag_sets[rest]
            if tags is None:
                return None
            channel = dict(tags).get("channel_id")
            if measurement in wanted and channel is not None:
                by_channel.setdefault(channel, set()).add(tags)
    return by_channel


_KEY_PART = re.compile(r"(?:\\.|[^,\\])+")
_TAG = re.compile(r"((?:\\.|[^=\\])+)=(.*)")
_ESCAPED = re.compile(r"\\(.)")


def _parse_tags(text: str) -> tuple | None:
    """The tags of a series key after its measurement (`k=v,k=v`, line protocol escapes) as
    sorted items; None unless writing them back gives the same text (a backslash in a value,
    say: that device is read with GROUP BY *)."""
    if "\\" not in text:  # nothing escaped: no comma, equals sign or space in any name
        pairs = [part.partition("=") for part in text.split(",")] if text else []
        if any(not name or not sep for name, sep, _ in pairs):
            return None
        return tuple(sorted((name, value) for name, _, value in pairs if value))
    tags = {}
    for part in _KEY_PART.findall(text):
        pair = _TAG.fullmatch(part)
        if pair is None:
            return None
        tags[_ESCAPED.sub(r"\1", pair[1])] = _ESCAPED.sub(r"\1", pair[2])
    if lineprotocol.tag_set(tags) != "," + text:
        return None
    return tuple(sorted((name, value) for name, value in tags.items() if value))


def read(client: QueryClient, database: str, statements: list[str]) -> list[dict]:
    """One result per statement. InfluxDB 1.x and 2.x run several statements separated by `;` in
    one /query request, POSTed (a long query stays out of the URL: no 414 from a proxy, no URL
    re-encoding); InfluxDB 3 accepts one statement per request (its v1 /query refuses more with
    HTTP 500 "must provide only one InfluxQl statement per query"), so each goes on its own."""
    if client.single_statement:
        results = [result for statement in statements for result in client.raw(database, statement)["results"]]
    else:
        results = client.raw(database, "; ".join(statements), write=True)["results"]
    if len(results) != len(statements):
        raise InfluxUnavailable(f"InfluxQL on {database}: {len(results)} result(s) for {len(statements)} statement(s)")
    return results


def series_of(results: list[dict]) -> Iterator[dict]:
    for result in results:
        yield from result.get("series") or []
