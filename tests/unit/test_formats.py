"""The readers: format detection, channel schema, row rules, file faults."""

from __future__ import annotations

import io
from datetime import date, datetime, timezone

import pytest

from powerview.formats import FileFault, RowRules, open_table
from samples import TRI_LABELS, row, v002, v003

NOW = datetime(2027, 1, 1, tzinfo=timezone.utc)
RULES = RowRules.for_now(date(2021, 1, 1), "UTC", now=NOW)
M = "02001283"


def read(text: str, rules: RowRules = RULES):
    table = open_table(io.StringIO(text, newline="\n"), rules)
    rows = list(table.rows())
    return table, rows


def epoch(*args) -> int:
    return int(datetime(*args, tzinfo=timezone.utc).timestamp())


def values(rows, k):
    return [None if r[1][k] is None else r[1][k][0] for r in rows]


# --- channel schema -------------------------------------------------------------------------

def test_tri_master_channels_are_u1_u3_then_ch():
    table, _ = read(v002([M] * 7, TRI_LABELS, [row("02/03/26 10:00:00", 1, 2, 3, 4, 5, 6)]))
    assert table.master_type == "tri"
    assert [c.label for c in table.channels] == ["U1", "U2", "U3", "Ch1", "Ch2", "Ch3"]
    assert [c.channel_id for c in table.channels][:4] == [f"M{M}_U1", f"M{M}_U2", f"M{M}_U3", f"M{M}_Ch1"]
    assert [(c.name, c.unit) for c in table.channels][:4] == [("Ph 1", "V"), ("Ph 2", "V"), ("Ph 3", "V"), ("Voie1", "W")]
    assert table.channels[0].field == f"M{M}_U1_V"
    assert {c.device_type for c in table.channels} == {"master"}


def test_mono_master_channels_are_u1_then_ch():
    labels = ["Ph 1 V", "Voie1 W", "Voie2 W", "Voie3 W", "Voie4 W", "Voie5 W"]
    table, _ = read(v002([M] * 7, labels, [row("02/03/26 10:00:00", *range(6))]))
    assert table.master_type == "mono"
    assert [c.label for c in table.channels] == ["U1", "Ch1", "Ch2", "Ch3", "Ch4", "Ch5"]


def test_slaves_are_numbered_per_device_in_column_order():
    serials = ["02001171"] * 7 + ["04000466"] * 3 + ["04000477"] * 2
    labels = TRI_LABELS + ["Voie1 W", "Voie2 W", "Voie3 W", "Voie1 W", "Voie2 W"]
    table, _ = read(v002(serials, labels, [row("02/03/26 10:00:00", *range(11))]))
    slaves = [c for c in table.channels if c.device_type == "slave"]
    assert [c.channel_id for c in slaves] == [
        "M02001171_S04000466_Ch1", "M02001171_S04000466_Ch2", "M02001171_S04000466_Ch3",
        "M02001171_S04000477_Ch1", "M02001171_S04000477_Ch2"]
    assert slaves[3].device_sn == "04000477"
    assert table.master_sn == "02001171"


def test_v003_master_type_comes_from_the_header():
    # labels look tri, but the header says Mono: the header wins
    text = v003([M] * 7, TRI_LABELS, [row("02/03/26 10:00:00", *range(6))],
                header={"DataTimeSettings": "UTC", "MasterType": "Mono"})
    table, _ = read(text)
    assert table.master_type == "mono"
    assert [c.label for c in table.channels][:2] == ["U1", "Ch1"]
    assert table.header_meta["MasterType"] == "Mono"


def test_v003_slave_with_minipince_label():
    serials = ["02000800"] * 7 + ["04001002"] * 2
    labels = TRI_LABELS + ["minipince W", "Voie2 W"]
    table, rows = read(v003(serials, labels, [row("08/02/26 19:10:00", *range(8))]))
    assert table.channels[6].channel_id == "M02000800_S04001002_Ch1"
    assert table.channels[6].name == "minipince"
    assert len(rows) == 1


def test_label_splits_on_its_last_space():
    table, _ = read(v002([M] * 2, ["Tension phase 1 V"], [row("02/03/26 10:00:00", 1)]))
    assert (table.channels[0].name, table.channels[0].unit) == ("Tension phase 1", "V")


# --- timestamps -----------------------------------------------------------------------------

def test_v002_timestamps_use_the_configured_zone():
    text = v002([M] * 2, ["Ph 1 V"], [row("02/03/26 10:00:00", 1), row("02/07/26 10:00:00", 2)])
    _, utc_rows = read(text)
    assert [r[0] for r in utc_rows] == [epoch(2026, 3, 2, 10), epoch(2026, 7, 2, 10)]
    paris = RowRules(RULES.min_epoch, RULES.max_epoch, "Europe/Paris")
    _, paris_rows = read(text, paris)
    # winter: UTC+1, summer: UTC+2
    assert [r[0] for r in paris_rows] == [epoch(2026, 3, 2, 9), epoch(2026, 7, 2, 8)]


