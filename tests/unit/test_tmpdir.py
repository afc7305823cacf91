"""Reading the service's private TMPDIR: what a test left there."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pytest_goleak.read import tmpdir
from pytest_goleak.read.tmpdir import (
    DIRECTORY,
    MAX_DEPTH,
    SYMLINK_ROOT,
    describe_entry,
    new_entries,
    read_tmpdir,
    remove_tmpdir,
)


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


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_the_walk_never_follows_a_symlink_out_of_the_tmpdir(tmp_path: Path) -> None:
    root = tmp_path / "tmp"
    root.mkdir()
    (root / "to-root").symlink_to("/")
    (root / "sub").mkdir()
    (root / "sub" / "up").symlink_to("..")
    found = read_tmpdir(root)
    assert set(found) == {"to-root", "sub", "sub/up"}
    assert found["sub"] == DIRECTORY and found["to-root"] != DIRECTORY


def test_a_tmpdir_swapped_for_a_symlink_is_one_entry_and_is_removed_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_text("keep me")
    root = tmp_path / "tmp"
    root.symlink_to(outside)
    assert dict(read_tmpdir(root)) == {".": SYMLINK_ROOT}
    assert describe_entry(".", SYMLINK_ROOT).startswith("the TMPDIR itself, replaced by a symlink")
    remove_tmpdir(root)
    assert not root.is_symlink() and (outside / "precious").read_text() == "keep me"


def test_a_deep_tree_is_read_to_a_bound_and_removed_whole(tmp_path: Path) -> None:
    root = tmp_path / "tmp"
    root.mkdir()
    fd = os.open(root, os.O_RDONLY)
    for _ in range(1500):  # deeper than Python's recursion limit: shutil.rmtree and os.walk of 3.11 fail here
        os.mkdir("d", dir_fd=fd)
        deeper = os.open("d", os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = deeper
    os.close(fd)
    fds = _open_fds()
    found = read_tmpdir(root)
    assert len(found) == MAX_DEPTH + 1  # directories down to the bound, each counted
    assert _open_fds() == fds
    remove_tmpdir(root)
    assert not root.exists() and _open_fds() == fds


def test_the_entry_bound_closes_every_directory_it_opened(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tmpdir, "MAX_ENTRIES", 10)
    for n in range(5):
        (tmp_path / f"dir-{n}").mkdir()
        for m in range(5):
            (tmp_path / f"dir-{n}" / f"file-{m}").write_bytes(b"")
    fds = _open_fds()
    assert len(read_tmpdir(tmp_path)) == 10
    assert _open_fds() == fds


def test_removal_takes_files_directories_and_dangling_links(tmp_path: Path) -> None:
    root = tmp_path / "tmp"
    (root / "a" / "b" / "c").mkdir(parents=True)
    (root / "a" / "b" / "c" / "f").write_bytes(b"x")
    (root / "a" / "link").symlink_to(tmp_path / "missing")
    (root / "g").write_bytes(b"y")
    remove_tmpdir(root)
    assert not root.exists()
    remove_tmpdir(root)  # already gone: nothing to do, no error
