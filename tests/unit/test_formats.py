"""The readers: format detection, channel schema, row rules, file faults."""

from __future__ import annotations

import io
import json
from datetime import UTC, date, datetime

import pytest

from powerview.ingestion.formats import FileFault, RowRules, open_device_file

from samples import TRI_LABELS, row, v002, v003

NOW = datetime(2027, 1, 1, tzinfo=UTC)
RULES = RowRules.for_now(date(2021, 1, 1), "UTC", now=NOW)
M = "02001283"


class Read:
    """A file read to the end: its header, rows and summary (the shape of what ingest uses)."""

    def __init__(self, device):
        self.header = device.header
        self.rows = list(device.rows)
        self.summary = device.rows.summary()
        self.counters = self.summary.counters
        self.channels = self.header.channels
        self.master_type = self.header.master_type
        self.master_sn = self.header.master_sn
        self.warnings = list(self.header.warnings) + self.summary.warnings
        self.samples = self.summary.samples


def read(text: str, rules: RowRules = RULES):
    done = Read(open_device_file(io.StringIO(text, newline="\n"), rules))
    return done, done.rows


def epoch(*args) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp())


def values(rows, k):
    return [None if r[1][k] is None else float(r[1][k]) for r in rows]


# --- channel schema -------------------------------------------------------------------------


def test_tri_master_channels_are_u1_u3_then_ch():
    table, _ = read(v002([M] * 7, TRI_LABELS, [row("02/03/26 10:00:00", 1, 2, 3, 4, 5, 6)]))
    assert table.master_type == "tri"
    assert [c.label for c in table.channels] == ["U1", "U2", "U3", "Ch1", "Ch2", "Ch3"]
    assert [c.channel_id for c in table.channels][:4] == [f"M{M}_U1", f"M{M}_U2", f"M{M}_U3", f"M{M}_Ch1"]
    assert [(c.name, c.unit) for c in table.channels][:4] == [
        ("Ph 1", "V"),
        ("Ph 2", "V"),
        ("Ph 3", "V"),
        ("Voie1", "W"),
    ]
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
        "M02001171_S04000466_Ch1",
        "M02001171_S04000466_Ch2",
        "M02001171_S04000466_Ch3",
        "M02001171_S04000477_Ch1",
        "M02001171_S04000477_Ch2",
    ]
    assert slaves[3].device_sn == "04000477"
    assert table.master_sn == "02001171"


def test_v003_master_type_comes_from_the_header():
    # labels look tri, but the header says Mono: the header wins
    text = v003(
        [M] * 7,
        TRI_LABELS,
        [row("02/03/26 10:00:00", *range(6))],
        header={"DataTimeSettings": "UTC", "MasterType": "Mono"},
    )
    table, _ = read(text)
    assert table.master_type == "mono"
    assert [c.label for c in table.channels][:2] == ["U1", "Ch1"]
    assert table.header.meta["MasterType"] == "Mono"


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
    rows_ = [
        row("29/03/26 01:59:00", 1),
        row("29/03/26 03:00:00", 2),
        row("25/10/26 01:30:00", 3),
        row("25/10/26 03:30:00", 4),
    ]
    _, rows = read(v003([M] * 2, ["Ph 1 V"], rows_, header=header))
    assert [r[0] for r in rows] == [
        epoch(2026, 3, 29, 0, 59),
        epoch(2026, 3, 29, 1, 0),
        epoch(2026, 10, 24, 23, 30),
        epoch(2026, 10, 25, 2, 30),
    ]


def test_v003_utc_setting_ignores_the_zone_name():
    _, rows = read(
        v003(
            [M] * 2,
            ["Ph 1 V"],
            [row("02/07/26 10:00:00", 1)],
            header={"DataTimeSettings": "UTC", "TimeZoneName": "Europe/Paris"},
        )
    )
    assert rows[0][0] == epoch(2026, 7, 2, 10)


