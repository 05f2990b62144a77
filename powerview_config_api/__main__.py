"""python -m powerview_config_api --host H --port P --db PATH  (env CONFIG_API_DB, CONFIG_API_TOKEN).

python -m powerview_config_api import --from URL [--dry-run]: carry the deployed API's data over
(powerview_config_api/importer.py)."""

from __future__ import annotations

import argparse
import logging
import os
import sqlite3
import sys

from powerview.core.exitcodes import ExitCode, exit_codes_text

DEFAULT_DB = "/data/powerview-2/config-api.sqlite3"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["import"]:
        from .importer import main as import_main

        return import_main(argv[1:])
    parser = argparse.ArgumentParser(
        prog="powerview-config-api",
        description=__doc__,
        epilog=exit_codes_text({ExitCode.OK: "stopped", ExitCode.USAGE: "usage error, or a database it cannot use"})
        + "\npowerview-config-api import --help: carry the deployed API's data over (docs/config-api.md)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="Address to listen on (default 127.0.0.1).")
    parser.add_argument("--port", type=int, default=8000, help="Port (default 8000).")
    parser.add_argument(
        "--db",
        default=os.environ.get("CONFIG_API_DB") or DEFAULT_DB,
        help=f"SQLite file of this API, created if absent (env CONFIG_API_DB, default {DEFAULT_DB}).",
    )
    parser.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="Log verbosity (default info).",
    )
    args = parser.parse_args(argv)

    import uvicorn

    from .app import create_app
    from .store import ForeignDatabase, Store

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(message)s")
    try:
        store = Store(args.db)
    except ForeignDatabase as exc:
        print(f"powerview-config-api: error: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    except (OSError, sqlite3.Error) as exc:
        print(f"powerview-config-api: error: {args.db}: {getattr(exc, 'strerror', None) or exc}", file=sys.stderr)
        return ExitCode.USAGE
    token = os.environ.get("CONFIG_API_TOKEN", "").strip() or None
    if token is None:
        logging.warning("CONFIG_API_TOKEN is not set: writes are open to whoever reaches this port")
    uvicorn.run(
        create_app(store, token),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        proxy_headers=False,
        server_header=False,
    )
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())
