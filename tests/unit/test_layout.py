"""The data folder: locating, discovery, claims, moves (the name rules: test_names.py)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from powerview.core import names
from powerview.ingestion import layout

from samples import place


def test_locate_reads_company_campaign_device(data_root):
    path = place(data_root, "acme", "camp", "0201", "f.tsv", "x")
    loc = layout.locate(data_root, path)
    assert (loc.company, loc.campaign, loc.device, loc.path) == ("acme", "camp", "0201", path.resolve())


@pytest.mark.parametrize("relative", ["acme/f.tsv", "acme/camp/f.tsv", "acme/camp/dev/parsed/f.tsv"])
def test_locate_refuses_the_wrong_depth(data_root, relative):
    (data_root / relative).parent.mkdir(parents=True, exist_ok=True)
    (data_root / relative).write_text("x")
    with pytest.raises(layout.LayoutError, match="depth"):
        layout.locate(data_root, data_root / relative)


def test_locate_refuses_outside_paths_dotdot_and_symlinks_out(data_root, tmp_path):
    outside = tmp_path / "outside.tsv"
    outside.write_text("x")
    with pytest.raises(layout.LayoutError, match="outside"):
        layout.locate(data_root, outside)
    place(data_root, "acme", "camp", "dev", "ok.tsv", "x")
    with pytest.raises(layout.LayoutError, match=r"'\.\.'"):
        layout.locate(data_root, data_root / "acme/camp/dev/../dev/ok.tsv")
    link = data_root / "acme/camp/dev/link.tsv"
    link.symlink_to(outside)
    with pytest.raises(layout.LayoutError, match="outside"):
        layout.locate(data_root, link)


def test_discover_skips_processed_hidden_and_wrong_depth(data_root, tmp_path):
    keep = place(data_root, "acme", "camp", "dev", "a.tsv", "x")
    place(data_root, "acme", "camp", "dev", "b.txt", "x")
    place(data_root, "acme", "camp", "dev", ".c.tsv", "x")
    place(data_root, "acme", "camp", "dev/parsed", "d.tsv", "x")
    place(data_root, "acme", "camp", "dev/error", "e.tsv", "x")
    place(data_root, "acme", ".camp", "dev", "f.tsv", "x")
    place(data_root, "acme", "camp", "dev2/deeper", "g.tsv", "x")
    (data_root / "acme/top.tsv").write_text("x")
    (tmp_path / "elsewhere").mkdir()
    place(tmp_path, "elsewhere", "c", "d", "h.tsv", "x")
    (data_root / "acme" / "linked").symlink_to(tmp_path / "elsewhere" / "c")
    assert list(layout.discover(data_root)) == [keep]


def test_a_claimed_file_cannot_be_claimed_by_another_process(data_root):
    path = place(data_root, "acme", "camp", "dev", "a.tsv", "x")
    with layout.Claim(path) as claim:
        assert claim.acquire()
        other = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from powerview.ingestion.layout import Claim; sys.exit(0 if Claim(sys.argv[1]).acquire() else 3)",
                str(path),
            ],
            env={**os.environ, "PYTHONPATH": os.getcwd()},
        )
        assert other.returncode == 3
    assert layout.Claim(path).acquire()


def test_a_claim_fails_once_the_file_was_moved_away(data_root):
    path = place(data_root, "acme", "camp", "dev", "a.tsv", "x")
    layout.move_to(path, names.PARSED_DIR)
    assert not layout.Claim(path).acquire()


def test_move_never_overwrites(data_root):
    first = place(data_root, "acme", "camp", "dev", "a.tsv", "one")
    assert layout.move_to(first, "parsed") == data_root / "acme/camp/dev/parsed/a.tsv"
    second = place(data_root, "acme", "camp", "dev", "a.tsv", "two")
    moved = layout.move_to(second, "parsed")
    assert moved == data_root / "acme/camp/dev/parsed/a.1.tsv"
    assert (data_root / "acme/camp/dev/parsed/a.tsv").read_text() == "one"
    assert moved.read_text() == "two"
    assert not second.exists()
