#!/usr/bin/env python3
"""The baseline of the end-to-end benchmark: the least a correct serializer of a T302 file does,
in its own process, standard library only (its start-up is part of the measure, as the parser's).

    python3 bench/minimal_serializer.py FILE URL BUCKET ORG TOKEN PREFIXES_JSON

Reads FILE (two header lines, then `DD/MM/YY HH:MM:SS<TAB>value...` rows, UTC), writes each value
as a line `<prefix><value> <epoch>` behind the line-protocol prefix of its column (PREFIXES_JSON:
a JSON list, computed once by the bench, the same prefixes the parser writes), and posts batches
of 5000 lines to `URL/api/v2/write?org=ORG&bucket=BUCKET&precision=s` over one keep-alive
connection. No checks, no statistics, no report, no count-back. Prints the number of lines.
"""

from __future__ import annotations

import calendar
import http.client
import json
import sys
from collections.abc import Callable
from operator import add
from urllib.parse import quote, urlsplit

BATCH_LINES = 5000


def serialize(path: str, prefixes: list[str], post: Callable[[bytes], None], batch_lines: int = BATCH_LINES) -> int:
    """The minimal loop: each row's values as lines behind their prefixes, `post`ed in batches of
    `batch_lines` lines. Returns the number of lines (bench_ingest.py runs it in its own process
    too, through its writer)."""
    hours: dict[str, int] = {}
    buffer: list[str] = []
    nb = total = 0
    with open(path, encoding="utf-8", newline="\n") as fh:
        fh.readline()
        fh.readline()
        for line in fh:
            cells = line.rstrip("\n").split("\t")
            stamp = cells[0]
            base = hours.get(stamp[:11])
            if base is None:  # DD/MM/YY HH
                day, month, year, hour = int(stamp[:2]), int(stamp[3:5]), 2000 + int(stamp[6:8]), int(stamp[9:11])
                base = hours[stamp[:11]] = calendar.timegm((year, month, day, hour, 0, 0))
            suffix = f" {base + int(stamp[12:14]) * 60 + int(stamp[15:17])}\n"
            buffer.append(suffix.join(map(add, prefixes, cells[1:])) + suffix)
            nb += len(cells) - 1
            if nb >= batch_lines:
                post("".join(buffer).encode())
                total += nb
                nb = 0
                buffer.clear()
    if buffer:
        post("".join(buffer).encode())
        total += nb
    return total


def main() -> None:
    path, url, bucket, org, token, prefixes_path = sys.argv[1:7]
    with open(prefixes_path) as fh:
        prefixes = json.load(fh)
    where = urlsplit(url)
    connection = http.client.HTTPConnection(where.hostname, where.port)
    target = f"/api/v2/write?org={quote(org)}&bucket={quote(bucket)}&precision=s"
    headers = {"Authorization": f"Token {token}", "Content-Type": "text/plain; charset=utf-8"}

    def post(body: bytes) -> None:
        connection.request("POST", target, body, headers)
        answer = connection.getresponse()
        answer.read()
        if answer.status != 204:
            raise SystemExit(f"HTTP {answer.status}")

    total = serialize(path, prefixes, post)
    connection.close()
    print(total)


if __name__ == "__main__":
    main()