@pytest.mark.parametrize(
    "bad",
    [
        "2026-03-02 10:00:00",
        "02/03/2026 10:00",
        "32/03/26 10:00:00",
        "02/13/26 10:00:00",
        "02/03/26 24:00:00",
        "02/03/26 10:60:00",
        "02/03/26 10:00:61",
        "xx/03/26 10:00:00",
        "",
        "02/03/26T10:00:00",
        "29/02/25 10:00:00",
        "٠٢/03/26 10:00:00",
    ],
)
def test_unparsable_timestamps_skip_the_row(bad):
    table, rows = read(v002([M] * 2, ["Ph 1 V"], [row(bad, 1), row("02/03/26 10:00:00", 2)]))
    assert table.counters.nb_invalid_timestamps == 1
    assert values(rows, 0) == [2.0]
    assert any("line 3" in s and "invalid timestamp" in s for s in table.samples)


def test_clock_not_set_and_future_rows_are_out_of_range():
    text = v002(
        [M] * 2,
        ["Ph 1 V"],
        [
            row("01/01/20 01:00:02", 1),
            row("02/03/26 10:00:00", 2),
            row("31/12/20 23:59:59", 3),
            row("02/01/27 01:00:00", 4),
            row("01/01/27 23:00:00", 5),
        ],
    )
    table, rows = read(text)
    # NOW is 01/01/27 00:00 UTC: up to one day ahead is accepted
    assert values(rows, 0) == [2.0, 5.0]
    assert table.counters.nb_out_of_range_timestamps == 3


# --- values ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad", ["", "abc", "NaN", "nan", "inf", "-Infinity", "1,5", "1_000", " 12", "1e999", "0x10", "--1", "1.2.3"]
)
def test_invalid_values_are_skipped_alone(bad):
    table, rows = read(v002([M] * 3, ["Ph 1 V", "Voie1 W"], [row("02/03/26 10:00:00", bad, 5)]))
    assert table.counters.nb_invalid_values == 1
    assert values(rows, 0) == [None]
    assert values(rows, 1) == [5.0]


@pytest.mark.parametrize(
    "text,number,written",
    [
        ("0", 0.0, "0"),
        ("-0.0", -0.0, "-0.0"),
        ("232.09", 232.09, "232.09"),
        ("238.80", 238.8, "238.80"),
        ("007", 7.0, "007"),  # plain decimals: the cell itself
        ("1e3", 1000.0, "1000.0"),
        ("+4.5", 4.5, "4.5"),
        (".5", 0.5, "0.5"),
        ("5.", 5.0, "5.0"),
        ("-.5", -0.5, "-0.5"),
        ("2E-3", 0.002, "0.002"),  # other forms: the float's shortest repr
    ],
)
def test_valid_values_become_floats(text, number, written):
    for rows_ in ([row("02/03/26 10:00:00", text)], [row("02/03/26 10:00:00", 1), row("02/03/26 10:10:00", text)]):
        _, rows = read(v002([M] * 2, ["Ph 1 V"], rows_))
        assert rows[-1][1][0] == written and float(written) == number
        assert str(float(written)) == repr(number)  # the same double either way


def test_missing_trailing_cells_count_as_invalid_values():
    table, rows = read(v002([M] * 4, ["Ph 1 V", "Voie1 W", "Voie2 W"], ["02/03/26 10:00:00\t230.1"]))
    assert table.counters.nb_invalid_values == 2
    assert rows[0][1] == ["230.1", None, None] and table.counters.nb_rows == 1


def test_rows_with_more_cells_than_labels_are_skipped():
    table, rows = read(v002([M] * 2, ["Ph 1 V"], [row("02/03/26 10:00:00", 1, 2), row("02/03/26 10:10:00", 3)]))
    assert table.counters.nb_malformed_rows == 1
    assert values(rows, 0) == [3.0]


# --- cut-off writes, duplicates, encodings --------------------------------------------------


def test_a_last_line_without_newline_is_never_written():
    text = v002(
        [M] * 3,
        ["Ph 1 V", "Voie1 W"],
        [row("02/03/26 10:00:00", 230.1, 5), "02/03/26 10:10:00\t24"],
        final_newline=False,
    )
    table, rows = read(text)
    assert table.counters.nb_truncated_rows == 1
    assert [r[0] for r in rows] == [epoch(2026, 3, 2, 10)]


