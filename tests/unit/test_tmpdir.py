"""Reading the service's private TMPDIR: what a test left there."""

from __future__ import annotations

from pathlib import Path

from pytest_goleak.read.tmpdir import DIRECTORY, describe_entry, new_entries, read_tmpdir


def test_reads_files_and_directories_by_relative_path(tmp_path: Path) -> None:
    (tmp_path / "export-1.csv").write_bytes(b"x" * 4096)
    (tmp_path / "upload-7").mkdir()
    (tmp_path / "upload-7" / "part-0").write_bytes(b"abc")
    assert dict(read_tmpdir(tmp_path)) == {"export-1.csv": 4096, "upload-7": DIRECTORY, "upload-7/part-0": 3}


def test_a_vanished_tmpdir_reads_empty(tmp_path: Path) -> None:
    assert dict(read_tmpdir(tmp_path / "gone")) == {}


def test_new_entries_and_their_report_lines(tmp_path: Path) -> None:
    (tmp_path / "kept.db").write_bytes(b"1")
    before = read_tmpdir(tmp_path)
    (tmp_path / "kept.db").write_bytes(b"12")  # grew, but is not new
    (tmp_path / "spool-3.json").write_bytes(b"y" * 2048)
    (tmp_path / "work-9").mkdir()
    added = new_entries(before, read_tmpdir(tmp_path))
    assert added == (("spool-3.json", 2048), ("work-9", DIRECTORY))
    assert [describe_entry(*entry) for entry in added] == ["spool-3.json (2.0 KiB)", "work-9/"]
