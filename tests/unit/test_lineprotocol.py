"""Line protocol: escaping, prefixes, batches."""

from __future__ import annotations

from powerview.ingestion import lineprotocol as lp


def test_tag_values_with_spaces_commas_and_equals_are_escaped():
    assert lp.escape_key("Ph 1") == r"Ph\ 1"
    assert lp.escape_key("a,b=c d") == r"a\,b\=c\ d"


def test_backslashes_and_control_characters_never_reach_the_line():
    assert lp.escape_key("C:\\x") == "C:/x"
    assert "\n" not in lp.escape_key("a\nb")


def test_measurement_escapes_commas_and_spaces_but_not_equals():
    assert lp.escape_measurement("a b,c=d") == r"a\ b\,c=d"


def test_prefix_sorts_tags_and_leaves_out_empty_values():
    prefix = lp.line_prefix("electrical", {"z": "1", "a": "x y", "empty": ""}, "M1_U1_V")
    assert prefix == r"electrical,a=x\ y,z=1 M1_U1_V="


def test_meta_line_types_fields():
    line = lp.line(
        "tsv_parser_file",
        {"file_name": "T302 a,b.tsv"},
        {"nb_rows": 3, "duration_s": 0.5, "ok": True, "note": 'say "hi"'},
        1700000000,
    )
    assert line == (
        'tsv_parser_file,file_name=T302\\ a\\,b.tsv nb_rows=3i,duration_s=0.5,ok=true,note="say \\"hi\\"" 1700000000\n'
    )


def test_batches_cut_on_row_boundaries_and_skip_missing_values():
    prefixes = ["m a=", "m b="]
    rows = [(10, ["1.0", None]), (20, ["2.0", "3.0"]), (30, [None, "4.5"])]
    out = list(lp.batches(prefixes, iter(rows), batch_lines=2))
    assert out == [(b"m a=1.0 10\nm a=2.0 20\nm b=3.0 20\n", 3), (b"m b=4.5 30\n", 1)]


def test_no_batch_for_no_point():
    assert list(lp.batches(["m a="], iter([(10, [None])]), batch_lines=5)) == []


def test_a_full_row_and_a_row_with_gaps_give_the_same_lines():
    prefixes = ["m a=", "m b=", "m c="]
    full = list(lp.batches(prefixes, iter([(5, ["1.0", "2.0", "3.0"])]), batch_lines=100))
    gaps = list(lp.batches(prefixes, iter([(5, ["1.0", None, "3.0"])]), batch_lines=100))
    assert full == [(b"m a=1.0 5\nm b=2.0 5\nm c=3.0 5\n", 3)]
    assert gaps == [(b"m a=1.0 5\nm c=3.0 5\n", 2)]


def test_key_limit_is_influxdbs_65535_bytes_of_series_and_field_key():
    tags = {"channel_name": "x"}
    assert lp.key_problem("electrical", tags, "M1_U1_V") is None
    # series key "electrical,channel_name=" + value, "#!~#", field key: exactly at the limit
    room = 65535 - len("electrical,channel_name=") - len("#!~#") - len("M1_U1_V")
    assert lp.key_problem("electrical", {"channel_name": "é" * (room // 2)}, "M1_U1_V") is None
    problem = lp.key_problem("electrical", {"channel_name": "é" * (room // 2 + 1)}, "M1_U1_V")
    assert problem and "65535" in problem  # bytes, not characters: é is two bytes
    fits = 65535 - len("electrical,channel_name=a\\ b") - len("#!~#")  # the escape counts
    assert lp.key_problem("electrical", {"channel_name": "a b"}, "f" * fits) is None
    assert lp.key_problem("electrical", {"channel_name": "a b"}, "f" * (fits + 1))
