#!/usr/bin/env python3
"""Entry point operators use: python3 tsv_parser.py --dataFolder /srv/sftpgo/data [--tsvFile F] [--dry-run]"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))

from powerview.cli import main  # noqa: E402

if __name__ == "__main__":
    main()
