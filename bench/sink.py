#!/usr/bin/env python3
"""A discarding InfluxDB for the benchmarks: it takes every write, keeps only the number of lines
per bucket, and answers the few other calls of a parser run the way an InfluxDB 2 does, so that
a run against it is a normal run (no warning, exit 0).

    python3 bench/sink.py        # prints its port on stdout, serves until its stdin closes

Answers (HTTP/1.1, keep-alive; what InfluxDB 2 answers, docs.influxdata.com /influxdb/v2/api/):
  GET, HEAD /ping                         204 (the is-this-InfluxDB check)
  POST /api/v2/write?bucket=&org=         204; the body (gzip or not) is counted, then dropped
  POST /write?db=  (1.x)                  the same
  GET /api/v2/orgs?org=NAME               200 {"orgs": [{"id", "name"}]}
  GET /api/v2/buckets?name=&org=          200 {"buckets": [{"id", "name"}]} (every bucket exists)
  POST /api/v2/buckets                    201 (the bucket as JSON)
  GET, POST /query?db=&q=                 200 InfluxQL JSON: `SELECT count(*) ...` answers the lines
                                          written to that bucket (the parser's count-back); any
                                          other statement answers no series
  anything else                           404 {"code": "not found", "message": "path not found"}

Standard library only, no project import: its cost stays out of both contenders' measures.
"""

from __future__ import annotations

import gzip
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

ORG_ID = "0000000000000001"
LINES: dict[str, int] = {}  # bucket -> lines written (one client writes at a time)


def bucket(name: str) -> dict:
    """A bucket as InfluxDB 2 describes it (the fields its clients require)."""
    return {
        "id": f"{abs(hash(name)):016x}"[:16],
        "orgID": ORG_ID,
        "type": "user",
        "name": name,
        "retentionRules": [],
        "links": {},
        "labels": [],
    }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        chunks = []
        while n > 0:
            chunk = self.rfile.read(min(n, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def _answer(self, status: int, payload: object = None) -> None:
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        if data:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        # headers and body in one send, as InfluxDB answers: two small writes would wait for the
        # client's delayed ACK (Nagle), 40 ms an answer
        self._headers_buffer.append(b"\r\n" + data)  # type: ignore[attr-defined]
        self.flush_headers()

    def _params(self, body: bytes = b"") -> tuple[str, dict[str, str]]:
        split = urlsplit(self.path)
        params = {k: v[0] for k, v in parse_qs(split.query).items()}
        if body and "form-urlencoded" in (self.headers.get("Content-Type") or ""):
            params.update({k: v[0] for k, v in parse_qs(body.decode()).items()})
        return split.path.rstrip("/"), params

    def do_HEAD(self) -> None:  # noqa: N802
        self.do_GET()

    def do_GET(self) -> None:  # noqa: N802
        path, params = self._params()
        if path == "/ping":
            self._answer(204)
        elif path == "/api/v2/orgs":
            self._answer(200, {"orgs": [{"id": ORG_ID, "name": params.get("org", "bench")}]})
        elif path == "/api/v2/buckets":
            self._answer(200, {"buckets": [bucket(params.get("name", "bench"))]})
        elif path == "/query":
            self._query(params)
        else:
            self._answer(404, {"code": "not found", "message": "path not found"})

    def do_POST(self) -> None:  # noqa: N802
        body = self._body()
        path, params = self._params(body)
        if path in ("/api/v2/write", "/write"):
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            bucket = params.get("bucket") or params.get("db") or ""
            LINES[bucket] = LINES.get(bucket, 0) + body.count(b"\n") + (not body.endswith(b"\n") and bool(body))
            self._answer(204)
        elif path == "/api/v2/buckets":
            self._answer(201, bucket(str(json.loads(body or b"{}").get("name"))))
        elif path == "/query":
            self._query(params)
        else:
            self._answer(404, {"code": "not found", "message": "path not found"})

    def _query(self, params: dict[str, str]) -> None:
        statement = params.get("q", "")
        result: dict = {"statement_id": 0}
        if statement.upper().startswith("SELECT COUNT(*)"):
            written = LINES.get(params.get("db", ""), 0)
            result["series"] = [{"name": "electrical", "columns": ["time", "count"], "values": [[0, written]]}]
        self._answer(200, {"results": [result]})

    def log_message(self, *args) -> None:
        pass


def main() -> None:
    # the sink lives as long as the bench: it exits when its stdin (a pipe from the bench) closes
    threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)  # a connection per client, kept alive
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