def test_v003_is_complete_up_to_end_data_even_without_final_newline():
    text = v003([M] * 2, ["Ph 1 V"], [row("02/03/26 10:00:00", 1)], final_newline=False)
    table, rows = read(text)
    assert table.counters.nb_truncated_rows == 0
    assert len(rows) == 1 and table.warnings == []


def test_v003_without_end_data_drops_the_cut_line_and_warns():
    text = v003(
        [M] * 2, ["Ph 1 V"], [row("02/03/26 10:00:00", 1), "02/03/26 10:1"], end_data=False, final_newline=False
    )
    table, rows = read(text)
    assert table.counters.nb_truncated_rows == 1
    assert len(rows) == 1
    assert any("END_DATA" in w for w in table.warnings)


def test_duplicate_timestamps_are_counted_and_all_kept_in_order():
    rows_ = [
        row("02/03/26 10:00:00", 1),
        row("02/03/26 10:10:00", 2),
        row("02/03/26 10:00:00", 3),
        row("02/03/26 10:10:00", 4),
        row("02/03/26 10:10:00", 5),
        row("02/03/26 09:00:00", 6),
    ]
    table, rows = read(v002([M] * 2, ["Ph 1 V"], rows_))
    assert table.counters.nb_duplicate_timestamps == 3
    assert values(rows, 0) == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]  # later rows come later: InfluxDB keeps them
    assert table.summary.time_min == epoch(2026, 3, 2, 9)
    assert table.summary.time_max == epoch(2026, 3, 2, 10, 10)


def test_crlf_and_bom_are_accepted(tmp_path):
    text = v002([M] * 2, ["Ph 1 V"], [row("02/03/26 10:00:00", 1)], newline="\r\n")
    path = tmp_path / "f.tsv"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    with open(path, encoding="utf-8-sig", newline="\n") as fh:
        table = Read(open_device_file(fh, RULES))
        rows = table.rows
    assert table.master_sn == M and table.channels[0].unit == "V"
    assert values(rows, 0) == [1.0]
    assert table.counters.nb_truncated_rows == 0


def test_channel_statistics():
    table, _ = read(
        v002(
            [M] * 2,
            ["Ph 1 V"],
            [row("02/03/26 10:00:00", 1), row("02/03/26 10:10:00", 3), row("02/03/26 10:20:00", "x")],
        )
    )
    assert table.summary.stats[0].as_dict() == {"nb_points": 2, "min": 1.0, "max": 3.0, "mean": 2.0}


# --- file faults ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text,expected",
    [
        ("", "empty"),
        (v002([M] * 2, ["Ph 1 V"], [], fmt="MV_T202_V002"), "MV_T202_V002"),
        (v002([M] * 3, ["Ph 1 V"], []), "SN line has 3 columns but the label line has 2"),
        (v002([M] * 3, ["Ph 1 V", ""], []), "the label is empty"),
        (v002([M] * 2, ["Ph 1\\x V"], []), "backslash"),
        (v002([M, "02 01"], ["Ph 1 V"], []), "serial number"),
        (v002([M], [], []), "no measurement column"),
        (v003([M] * 2, ["Ph 1 V"], [], header="{not json"), "not valid JSON"),
        (v003([M] * 2, ["Ph 1 V"], [], header="[1, 2]"), "not a JSON object"),
        (
            v003([M] * 2, ["Ph 1 V"], [], header={"DataTimeSettings": "Local", "TimeZoneName": "Mars/Base"}),
            "unusable time zone",
        ),
        ("START_HEADER\n{}\n", "END_HEADER"),
        (f"{M}\t{M}\n", "unknown file format (line 1 starts with '02001283')"),
        (f"{M}\t{M}\nMV_T302_V002\tPh 1 V", "the file ends inside its header"),
    ],
)
def test_file_faults_name_the_rule(text, expected):
    with pytest.raises(FileFault) as excinfo:
        read(text)
    assert expected in str(excinfo.value)
    assert "rule:" in str(excinfo.value)


def test_unknown_format_names_what_was_found_and_what_is_supported():
    with pytest.raises(FileFault) as excinfo:
        read(v002([M] * 2, ["Ph 1 V"], [], fmt="MV_T202_V002"))
    message = str(excinfo.value)
    assert "line 2 starts with 'MV_T202_V002'" in message
    assert "MV_T302_V002" in message and "MV_T302_V003" in message
    assert excinfo.value.line == 2


