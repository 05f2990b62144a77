"""The name rules (powerview.core.names): company, campaign, device, file names and reserved buckets,
and the levels table (powerview.core.schema.LEVELS) they use."""

from __future__ import annotations

import pytest

from powerview.core import names, schema


@pytest.mark.parametrize("name", ["acme", "ACME_2", "camp-base.v2", "02001283", "_x"])
def test_allowed_names(name):
    assert names.name_problem("campaign", name) is None


@pytest.mark.parametrize(
    "name", [".hidden", "a b", "a/b", "", "x" * 129, "é", "$(touch x)", "a`b`", "a'b", "..", "parsed", "error"]
)
def test_refused_names(name):
    assert names.name_problem("device", name)


def test_company_is_a_bucket_name():
    assert "bucket" in names.name_problem("company", "_monitoring")


@pytest.mark.parametrize("name", ["Campagne été 2025", "L'usine", "Zone=1, bâtiment B", "é" * 100, "x" * 200, "Noël"])
def test_campaign_names_people_type_are_allowed(name):
    assert names.name_problem("campaign", name) is None


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", "1 to 200 bytes"),
        (".cache", "starts with '.'"),
        ("a/b", "'/' or a backslash"),
        ("a\\b", "'/' or a backslash"),
        ("a\nb", "control or invisible"),
        ("a\tb", "control or invisible"),
        ("a\u202eb", "control or invisible"),  # right-to-left override: spoofs a name in Grafana
        ("a\x85b", "control or invisible"),
        ("é" * 101, "longer than 200 bytes"),
        ("bad\udcffbytes", "not UTF-8"),  # a non-UTF-8 byte, as os.listdir hands it over
        ("{{ lookup('pipe', 'id') }}", "template marker"),
        ("{% if %}", "template marker"),
        ("parsed", "reserved"),
        ("error", "reserved"),
    ],
)
def test_campaign_names_still_refused_say_why(name, reason):
    problem = names.name_problem("campaign", name)
    assert problem and reason in problem


@pytest.mark.parametrize("name", ["Campagne été", "L'usine", "a b", "é", "_acme"])
def test_company_names_keep_the_strict_rule_and_say_why(name):
    problem = names.name_problem("company", name)
    assert problem and "letters (a-z, A-Z), digits" in problem
    assert "InfluxDB bucket, a Grafana uid and an SFTPGo login" in problem


def test_a_control_character_or_a_long_name_is_refused_for_a_file():
    assert "control character" in names.file_name_problem("a\nb.tsv")
    assert "longer than 200 bytes" in names.file_name_problem("x" * 201)
    assert names.file_name_problem("Campagne été.tsv") is None


@pytest.mark.parametrize(
    ("name", "kind", "problem"),
    [
        (
            "_monitoring",
            names.SYSTEM_BUCKET,
            "company name '_monitoring' is not allowed: bucket names starting with '_' are InfluxDB's own",
        ),
        (
            "powerview_meta",
            names.META_BUCKET,
            "company name 'powerview_meta' is not allowed: it is the meta bucket (TSV_META_BUCKET)",
        ),
        (
            "acme_1h",
            names.DERIVED_BUCKET,
            "company name 'acme_1h' is not allowed: names ending in _1h are the derived buckets of another company",
        ),
        (
            "acme_1d",
            names.DERIVED_BUCKET,
            "company name 'acme_1d' is not allowed: names ending in _1d are the derived buckets of another company",
        ),
        (
            "acme_1w",
            names.DERIVED_BUCKET,
            "company name 'acme_1w' is not allowed: names ending in _1w are the derived buckets of another company",
        ),
        ("acme_1hx", None, None),
        ("acme", None, None),
    ],
)
def test_reserved_buckets_are_named_with_the_operators_message(name, kind, problem):
    assert names.bucket_kind(name, "powerview_meta") == kind
    assert names.reserved_bucket_problem(name, "powerview_meta") == problem
    assert names.company_bucket_problem(name, "powerview_meta") == (names.name_problem("company", name) or problem)


def test_an_other_meta_bucket_name_is_the_reserved_one():
    assert names.reserved_bucket_problem("powerview_meta", "meta") is None
    assert "meta bucket" in names.reserved_bucket_problem("meta", "meta")


def test_a_bucket_named_by_an_operator_is_refused_as_a_bucket():
    assert names.bucket_name_problem("acme") is None
    assert names.bucket_name_problem("a b").startswith("bucket name 'a b' is not allowed: use 1 to 128 letters")


def test_the_levels_table_is_the_one_the_settings_and_the_derived_buckets_use():
    assert [(lv.name, lv.seconds, lv.chunk) for lv in schema.LEVELS] == [
        ("1h", 3600, 744),
        ("1d", 86400, 366),
        ("1w", 604800, 260),
    ]
    assert schema.DERIVED_LEVELS == ("1h", "1d", "1w")
    # each level is a whole number of the finer one (windows.plan computes it from that one)
    for finer, coarser in zip(schema.LEVELS, schema.LEVELS[1:], strict=False):
        assert coarser.seconds % finer.seconds == 0
