#!/usr/bin/env python3
"""Entry point: python3 manage_influx_tokens.py --bucket companyX  (token alone on stdout; --help)"""

from powerview.cli.tokens import main

if __name__ == "__main__":
    main()