def test_v003_local_time_is_dst_correct():
    header = {"DataTimeSettings": "Local", "TimeZoneName": "Europe/Paris", "MasterType": "Mono"}
    rows_ = [row("29/03/26 01:59:00", 1), row("29/03/26 03:00:00", 2), row("25/10/26 01:30:00", 3),
             row("25/10/26 03:30:00", 4)]
    _, rows = read(v003([M] * 2, ["Ph 1 V"], rows_, header=header))
    assert [r[0] for r in rows] == [epoch(2026, 3, 29, 0, 59), epoch(2026, 3, 29, 1, 0),
                                    epoch(2026, 10, 24, 23, 30), epoch(2026, 10, 25, 2, 30)]


def test_v003_utc_setting_ignores_the_zone_name():
    _, rows = read(v003([M] * 2, ["Ph 1 V"], [row("02/07/26 10:00:00", 1)],
                        header={"DataTimeSettings": "UTC", "TimeZoneName": "Europe/Paris"}))
    assert rows[0][0] == epoch(2026, 7, 2, 10)


@pytest.mark.parametrize("bad", ["2026-03-02 10:00:00", "02/03/2026 10:00", "32/03/26 10:00:00",
                                 "02/13/26 10:00:00", "02/03/26 24:00:00", "02/03/26 10:60:00",
                                 "02/03/26 10:00:61", "xx/03/26 10:00:00", "", "02/03/26T10:00:00",
                                 "29/02/25 10:00:00", "٠٢/03/26 10:00:00"])
def test_unparsable_timestamps_skip_the_row(bad):
    table, rows = read(v002([M] * 2, ["Ph 1 V"], [row(bad, 1), row("02/03/26 10:00:00", 2)]))
    assert table.counters.nb_invalid_timestamps == 1
    assert values(rows, 0) == [2.0]
    assert any("line 3" in s and "invalid timestamp" in s for s in table.counters.samples)


def test_clock_not_set_and_future_rows_are_out_of_range():
    text = v002([M] * 2, ["Ph 1 V"], [row("01/01/20 01:00:02", 1), row("02/03/26 10:00:00", 2),
                                      row("31/12/20 23:59:59", 3), row("02/01/27 01:00:00", 4),
                                      row("01/01/27 23:00:00", 5)])
    table, rows = read(text)
    # NOW is 01/01/27 00:00 UTC: up to one day ahead is accepted
    assert values(rows, 0) == [2.0, 5.0]
    assert table.counters.nb_out_of_range_timestamps == 3


# --- values ---------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", ["", "abc", "NaN", "nan", "inf", "-Infinity", "1,5", "1_000", " 12",
                                 "1e999", "0x10", "--1", "1.2.3"])
def test_invalid_values_are_skipped_alone(bad):
    table, rows = read(v002([M] * 3, ["Ph 1 V", "Voie1 W"], [row("02/03/26 10:00:00", bad, 5)]))
    assert table.counters.nb_invalid_values == 1
    assert values(rows, 0) == [None]
    assert values(rows, 1) == [5.0]


@pytest.mark.parametrize("text,number,canonical", [("0", 0.0, "0.0"), ("-0.0", -0.0, "-0.0"),
                                                   ("232.09", 232.09, "232.09"), ("1e3", 1000.0, "1000.0"),
                                                   ("+4.5", 4.5, "4.5"), (".5", 0.5, "0.5")])
def test_valid_values_become_floats(text, number, canonical):
    _, rows = read(v002([M] * 2, ["Ph 1 V"], [row("02/03/26 10:00:00", text)]))
    assert rows[0][1][0] == (number, canonical)


def test_missing_trailing_cells_count_as_invalid_values():
    table, rows = read(v002([M] * 4, ["Ph 1 V", "Voie1 W", "Voie2 W"], ["02/03/26 10:00:00\t230.1"]))
    assert table.counters.nb_invalid_values == 2
    assert rows[0][1] == [(230.1, "230.1"), None, None]


def test_rows_with_more_cells_than_labels_are_skipped():
    table, rows = read(v002([M] * 2, ["Ph 1 V"], [row("02/03/26 10:00:00", 1, 2), row("02/03/26 10:10:00", 3)]))
    assert table.counters.nb_malformed_rows == 1
    assert values(rows, 0) == [3.0]


# --- cut-off writes, duplicates, encodings --------------------------------------------------