# --- hardening: header faults are file faults, never a traceback ----------------------------

LOCAL = {"DataTimeSettings": "Local", "MasterType": "Mono"}


@pytest.mark.parametrize(
    "zone,expected",
    [
        ("Europe", "unknown time zone 'Europe'"),  # a folder of the zone database
        ("x" * 300, "a time zone name of 300 characters"),  # too long for the file system
        ("Europe/", "unknown time zone"),
        ("../../etc/passwd", "unknown time zone"),
        ("localtime", "unknown time zone 'localtime'"),  # the server's own zone: not a name
        ("a\x00b", "unknown time zone"),
        (42, "no time zone name"),
        (None, "no time zone name"),
    ],
)
def test_unusable_time_zones_are_file_faults(zone, expected):
    header = json.dumps({**LOCAL, "TimeZoneName": zone})
    with pytest.raises(FileFault) as excinfo:
        read(v003([M] * 2, ["Ph 1 V"], [row("02/03/26 10:00:00", 1)], header=header))
    assert expected in str(excinfo.value)
    assert excinfo.value.line == 2 and "IANA TimeZoneName" in excinfo.value.rule


@pytest.mark.parametrize(
    "header,expected",
    [
        ("[" * 60_000, "nested too deeply"),  # RecursionError inside json
        ("[" * 200_000, "within 50 lines or 65536 characters"),  # bounded before parsing
        ('{"a": NaN}', "NaN is not a number JSON allows"),
        ('{"a": -Infinity}', "-Infinity is not a number JSON allows"),
        ('{"a": 1e999}', "out of the range of a double"),
        ('{"a": "\\ud800"}', "not valid Unicode"),
        (json.dumps({"a": [[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]}), "nested deeper than 16 levels"),
        ("\n".join(["{"] + ['"k": 1,'] * 60 + ['"z": 2}']), "within 50 lines"),
    ],
)
def test_hostile_headers_are_file_faults(header, expected):
    with pytest.raises(FileFault) as excinfo:
        read(v003([M] * 2, ["Ph 1 V"], [row("02/03/26 10:00:00", 1)], header=header))
    assert expected in str(excinfo.value)


def test_an_accepted_header_always_fits_the_report():
    header = {"DataTimeSettings": "UTC", "MasterType": "Mono", "Big": 1e308, "Text": "é\u2028"}
    table, _ = read(v003([M] * 2, ["Ph 1 V"], [row("02/03/26 10:00:00", 1)], header=header))
    json.dumps(table.header.meta, ensure_ascii=False, allow_nan=False).encode("utf-8")


def test_markers_tolerate_surrounding_spaces_and_carriage_returns():
    text = v003([M] * 2, ["Ph 1 V"], [row("02/03/26 10:00:00", 1)])
    for marker in ("START_HEADER", "END_HEADER", "START_DATA", "END_DATA"):
        text = text.replace(f"{marker}\n", f"  {marker} \r\n")
    table, rows = read(text)
    assert values(rows, 0) == [1.0]
    assert table.warnings == [] and table.counters.nb_rows_after_end == 0


def test_rows_after_end_data_are_counted_and_warned_about():
    text = (
        v003([M] * 2, ["Ph 1 V"], [row("02/03/26 10:00:00", 1)])
        + row("02/03/26 10:10:00", 2)
        + "\n\n"
        + row("02/03/26 10:20:00", 3)
        + "\nEND_DATA\n"
        + "cut"
    )
    table, rows = read(text)
    assert values(rows, 0) == [1.0]
    assert table.counters.nb_rows_after_end == 4  # two rows, a second END_DATA, the cut piece
    assert table.counters.nb_rows == 1 and table.counters.nb_truncated_rows == 0
    assert "4 line(s) after END_DATA were not written" in table.warnings
    assert table.samples[0] == "line 9: data after END_DATA, not written (rule: END_DATA ends the data)"


# --- hardening: values ----------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["٣", "１２", "1٣", "²", "1e-400", "-1e-400", "0.1e-330", "1e309", "-1e309"])
def test_non_ascii_digits_and_out_of_range_decimals_are_invalid(bad):
    table, rows = read(v002([M] * 3, ["Ph 1 V", "Voie1 W"], [row("02/03/26 10:00:00", bad, 5)]))
    assert table.counters.nb_invalid_values == 1
    assert rows[0][1] == [None, "5.0"]  # the per-cell path writes the canonical form
    assert "column 2: invalid value" in table.samples[0]


@pytest.mark.parametrize(
    "text,canonical",
    [
        ("0e-400", "0.0"),
        ("0.000e5", "0.0"),
        ("5e-324", "5e-324"),
        ("1.7976931348623157e308", "1.7976931348623157e+308"),
    ],
)
def test_zero_written_as_zero_and_the_extreme_doubles_are_valid(text, canonical):
    table, rows = read(v002([M] * 2, ["Ph 1 V"], [row("02/03/26 10:00:00", text)]))
    assert rows[0][1] == [canonical] and table.counters.nb_invalid_values == 0


def test_statistics_stay_finite_when_the_sum_overflows():
    table, _ = read(v002([M] * 2, ["Ph 1 V"], [row("02/03/26 10:00:00", "1e308"), row("02/03/26 10:10:00", "1e308")]))
    stats = table.summary.stats[0].as_dict()
    assert stats == {"nb_points": 2, "min": 1e308, "max": 1e308, "mean": None}
    json.dumps(stats, allow_nan=False)


@pytest.mark.parametrize("block", [100, 1 << 18])
def test_statistics_span_blocks_and_skip_invalid_values(monkeypatch, block):
    monkeypatch.setattr("powerview.ingestion.formats.lines.BLOCK_CHARS", block)
    rows_ = [
        row(f"02/03/26 {h:02d}:{m:02d}:00", "x" if (h, m) == (5, 7) else h * 60 + m)
        for h in range(24)
        for m in range(60)
    ]
    text = v002([M] * 2, ["Ph 1 V"], rows_)
    table = Read(open_device_file(io.StringIO(text, newline="\n"), RULES))
    assert table.summary.stats[0].as_dict() == {
        "nb_points": 1439,
        "min": 0.0,
        "max": 1439.0,
        "mean": round((sum(range(1440)) - 307) / 1439, 6),
    }


# --- hardening: line length, memory ---------------------------------------------------------


class Endless(io.TextIOBase):
    """A stream of `head` then one line that never ends: reading it whole would never return."""

    def __init__(self, head: str):
        self.head = head

    def readable(self):
        return True

    def read(self, size=-1):
        assert 0 < size <= 1 << 21, "the reader must read with a bound"
        if self.head:
            out, self.head = self.head[:size], self.head[size:]
            return out
        return "9" * size

    def readline(self, size=-1):
        assert 0 < size <= (1 << 20) + 1, "the reader must read lines with a bound"
        if self.head:
            line, sep, rest = self.head.partition("\n")
            if sep and len(line) < size:
                self.head = rest
                return line + sep
            out, self.head = self.head[:size], self.head[size:]
            return out + "9" * (size - len(out))
        return "9" * size


def test_an_endless_data_line_is_a_file_fault_with_its_line_number():
    head = v002([M] * 2, ["Ph 1 V"], [row("02/03/26 10:00:00", 1)]) + "02/03/26 10:10:00\t"
    with pytest.raises(FileFault) as excinfo:
        read_all(open_device_file(Endless(head), RULES))
    assert excinfo.value.line == 4
    assert "1 MiB" in excinfo.value.rule


def test_an_endless_header_line_is_a_file_fault():
    with pytest.raises(FileFault) as excinfo:
        open_device_file(Endless("START_HEADER\n{"), RULES)
    assert excinfo.value.line == 2 and "longer than 1048576 characters" in str(excinfo.value)


def test_a_line_of_exactly_the_limit_is_read():
    from powerview.ingestion.formats import MAX_LINE_CHARS

    cell = "1" + "0" * (MAX_LINE_CHARS - len("02/03/26 10:00:00\t") - 1)
    table, rows = read(v002([M] * 2, ["Ph 1 V"], ["02/03/26 10:00:00\t" + cell, row("02/03/26 10:10:00", 2)]))
    assert values(rows, 0) == [None, 2.0]  # 1e1048558 overflows: invalid value, but read
    with pytest.raises(FileFault) as excinfo:
        read(v002([M] * 2, ["Ph 1 V"], ["02/03/26 10:00:00\t" + cell + "0"]))
    assert excinfo.value.line == 3


def read_all(device):
    return list(device.rows)


# --- the row pass: a separate summary, available once, at the end ---------------------------


def test_the_summary_is_refused_before_the_last_row_and_the_rows_are_read_once():
    device = open_device_file(
        io.StringIO(v002([M] * 2, ["Ph 1 V"], [row("02/03/26 10:00:00", 1), row("02/03/26 10:10:00", 2)])), RULES
    )
    with pytest.raises(RuntimeError, match="not finished"):
        device.rows.summary()
    rows = iter(device.rows)
    next(rows)
    with pytest.raises(RuntimeError, match="not finished"):
        device.rows.summary()
    with pytest.raises(RuntimeError, match="only once"):
        iter(device.rows)
    list(rows)
    assert device.rows.summary().counters.nb_rows == 2


def test_the_registry_is_a_list_of_readers_tried_in_order():
    from powerview.ingestion.formats import READERS, Reader
    from powerview.ingestion.formats.t302 import read_v002

    seen = []

    def detect(first_lines):
        seen.append(list(first_lines))
        return first_lines[0].startswith("#custom")

    def read_custom(source, rules):
        source.readline()  # the custom line, then an MV_T302_V002 body
        device = read_v002(source, rules)
        return device

    custom = Reader("CUSTOM", detect, read_custom)
    text = "#custom\n" + v002([M] * 2, ["Ph 1 V"], [row("02/03/26 10:00:00", 7)])
    device = open_device_file(io.StringIO(text), RULES, readers=[custom, *READERS])
    assert seen == [["#custom\n", f"{M}\t{M}\n"]]
    assert [float(t[0]) for _, t in device.rows] == [7.0]
    with pytest.raises(FileFault, match="supported formats: MV_T302_V003, MV_T302_V002"):
        open_device_file(io.StringIO(text), RULES)


@pytest.mark.parametrize("block", [7, 40, 1 << 18])
def test_rows_time_range_and_duplicates_do_not_depend_on_blocks(monkeypatch, block):
    monkeypatch.setattr("powerview.ingestion.formats.lines.BLOCK_CHARS", block)
    stamps = ["10:00:00", "10:10:00", "09:00:00", "10:10:00", "11:00:00", "10:00:00", "12:00:00", "12:00:00"]
    text = v002([M] * 2, ["Ph 1 V"], [row(f"02/03/26 {s}", i) for i, s in enumerate(stamps)], newline="\r\n")
    table, rows = read(text)
    assert values(rows, 0) == [float(i) for i in range(8)]
    assert table.counters.nb_duplicate_timestamps == 3
    assert (table.summary.time_min, table.summary.time_max) == (epoch(2026, 3, 2, 9), epoch(2026, 3, 2, 12))
    assert table.counters.nb_rows == 8 and table.counters.nb_truncated_rows == 0


# --- local time: the repeated hour in autumn, the skipped hour in spring --------------------

PARIS = {"DataTimeSettings": "Local", "TimeZoneName": "Europe/Paris", "MasterType": "Mono"}


def minutes(day: str, hour: int, step: int = 1) -> list[str]:
    return [f"{day} {hour:02d}:{m:02d}:00" for m in range(0, 60, step)]


@pytest.mark.parametrize("step", [1, 10])
def test_the_repeated_autumn_hour_gives_one_distinct_instant_per_row_in_file_order(step):
    day = "25/10/26"  # last Sunday of October 2026: 03:00 CEST -> 02:00 CET
    stamps = [f"{day} 01:59:00", *minutes(day, 2, step), *minutes(day, 2, step), f"{day} 03:00:00"]
    table, rows = read(v003([M] * 2, ["Ph 1 V"], [row(s, i) for i, s in enumerate(stamps)], header=PARIS))
    instants = [ts for ts, _ in rows]
    assert len(instants) == len(stamps)
    assert all(a < b for a, b in zip(instants, instants[1:]))
    first_pass = len(minutes(day, 2, step))
    assert instants[1] == epoch(2026, 10, 25, 0, 0)  # 02:00 CEST
    assert instants[1 + first_pass] == epoch(2026, 10, 25, 1, 0)  # 02:00 CET
    assert instants[-1] == epoch(2026, 10, 25, 2, 0)  # 03:00 CET
    assert table.counters.nb_duplicate_timestamps == 0 and table.counters.nb_invalid_timestamps == 0


def test_a_repeated_row_inside_the_first_pass_is_a_duplicate_not_the_second_pass():
    day = "25/10/26"
    stamps = [f"{day} 02:00:00", f"{day} 02:30:00", f"{day} 02:30:00", f"{day} 02:50:00", f"{day} 02:10:00"]
    table, rows = read(v003([M] * 2, ["Ph 1 V"], [row(s, i) for i, s in enumerate(stamps)], header=PARIS))
    assert [ts for ts, _ in rows] == [
        epoch(2026, 10, 25, 0, 0),
        epoch(2026, 10, 25, 0, 30),
        epoch(2026, 10, 25, 0, 30),
        epoch(2026, 10, 25, 0, 50),
        epoch(2026, 10, 25, 1, 10),
    ]
    assert table.counters.nb_duplicate_timestamps == 1


def test_a_file_starting_after_the_change_keeps_the_first_occurrence():
    # nothing in the file says the clock went back: the first occurrence is the only reading
    _, rows = read(v003([M] * 2, ["Ph 1 V"], [row("25/10/26 02:30:00", 1)], header=PARIS))
    assert rows[0][0] == epoch(2026, 10, 25, 0, 30)


def test_v002_files_follow_the_configured_zone_through_the_autumn_change():
    day = "25/10/26"
    stamps = [*minutes(day, 2, 20), *minutes(day, 2, 20)]
    paris = RowRules(RULES.min_epoch, RULES.max_epoch, "Europe/Paris")
    _, rows = read(v002([M] * 2, ["Ph 1 V"], [row(s, i) for i, s in enumerate(stamps)]), paris)
    assert [ts for ts, _ in rows] == [epoch(2026, 10, 25, 0, m) for m in (0, 20, 40)] + [
        epoch(2026, 10, 25, 1, m) for m in (0, 20, 40)
    ]


def test_a_time_in_the_skipped_spring_hour_is_an_invalid_timestamp():
    day = "29/03/26"  # 02:00 CET -> 03:00 CEST: 02:00-02:59 does not exist
    stamps = [f"{day} 01:59:00", f"{day} 02:00:00", f"{day} 02:30:00", f"{day} 03:00:00"]
    table, rows = read(v003([M] * 2, ["Ph 1 V"], [row(s, i) for i, s in enumerate(stamps)], header=PARIS))
    assert [ts for ts, _ in rows] == [epoch(2026, 3, 29, 0, 59), epoch(2026, 3, 29, 1, 0)]
    assert table.counters.nb_invalid_timestamps == 2
    assert table.samples[0] == (
        "line 8: local time 29/03/26 02:00:00 does not exist in Europe/Paris (skipped when "
        "the clocks went forward), row skipped (rule: a local time exists on the device's "
        "clock (none in the hour skipped in spring))"
    )


def test_half_hour_changes_are_handled_minute_by_minute():
    # Australia/Lord_Howe moves by 30 minutes at 02:00: only 02:00-02:29 is skipped in spring
    header = {**PARIS, "TimeZoneName": "Australia/Lord_Howe"}
    stamps = ["04/10/26 01:59:00", "04/10/26 02:15:00", "04/10/26 02:30:00", "04/10/26 02:45:00"]
    table, rows = read(v003([M] * 2, ["Ph 1 V"], [row(s, i) for i, s in enumerate(stamps)], header=header))
    assert values(rows, 0) == [0.0, 2.0, 3.0]
    assert rows[1][0] - rows[0][0] == 60  # 01:59 +10:30 then 02:30 +11:00
    assert table.counters.nb_invalid_timestamps == 1


# --- the seam with ingest: what InfluxDB would refuse is a fault of the file ----------------


def test_a_label_over_influxdbs_key_limit_is_a_file_fault_naming_the_column(tmp_path):
    from powerview.delivery.influx import DiscardWriter
    from powerview.ingestion import ingest, layout

    from samples import place

    labels = ["Ph 1 V", "x" * 70_000 + " W"]
    path = place(tmp_path, "acme", "camp", M, "long.tsv", v002([M] * 3, labels, [row("02/03/26 10:00:00", 1, 2)]))
    writer = DiscardWriter()
    [outcome], _ = ingest.run([layout.locate(tmp_path, path)], ingest.RunOptions(tmp_path, RULES, 5000, True), writer)
    entry = outcome.to_json()
    assert entry["status"] == "error" and entry["fault"] == "file" and writer.nb_lines == 0
    assert entry["error"].endswith(
        f"line 2: column 3 (M{M}_Ch1): InfluxDB would refuse its points: its series key "
        "and field key take 70210 bytes as line protocol, over InfluxDB's limit of 65535 "
        "(rule: names and labels fit in InfluxDB's key limits)"
    )


def test_the_report_entry_carries_rows_after_end_and_the_header_warnings(tmp_path):
    from powerview.delivery.influx import DiscardWriter
    from powerview.ingestion import ingest, layout

    from samples import place

    header = {"DataTimeSettings": "UTC", "MasterType": "Duo"}
    text = v003([M] * 2, ["Ph 1 V"], [row("02/03/26 10:00:00", 1)], header=header) + "02/03/26 10:10:00\t2\n"
    path = place(tmp_path, "acme", "camp", "0201", "f.tsv", text)
    [outcome], _ = ingest.run(
        [layout.locate(tmp_path, path)], ingest.RunOptions(tmp_path, RULES, 5000, True), DiscardWriter()
    )
    entry = outcome.to_json()
    assert entry["status"] == "success" and entry["nb_points"] == 1
    assert entry["nb_rows_after_end"] == 1
    assert entry["warnings"][:3] == [
        "unknown MasterType 'Duo': mono/tri taken from the labels",
        f"the folder is named 0201 but the file's master is {M}: tags use {M}",
        "1 line(s) after END_DATA were not written",
    ]
    json.dumps(entry, allow_nan=False)


@pytest.mark.parametrize(
    "cell,written",
    [
        ("0." + "0" * 330 + "1", None),
        ("9" * 320, None),
        ("1" + "0" * 299, "1" + "0" * 299),
        ("0." + "0" * 290 + "1", "0." + "0" * 290 + "1"),
    ],
)
def test_long_plain_cells_are_checked_for_range(cell, written):
    wide = [str(i) for i in range(60)]  # a wide row: over 300 characters of values
    table, rows = read(
        v002([M] * 62, ["Ph 1 V"] + [f"Voie{i} W" for i in range(60)], [row("02/03/26 10:00:00", cell, *wide)])
    )
    assert rows[0][1][0] == written
    assert [float(t) for t in rows[0][1][1:]] == [float(w) for w in wide]
    assert table.counters.nb_invalid_values == (written is None)


def test_the_meta_point_of_a_file_carries_every_counter():
    from powerview.ingestion import ingest

    entry = {
        "status": "success",
        "bucket": "acme",
        "campaign": "c",
        "device_master_sn": M,
        "file": "/d/f.tsv",
        "nb_rows": 3,
        "nb_channels": 1,
        "nb_points": 2,
        "duration_s": 0.5,
        **{name: 0 for name in ingest.Counters.COUNTER_NAMES},
        "nb_rows_after_end": 4,
    }
    report = {
        "status": "success",
        "base_folder": "/d",
        "files": [entry],
        "nb_files_total": 1,
        "nb_files_success": 1,
        "nb_files_failed": 0,
        "nb_files_retry": 0,
        "nb_points_total": 2,
        "duration_s": 1.0,
    }
    line = ingest.meta_lines(report, 1700000000).decode().splitlines()[0]
    assert "nb_rows_after_end=4i" in line and "nb_malformed_rows=0i" in line
