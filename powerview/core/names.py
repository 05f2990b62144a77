"""Every name rule, in one place: company, campaign, device, user and file names, and the
bucket names a company may not take.

Names come from the file system (SFTP folders), from Ansible variables and from operators'
options: they are untrusted everywhere and are checked with these rules before anything uses
them. Each rule answers why a name is refused (a sentence an operator can act on), or None.

- company: strict (1 to 128 letters, digits, '.', '_', '-'), because it becomes an InfluxDB
  bucket, a Grafana uid and an SFTPGo login;
- campaign: permissive (the text people type, spaces and accents included);
- device and user: the company's characters, not the reserved folder names;
- file: no control character, short enough for a numbered suffix;
- buckets: `_…` are InfluxDB's own, the meta bucket, and `<company>_<level>` the derived buckets
  of another company (the levels of schema.LEVELS).
"""

from __future__ import annotations

import re

from powerview.core.schema import DERIVED_LEVELS

PARSED_DIR = "parsed"
ERROR_DIR = "error"
PROCESSED_DIRS = (PARSED_DIR, ERROR_DIR)

_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}\Z")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
MAX_FILE_NAME = 200  # leaves room for the numbered suffix of a move (file systems allow 255 bytes)
_TEMPLATE_MARKERS = ("{{", "{%", "{#")
MAX_CAMPAIGN_NAME = 200  # bytes of UTF-8, like a file name (it also becomes a tag value)
COMPANY_RULE = (
    "use 1 to 128 letters (a-z, A-Z), digits, '.', '_' or '-', not starting with '.' or '_': "
    "a company name becomes an InfluxDB bucket, a Grafana uid and an SFTPGo login, which allow no more"
)

# what a bucket that holds no company's raw measurements is (bucket_kind)
SYSTEM_BUCKET = "system bucket"
META_BUCKET = "meta bucket"
DERIVED_BUCKET = "derived bucket"


def file_name_problem(name: str) -> str | None:
    """Why a device file's name is not acceptable, or None: no control characters (a newline
    would break log lines and line protocol), and short enough to take a numbered suffix."""
    if _CONTROL.search(name):
        return f"file name {name!r} is not allowed: it contains a control character"
    if len(name.encode("utf-8", "surrogateescape")) > MAX_FILE_NAME:
        return f"file name {name[:40]!r}... is not allowed: longer than {MAX_FILE_NAME} bytes"
    return None


def campaign_name_problem(name: str) -> str | None:
    """Why `name` is not an acceptable campaign folder name, or None.

    Campaign folders are named by people ("Campagne été 2025", "L'usine"): spaces, accents,
    apostrophes and any printable character are kept, and the `campaign` tag is the name exactly.
    Refused: an empty name, control or invisible characters (a newline would forge log lines),
    '/', a backslash (InfluxDB versions escape it differently in line protocol, so the tag would
    not be exact), bytes that are not UTF-8, a leading '.', more than 200 bytes, and the reserved
    folder names parsed/error, and Jinja markers `{{`, `{%`, `{#` (the name reaches Ansible as an
    extra variable, which Ansible templates).
    """
    allowed = (
        "a campaign name is 1 to 200 bytes of printable UTF-8 text (spaces, accents, apostrophes "
        "allowed) without '/', backslash or control characters, not starting with '.'"
    )
    if not name:
        return f"campaign name {name!r} is not allowed: {allowed}"
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        return f"campaign name {name!r} is not allowed: it holds bytes that are not UTF-8; {allowed}"
    if size > MAX_CAMPAIGN_NAME:
        return f"campaign name {name[:40]!r}... is not allowed: longer than {MAX_CAMPAIGN_NAME} bytes; {allowed}"
    if name.startswith("."):
        return f"campaign name {name!r} is not allowed: it starts with '.' (hidden); {allowed}"
    if "/" in name or "\\" in name:
        return f"campaign name {name!r} is not allowed: it holds '/' or a backslash; {allowed}"
    if not name.isprintable():
        return f"campaign name {name!r} is not allowed: it holds a control or invisible character; {allowed}"
    if any(marker in name for marker in _TEMPLATE_MARKERS):
        return (
            f"campaign name {name!r} is not allowed: it holds a template marker ('{{{{', '{{%' or '{{#') "
            f"that Ansible would evaluate when provisioning Grafana; {allowed}"
        )
    if name in PROCESSED_DIRS:
        return f"campaign name {name!r} is reserved"
    return None


def name_problem(kind: str, name: str) -> str | None:
    """Why `name` is not an acceptable company/campaign/device/user name, or None when it is.

    Campaign: see `campaign_name_problem` (names people type). Company, device and user: 1 to 128
    characters among letters, digits, `.`, `_` and `-`, not starting with a dot; a company name is
    also an InfluxDB bucket name, so it may not start with `_` either.
    """
    if kind == "campaign":
        return campaign_name_problem(name)
    if kind == "company":
        if name.startswith("_"):
            return f"company name {name!r} is not allowed: a bucket name cannot start with '_'; {COMPANY_RULE}"
        if not _NAME.match(name):
            return f"company name {name!r} is not allowed: {COMPANY_RULE}"
        return None
    if not _NAME.match(name):
        return (
            f"{kind} name {name!r} is not allowed: use 1 to 128 letters, digits, '.', '_' or '-', not starting with '.'"
        )
    if name in PROCESSED_DIRS:
        return f"{kind} name {name!r} is reserved"
    return None


def bucket_name_problem(bucket: str) -> str | None:
    """The company rule, worded for a bucket an operator named (an option, a token's bucket)."""
    problem = name_problem("company", bucket)
    return problem.replace("company name", "bucket name", 1) if problem else None


def derived_level_of(bucket: str) -> str | None:
    """The level whose derived bucket `bucket` would be (`acme_1h` -> "1h"), or None."""
    for level in DERIVED_LEVELS:
        if bucket.endswith(f"_{level}"):
            return level
    return None


def bucket_kind(bucket: str, meta_bucket: str) -> str | None:
    """SYSTEM_BUCKET, META_BUCKET or DERIVED_BUCKET when `bucket` is reserved (it holds no
    company's raw measurements), else None."""
    if bucket.startswith("_"):
        return SYSTEM_BUCKET
    if bucket == meta_bucket:
        return META_BUCKET
    if derived_level_of(bucket) is not None:
        return DERIVED_BUCKET
    return None


def reserved_bucket_problem(name: str, meta_bucket: str) -> str | None:
    """Why a company folder may not be named `name` (its bucket is reserved), or None."""
    kind = bucket_kind(name, meta_bucket)
    if kind == SYSTEM_BUCKET:
        return f"company name {name!r} is not allowed: bucket names starting with '_' are InfluxDB's own"
    if kind == META_BUCKET:
        return f"company name {name!r} is not allowed: it is the meta bucket (TSV_META_BUCKET)"
    if kind == DERIVED_BUCKET:
        level = derived_level_of(name)
        return (
            f"company name {name!r} is not allowed: names ending in _{level} are the derived buckets of another company"
        )
    return None


def company_bucket_problem(name: str, meta_bucket: str) -> str | None:
    """Both company rules: the name's characters, then the reserved buckets."""
    return name_problem("company", name) or reserved_bucket_problem(name, meta_bucket)


def raw_bucket_skip_reason(bucket: str, meta_bucket: str) -> str | None:
    """Why an existing bucket is not a company's raw bucket (a short reason), or None."""
    return bucket_kind(bucket, meta_bucket) or name_problem("company", bucket)
