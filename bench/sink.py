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
  GET /api/v2/buckets?name=&org=          200 {"buckets": [{"id", "name", ...}]} (every bucket exists)
  POST /api/v2/buckets                    201 (the bucket as JSON)
  GET, POST /query?db=&q=                 200 InfluxQL JSON: `SELECT count(*) ...` answers the lines
                                          written to that bucket (the parser's count-back); any
                                          other statement answers no series
  anything else                           404 {"code": "not found", "message": "path not found"}

Standard library only, no project import. It must cost both contenders as little as possible
(its time is in both measures): raw sockets, one thread per connection, a body read into a
reused buffer and only its newlines counted, each answer sent in one write.
"""

from __future__ import annotations

import gzip
import json
import os
import socket
import sys
import threading
from urllib.parse import parse_qs, urlsplit

ORG_ID = "0000000000000001"
LINES: dict[str, int] = {}  # bucket -> lines written
LOCK = threading.Lock()


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


REASONS = {200: "OK", 201: "Created", 204: "No Content", 404: "Not Found"}


def answer(status: int, payload: object = None) -> bytes:
    data = b"" if payload is None else json.dumps(payload).encode()
    head = f"HTTP/1.1 {status} {REASONS[status]}\r\nContent-Length: {len(data)}\r\n"
    if data:
        head += "Content-Type: application/json; charset=utf-8\r\n"
    return head.encode() + b"\r\n" + data


NO_CONTENT = answer(204)
NOT_FOUND = {"code": "not found", "message": "path not found"}


def respond(method: str, target: str, headers: dict[str, str], buffer: bytearray, length: int) -> bytes:
    """The answer to one request whose body is `buffer[:length]`."""
    split = urlsplit(target)
    path = split.path.rstrip("/")
    params = {k: v[0] for k, v in parse_qs(split.query).items()}
    if method == "POST" and path in ("/api/v2/write", "/write"):
        if headers.get("content-encoding") == "gzip":
            buffer = bytearray(gzip.decompress(buffer[:length]))
            length = len(buffer)
        written = buffer.count(b"\n", 0, length) + (length > 0 and buffer[length - 1] != 10)
        name = params.get("bucket") or params.get("db") or ""
        with LOCK:
            LINES[name] = LINES.get(name, 0) + written
        return NO_CONTENT
    body = bytes(buffer[:length])
    if method == "POST" and "form-urlencoded" in headers.get("content-type", ""):
        params.update({k: v[0] for k, v in parse_qs(body.decode()).items()})
    if path == "/ping":
        return NO_CONTENT
    if path == "/api/v2/orgs":
        return answer(200, {"orgs": [{"id": ORG_ID, "name": params.get("org", "bench")}]})
    if path == "/api/v2/buckets" and method == "GET":
        return answer(200, {"buckets": [bucket(params.get("name", "bench"))]})
    if path == "/api/v2/buckets" and method == "POST":
        return answer(201, bucket(str(json.loads(body or b"{}").get("name"))))
    if path == "/query":
        result: dict = {"statement_id": 0}
        if params.get("q", "").upper().startswith("SELECT COUNT(*)"):
            with LOCK:
                written = LINES.get(params.get("db", ""), 0)
            result["series"] = [{"name": "electrical", "columns": ["time", "count"], "values": [[0, written]]}]
        return answer(200, {"results": [result]})
    return answer(404, NOT_FOUND)


def serve(conn: socket.socket) -> None:
    """Requests of one connection, one after the other, until the client closes it."""
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buffer = bytearray(1 << 20)
    pending = b""
    with conn:
        while True:
            while b"\r\n\r\n" not in pending:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                pending += chunk
            head, _, pending = pending.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
            length = int(headers.get("content-length") or 0)
            if length > len(buffer):
                buffer = bytearray(length)
            view = memoryview(buffer)
            got = min(len(pending), length)
            view[:got] = pending[:got]
            pending = pending[got:]
            while got < length:
                n = conn.recv_into(view[got:length])
                if not n:
                    return
                got += n
            conn.sendall(respond(method, target, headers, buffer, length))


def main() -> None:
    # the sink lives as long as the bench: it exits when its stdin (a pipe from the bench) closes
    threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
    server = socket.create_server(("127.0.0.1", 0))
    print(server.getsockname()[1], flush=True)
    while True:
        conn, _ = server.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()
