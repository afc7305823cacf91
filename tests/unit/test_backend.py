"""Choosing how a process is read, and what a backend that cannot read something does with each measure."""

from __future__ import annotations

from dataclasses import replace

import pytest
from corefakes import IDLE, FakeSnapshotter, heap, process, snapshot

from pytest_goleak.errors import ConfigError
from pytest_goleak.judge.budget import Budget
from pytest_goleak.judge.diff import diff, growth
from pytest_goleak.judge.measures import (
    CHILDREN,
    FDS,
    HEAP,
    MEASURES,
    NOTHING_IGNORED,
    OFFHEAP,
    THREADS,
    not_measured,
    values,
)
from pytest_goleak.judge.reuse import KeptReadings
from pytest_goleak.judge.verdict import judged
from pytest_goleak.read.backend import PORTABLE, PROC, Lack, choose
from pytest_goleak.read.snapshot import Snapshot
from pytest_goleak.report.failure import junit_properties, render
from pytest_goleak.report.json_report import backend_block


@pytest.mark.parametrize(
    ("said", "has_proc", "chosen"),
    [("auto", True, PROC), ("auto", False, PORTABLE), ("portable", True, PORTABLE), (" Proc ", True, PROC)],
)
def test_auto_is_proc_where_it_exists_and_either_can_be_forced(said: str, has_proc: bool, chosen: object) -> None:
    assert choose(said, platform="linux", has_proc=lambda: has_proc) is chosen


@pytest.mark.parametrize(
    ("said", "platform", "message"),
    [
        ("psutil", "linux", "GOLEAK_BACKEND: 'psutil' is not auto, proc or portable; e.g. GOLEAK_BACKEND=portable"),
        ("proc", "darwin", "GOLEAK_BACKEND: proc needs /proc, which this system (darwin) has not; use auto"),
        ("auto", "win32", "pytest-goleak runs on Linux and macOS, not on this platform (win32)"),
        ("portable", "cygwin", "turn the plugin off with -p no:goleak"),
    ],
)
def test_a_backend_that_cannot_be_is_one_line_naming_the_fix(said: str, platform: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        choose(said, platform=platform, has_proc=lambda: platform == "linux")
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_the_portable_backend_says_what_each_measure_can_do_there() -> None:
    assert [m.availability(PROC.lacks) for m in MEASURES] == [""] * len(MEASURES)
    assert FDS.availability(PORTABLE.lacks) == Lack.FD_NAMES.value
    assert CHILDREN.availability(PORTABLE.lacks) == Lack.SUBREAPER.value
    assert OFFHEAP.availability(PORTABLE.lacks) == f"{Lack.MAPPINGS.value}; {Lack.RESIDENT_SPLIT.value}"
    assert HEAP.availability(PORTABLE.lacks) == THREADS.availability(PORTABLE.lacks) == ""
    # Everything is measured on both: the portable backend counts what it cannot name.
    assert not_measured(PORTABLE.lacks) == ()
    block = backend_block(PORTABLE)
    assert (block["name"], block["not_measured"]) == ("portable", [])
    assert set(block["limits"]) == {"fds", "children", "offheap"}


def test_a_measure_a_backend_cannot_read_is_null_never_zero_and_never_judged() -> None:
    # No real row needs what the portable backend lacks; a row that did would go this way.
    needy = replace(THREADS, needs=frozenset({Lack.RESIDENT_SPLIT}))
    before = replace(snapshot(process=process(threads=6)), lacks=PORTABLE.lacks)
    after = replace(snapshot(process=process(threads=9)), lacks=PORTABLE.lacks)
    assert growth(needy, before, after, NOTHING_IGNORED) is None
    assert growth(THREADS, before, after, NOTHING_IGNORED) == 3
    assert needy.availability(PORTABLE.lacks) == f"not measured on this platform ({Lack.RESIDENT_SPLIT.value})"
    assert not_measured(PORTABLE.lacks, (needy, THREADS)) == (needy,)


def _portable(fds: dict[int, str], unnamed: int) -> Snapshot:
    reading = replace(process(fds=fds), unnamed_fds=unnamed)
    return replace(snapshot(IDLE, heap=heap(1000), process=reading), lacks=PORTABLE.lacks)


def test_an_fd_the_backend_cannot_name_is_counted_judged_and_said_to_be_unnamed() -> None:
    before = _portable({3: "socket:tcp 127.0.0.1:8080"}, unnamed=4)
    after = _portable({3: "socket:tcp 127.0.0.1:8080", 9: "/srv/data.csv"}, unnamed=5)
    assert values(after)["fds"] == 7
    verdict = judged(before, after, diff(before, after, Budget()), Budget())
    assert verdict.violations == ("fds +2 (budget 0)",)
    text = render(verdict)
    assert "fd 9: /srv/data.csv" in text
    assert "1 more fd without a name (the portable backend names only files and sockets" in text
    # Ignore patterns match names: an unnamed fd is never ignored, so a leak of one still fails.
    assert values(after, replace(Budget(), ignore_fds=("*",)))["fds"] == 5
    assert ("fds_delta", 2) in junit_properties(verdict)


def test_without_bytes_read_every_test_reads_afresh() -> None:
    kept = KeptReadings()
    reading = replace(_portable({}, 0), read_bytes=None)
    verdict = judged(reading, reading, diff(reading, reading), Budget())
    kept.remember("svc", verdict)
    # The rule never asks the service: a pprof request from the fake would fail the test.
    fake = FakeSnapshotter([], pid=4242, backend=PORTABLE)
    assert kept.recall("svc", Budget(), fake.as_snapshotter()) is None
    assert fake.asked == []
