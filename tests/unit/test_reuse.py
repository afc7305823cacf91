"""When a kept after-reading still describes the service: the rule of reuse.py on hand-built readings."""

from __future__ import annotations

from dataclasses import replace

import pytest
from corefakes import IDLE, PID, FakePprof, FakeSnapshotter, FakeTime, child, goroutine, process, profile, snapshot

from pytest_goleak.judge.budget import Budget
from pytest_goleak.judge.diff import diff
from pytest_goleak.judge.reuse import UNCOUNTED, KeptReadings, Now, changed
from pytest_goleak.judge.verdict import judged
from pytest_goleak.read.backend import PROC
from pytest_goleak.read.pprof import Stack
from pytest_goleak.read.procfs import ProcessState
from pytest_goleak.read.snapshot import Snapshot

KEPT = replace(snapshot(IDLE, process=process(children=[child(301)]), tmpfiles={"a.tmp": 4}), read_bytes=5000)
# The index counts net/http's background reader beside its own request; IDLE was read without one.
QUIET = Now(5000, process(children=[child(301)]), {"a.tmp": 4}, IDLE.total + 1)


def test_a_quiet_gap_keeps_the_reading() -> None:
    assert changed(KEPT, QUIET) is None


@pytest.mark.parametrize(
    ("now", "why"),
    [
        (replace(QUIET, read_bytes=5120), "the service read 120 bytes since"),
        (
            replace(QUIET, goroutines=IDLE.total + 2),
            f"its goroutines went from {IDLE.total + 1} to {IDLE.total + 2} (the index's count)",
        ),
        (
            replace(QUIET, goroutines=IDLE.total),
            f"its goroutines went from {IDLE.total + 1} to {IDLE.total} (the index's count)",
        ),
        (replace(QUIET, goroutines=None), "the pprof index gives no goroutine count"),
        (replace(QUIET, read_bytes=None), "what the service has read is not readable (/proc/PID/io)"),
        # One fd closed and another opened under the same number: the count alone would not show it.
        (
            replace(
                QUIET,
                process=process({0: "/dev/null", 1: "pipe:[11]", 2: "pipe:[12]", 3: "socket:[101]"}, [child(301)]),
            ),
            "its fds changed",
        ),
        (replace(QUIET, process=process(children=[child(302)])), "its child processes changed"),
        (replace(QUIET, tmpfiles={"a.tmp": 4, "b.tmp": 0}), "its TMPDIR changed"),
    ],
)
def test_any_change_in_the_gap_takes_a_fresh_reading(now: Now, why: str) -> None:
    assert changed(KEPT, now) == why


@pytest.mark.parametrize("read", [8, 16])
def test_the_runtime_waking_its_poller_is_not_a_request(read: int) -> None:
    assert changed(KEPT, replace(QUIET, read_bytes=5000 + read)) is None


@pytest.mark.parametrize("read", [18, 24, 7])
def test_any_other_read_is(read: int) -> None:
    assert changed(KEPT, replace(QUIET, read_bytes=5000 + read)) == f"the service read {read} bytes since"


def test_threads_count_only_where_they_are_checked() -> None:
    # The Go runtime starts threads of its own; a user who checks threads wants them compared.
    more = replace(QUIET, process=process(children=[child(301)], threads=7))
    assert changed(KEPT, more) is None
    assert changed(KEPT, more, threads=True) == "its threads went from 6 to 7"


def test_a_child_that_only_changed_state_is_the_same_child() -> None:
    assert changed(KEPT, replace(QUIET, process=process(children=[child(301, status="running")]))) is None


def test_a_reading_without_what_was_read_is_never_kept() -> None:
    unread: Snapshot = replace(KEPT, read_bytes=None)
    assert changed(unread, QUIET) == "what the service has read is not readable (/proc/PID/io)"


@pytest.mark.parametrize(
    "reader",
    [
        goroutine("net/http.(*connReader).backgroundRead"),
        goroutine("net/http.(*connReader).startBackgroundRead.func2"),  # before Go 1.22
        (),  # not running yet: a profile shows no frames
    ],
)
def test_a_kept_reading_that_caught_the_background_reader_expects_the_index_to_count_it_once(reader: Stack) -> None:
    # Its heap request had not reached the service when the goroutines were read: the reader was still there.
    kept = replace(KEPT, goroutines=profile(*((g.count, g.stack) for g in IDLE.groups), (1, reader)))
    assert changed(kept, QUIET) is None


class _Gap:
    """A kept reading and the service after a gap: a fake clock, a scripted index and /proc, what was asked."""

    def __init__(self, read_bytes: int = 5000, index: int | None = IDLE.total + 1) -> None:
        self.time = FakeTime()
        self.kept = KeptReadings(clock=self.time.clock)
        self.processes_read = 0

        def read_process(pid: int, **_: object) -> ProcessState:
            self.processes_read += 1
            return process(children=[child(301)])

        backend = replace(PROC, bytes_read=lambda pid: read_bytes, read_process=read_process)
        self.fake = FakeSnapshotter([], FakePprof(index_count=index), pid=PID, backend=backend)
        reading = replace(KEPT, tmpfiles=None)
        self.kept.remember("svc", judged(reading, reading, diff(reading, reading), Budget()))

    def recall_after(self, seconds: float) -> Snapshot | None:
        self.time.now += seconds
        return self.kept.recall("svc", Budget(), self.fake.as_snapshotter())


def test_a_short_gap_is_checked_without_asking_the_service() -> None:
    gap = _Gap(index=None)  # an index would say "no count": it must not be asked
    assert gap.recall_after(0.001) is not None
    assert (gap.fake.pprof.indexes_asked, gap.processes_read) == (0, 1)


@pytest.mark.parametrize(("index", "kept"), [(IDLE.total + 1, True), (IDLE.total + 2, False), (None, False)])
def test_a_long_gap_asks_the_index_for_the_goroutine_count(index: int | None, kept: bool) -> None:
    # The service's own clock had time to start or end a goroutine: only the count can tell.
    gap = _Gap(index=index)
    assert (gap.recall_after(0.05) is not None) is kept
    assert gap.fake.pprof.indexes_asked == 1


@pytest.mark.parametrize("seconds", [0.001, 0.05])
def test_a_gap_whose_bytes_read_moved_is_read_no_further(seconds: float) -> None:
    gap = _Gap(read_bytes=5120)
    assert gap.recall_after(seconds) is None
    assert (gap.fake.pprof.indexes_asked, gap.processes_read) == (0, 0)


def test_an_uncounted_gap_is_judged_on_the_rest() -> None:
    assert changed(KEPT, replace(QUIET, goroutines=UNCOUNTED)) is None
    assert changed(KEPT, replace(QUIET, goroutines=UNCOUNTED, process=process())) == "its child processes changed"
