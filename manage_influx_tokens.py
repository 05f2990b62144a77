#!/usr/bin/env python3
"""Entry point: python3 manage_influx_tokens.py --bucket companyX  (token alone on stdout; --help)"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))

from powerview.tokens_cli import main  # noqa: E402

if __name__ == "__main__":
    main()
