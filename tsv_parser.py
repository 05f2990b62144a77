#!/usr/bin/env python3
"""Entry point operators use: python3 tsv_parser.py --dataFolder /srv/sftpgo/data [--tsvFile F] [--dry-run]

The `powerview` package comes from the virtualenv (`pip install -e .`, done by `make venv`); run
from a checkout, Python also finds it beside this script.
"""

from powerview.cli.parse import main

if __name__ == "__main__":
    main()