def test_a_last_line_without_newline_is_never_written():
    text = v002([M] * 3, ["Ph 1 V", "Voie1 W"], [row("02/03/26 10:00:00", 230.1, 5), "02/03/26 10:10:00\t24"],
                final_newline=False)
    table, rows = read(text)
    assert table.counters.nb_truncated_rows == 1
    assert [r[0] for r in rows] == [epoch(2026, 3, 2, 10)]


def test_v003_is_complete_up_to_end_data_even_without_final_newline():
    text = v003([M] * 2, ["Ph 1 V"], [row("02/03/26 10:00:00", 1)], final_newline=False)
    table, rows = read(text)
    assert table.counters.nb_truncated_rows == 0
    assert len(rows) == 1 and table.warnings == []


def test_v003_without_end_data_drops_the_cut_line_and_warns():
    text = v003([M] * 2, ["Ph 1 V"], [row("02/03/26 10:00:00", 1), "02/03/26 10:1"], end_data=False,
                final_newline=False)
    table, rows = read(text)
    assert table.counters.nb_truncated_rows == 1
    assert len(rows) == 1
    assert any("END_DATA" in w for w in table.warnings)


def test_duplicate_timestamps_are_counted_and_all_kept_in_order():
    rows_ = [row("02/03/26 10:00:00", 1), row("02/03/26 10:10:00", 2), row("02/03/26 10:00:00", 3),
             row("02/03/26 10:10:00", 4), row("02/03/26 10:10:00", 5), row("02/03/26 09:00:00", 6)]
    table, rows = read(v002([M] * 2, ["Ph 1 V"], rows_))
    assert table.counters.nb_duplicate_timestamps == 3
    assert values(rows, 0) == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]  # later rows come later: InfluxDB keeps them
    assert table.counters.time_min == epoch(2026, 3, 2, 9)
    assert table.counters.time_max == epoch(2026, 3, 2, 10, 10)


def test_crlf_and_bom_are_accepted(tmp_path):
    text = v002([M] * 2, ["Ph 1 V"], [row("02/03/26 10:00:00", 1)], newline="\r\n")
    path = tmp_path / "f.tsv"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    with open(path, encoding="utf-8-sig", newline="\n") as fh:
        table = open_table(fh, RULES)
        rows = list(table.rows())
    assert table.master_sn == M and table.channels[0].unit == "V"
    assert values(rows, 0) == [1.0]
    assert table.counters.nb_truncated_rows == 0


def test_channel_statistics():
    table, _ = read(v002([M] * 2, ["Ph 1 V"], [row("02/03/26 10:00:00", 1), row("02/03/26 10:10:00", 3),
                                                row("02/03/26 10:20:00", "x")]))
    assert table.stats[0].as_dict() == {"nb_points": 2, "min": 1.0, "max": 3.0, "mean": 2.0}


# --- file faults ----------------------------------------------------------------------------

@pytest.mark.parametrize("text,expected", [
    ("", "empty"),
    (v002([M] * 2, ["Ph 1 V"], [], fmt="MV_T202_V002"), "MV_T202_V002"),
    (v002([M] * 3, ["Ph 1 V"], []), "SN line has 3 columns but the label line has 2"),
    (v002([M] * 2, ["Ph1V"], []), "has no unit"),
    (v002([M] * 2, ["Ph 1\\x V"], []), "backslash"),
    (v002([M, "02 01"], ["Ph 1 V"], []), "serial number"),
    (v002([M], [], []), "no measurement column"),
    (v003([M] * 2, ["Ph 1 V"], [], header="{not json"), "not valid JSON"),
    (v003([M] * 2, ["Ph 1 V"], [], header="[1, 2]"), "not a JSON object"),
    (v003([M] * 2, ["Ph 1 V"], [], header={"DataTimeSettings": "Local", "TimeZoneName": "Mars/Base"}),
     "unknown time zone"),
    ("START_HEADER\n{}\n", "END_HEADER"),
    (f"{M}\t{M}\n", "found nothing"),
    (f"{M}\t{M}\nMV_T302_V002\tPh 1 V", "the file ends inside its header"),
])
def test_file_faults_name_the_rule(text, expected):
    with pytest.raises(FileFault) as excinfo:
        read(text)
    assert expected in str(excinfo.value)
    assert "rule:" in str(excinfo.value)


def test_unknown_format_names_what_was_found_and_what_is_supported():
    with pytest.raises(FileFault) as excinfo:
        read(v002([M] * 2, ["Ph 1 V"], [], fmt="MV_T202_V002"))
    message = str(excinfo.value)
    assert "'MV_T202_V002'" in message and "MV_T302_V002" in message and "MV_T302_V003" in message
    assert excinfo.value.line == 2
