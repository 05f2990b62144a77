"""Where the parser's batches go, as the ingestion sees it: the `Writer` protocol and the three
ways a write can fail (InfluxDB unavailable: retry later; the data refused: the file's fault; the
request too large: split it). The writers themselves are in `powerview.delivery`; ingestion
depends only on this contract.
"""

from __future__ import annotations

from typing import Protocol


class InfluxUnavailable(Exception):
    """InfluxDB could not be reached or kept failing for the whole retry budget: retry later."""


class InfluxRejected(Exception):
    """InfluxDB refused the data itself (400, 422; 413 for a single line): retrying the same bytes
    will not help. The file goes to error/ with InfluxDB's message."""


class RequestTooLarge(InfluxRejected):
    """HTTP 413: the request was too large for the server, not necessarily the data wrong."""


class Writer(Protocol):
    """Where the parser's line-protocol batches go (InfluxDB, a dry run's counter...)."""

    def write(self, bucket: str, body: bytes) -> None:
        """Write one batch; return once it is acknowledged. Raises InfluxUnavailable,
        InfluxRejected or ConfigError."""

    def close(self) -> None: ...


__all__ = ["InfluxRejected", "InfluxUnavailable", "RequestTooLarge", "Writer"]
