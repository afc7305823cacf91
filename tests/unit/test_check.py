"""Settling on a scripted sequence of readings with a fake clock, and the evidence of a failure.

The steps are those of ``check_one_test`` between its readings: the before-reading (``Reader.before``),
``settle``, and for a failure ``gather_evidence`` then ``rejudged``.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from corefakes import (
    IDLE,
    MAIN,
    PPROF_HANDLER,
    FakePprof,
    FakeSnapshotter,
    FakeTime,
    Site,
    goroutine,
    heap,
    process,
    profile,
    snapshot,
)
from hypothesis import given
from hypothesis import strategies as st

from pytest_goleak.errors import ServiceUnresponsive
from pytest_goleak.judge.budget import Budget
from pytest_goleak.judge.diff import diff
from pytest_goleak.judge.evidence import gather_evidence
from pytest_goleak.judge.measures import FDS, GOROUTINES, HEAP
from pytest_goleak.judge.settle import _BACKOFF, OnReading, Reader, settle
from pytest_goleak.judge.verdict import LeakedGroup, Phase, Verdict, judged, rejudged
from pytest_goleak.read.pprof import Frame, GoroutineProfile, Stack
from pytest_goleak.read.snapshot import ALL_PARTS, CHEAP_PARTS, Part, Snapshot, Snapshotter
from pytest_goleak.units import MiB

WORKER = goroutine("runtime.gopark", "runtime.chansend", "main.worker")
WORKER_SELECTING = goroutine("runtime.gopark", "runtime.selectgo", "main.worker")
FLUSHER = goroutine("time.Sleep", "main.backgroundFlush")

CLEAN = snapshot(IDLE, process=process())


def _with(*groups: tuple[int, Stack]) -> GoroutineProfile:
    """The idle service's goroutines plus ``groups`` of (count, stack)."""
    return profile((1, MAIN), (1, PPROF_HANDLER), *groups)


LEAKY = snapshot(_with((1, WORKER)), process=process())


class LeakCheck:
    """The reading steps of ``check_one_test`` for one service, on fakes: before, settle, a failure's evidence."""

    def __init__(self, snapshotter: Snapshotter, budget: Budget, time: FakeTime, on_reading: OnReading | None = None):
        self.reader = Reader(snapshotter, budget, on_reading)
        self.time = time
        self.before: Snapshot | None = None

    def begin(self, kept: Snapshot | None = None) -> Snapshot:
        self.before = self.reader.before(kept)
        return self.before

    def finish(self, exact: bool = True) -> Verdict:
        assert self.before is not None
        verdict = settle(self.reader, self.before, exact, sleep=self.time.sleep, clock=self.time.clock)
        return rejudged(gather_evidence(self.reader.snapshotter, verdict)) if verdict.failed else verdict


def _check(
    readings: list[Snapshot],
    budget: Budget | None = None,
    pprof: FakePprof | None = None,
    reading_takes: float = 0.0,
) -> tuple[LeakCheck, FakeSnapshotter, FakeTime]:
    time = FakeTime()
    snapshotter = FakeSnapshotter(readings, pprof or FakePprof(), time=time, reading_takes=reading_takes)
    check = LeakCheck(snapshotter.as_snapshotter(), budget or Budget(), time)
    return check, snapshotter, time


# Settling


def test_a_clean_test_is_judged_on_one_reading_and_never_sleeps() -> None:
    check, snapshotter, time = _check([CLEAN, CLEAN])
    check.begin()
    verdict = check.finish()
    assert not verdict.failed
    assert verdict.violations == ()
    assert verdict.over == ()
    assert len(snapshotter.asked) == 2  # before and one after
    assert time.slept == []
    assert verdict.waited == 0.0
    assert snapshotter.pprof.dumps_read == 0  # no evidence for a pass


def test_growth_that_winds_down_is_retaken_with_backoff_and_passes() -> None:
    check, snapshotter, time = _check([CLEAN, LEAKY, LEAKY, LEAKY, CLEAN])
    check.begin()
    verdict = check.finish()
    assert not verdict.failed
    assert time.slept == [0.0, 0.005, 0.01]
    assert time.slept == list(_BACKOFF[:3])
    assert len(snapshotter.asked) == 5
    assert verdict.after.goroutines is CLEAN.goroutines
    assert verdict.waited == pytest.approx(0.015)


def test_growth_that_persists_fails_once_settle_runs_out() -> None:
    check, snapshotter, time = _check([CLEAN] + [LEAKY] * 20, Budget(settle=0.5))
    check.begin()
    verdict = check.finish()
    assert verdict.failed
    assert verdict.violations == ("1 goroutine leaked (budget 0)",)
    assert verdict.over == (GOROUTINES,)
    # 0 + 0.005 + 0.01 + 0.02 + 0.05 + 0.1 + 0.2 = 0.385; the next 0.3 would pass 0.5.
    assert time.slept == [0.0, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2]
    assert len(snapshotter.asked) == 1 + 1 + 7  # before, after, seven retakes
    assert verdict.waited == pytest.approx(0.385)
    assert sum(time.slept) <= 0.5
    assert snapshotter.pprof.dumps_read == 1  # the evidence is read once, after the verdict


def test_the_backoff_repeats_its_last_pause_until_settle_runs_out() -> None:
    check, snapshotter, time = _check([CLEAN] + [LEAKY] * 30, Budget(settle=2.0))
    check.begin()
    verdict = check.finish()
    assert _BACKOFF == (0.0, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3)
    # 0.685 s through the backoff, then 0.3 s pauses: four more fit in 2 s (1.885 s), a fifth would not.
    assert time.slept == [*_BACKOFF, 0.3, 0.3, 0.3, 0.3]
    assert sum(time.slept) == pytest.approx(1.885)
    assert sum(time.slept) <= 2.0
    assert len(snapshotter.asked) == 2 + len(time.slept)
    assert verdict.waited == pytest.approx(1.885)
    assert verdict.failed


def test_the_time_readings_take_counts_against_settle() -> None:
    check, snapshotter, time = _check([CLEAN] + [LEAKY] * 10, Budget(settle=0.3), reading_takes=0.1)
    check.begin()
    verdict = check.finish()
    # After: 0.1 s in. Retake at once (0.2 s in), after 0.005 (0.305 s in); 0.01 more would pass 0.3.
    assert time.slept == [0.0, 0.005]
    assert len(snapshotter.asked) == 4
    assert verdict.waited == pytest.approx(0.305)
    assert verdict.failed


def test_settle_zero_takes_one_after_reading() -> None:
    check, snapshotter, time = _check([CLEAN, LEAKY, CLEAN], Budget(settle=0))
    check.begin()
    verdict = check.finish()
    assert verdict.failed
    assert len(snapshotter.asked) == 2
    assert time.slept == []
    assert verdict.waited == 0.0
    assert verdict.after.goroutines is LEAKY.goroutines


def test_on_reading_hears_each_phase_in_order() -> None:
    heard: list[tuple[Phase, Snapshot]] = []
    readings = [CLEAN, LEAKY, LEAKY, CLEAN]
    time = FakeTime()
    snapshotter = FakeSnapshotter(readings, time=time)
    check = LeakCheck(
        snapshotter.as_snapshotter(),
        Budget(),
        time,
        on_reading=lambda reading, phase: heard.append((phase, reading)),
    )
    check.begin()
    check.finish()
    assert [phase for phase, _ in heard] == ["before", "after", "settle", "settle"]
    # Settle readings keep the after-reading's heap (it was within budget) and read the rest again.
    assert all(
        reading.goroutines is expected.goroutines for (_, reading), expected in zip(heard, readings, strict=True)
    )


def test_an_adopted_before_reading_is_not_taken_again() -> None:
    heard: list[Phase] = []
    time = FakeTime()
    snapshotter = FakeSnapshotter([CLEAN], time=time)
    check = LeakCheck(
        snapshotter.as_snapshotter(),
        Budget(),
        time,
        on_reading=lambda reading, phase: heard.append(phase),
    )
    previous = snapshot(IDLE, heap(1000), process=process())
    assert check.begin(previous) is previous
    verdict = check.finish()
    assert verdict.before is previous
    assert heard == ["after"]
    assert len(snapshotter.asked) == 1


def test_an_adopted_reading_without_the_heap_has_only_the_missing_parts_read() -> None:
    # The previous test did not check the heap, this one does: its goroutines stand, the rest is read now.
    check, snapshotter, _ = _check([snapshot(IDLE, heap(1000), process=process()), CLEAN])
    previous = snapshot(IDLE, process=process())
    before = check.begin(previous)
    assert before is not previous and before.heap is not None
    assert snapshotter.kept_goroutines == [previous.goroutines]


# The heap's bound: HeapAlloc read without a forced GC


def _uncollected(live: int) -> Snapshot:
    return snapshot(IDLE, replace(heap(live), collected=False), process=process())


def _exact(live: int) -> Snapshot:
    return snapshot(IDLE, heap(live), process=process())


def test_a_heap_bound_within_budget_passes_on_one_reading_without_a_gc() -> None:
    check, snapshotter, _ = _check([_exact(10 * MiB), _uncollected(10 * MiB + (600 << 10))])
    check.begin()
    verdict = check.finish(exact=False)
    assert not verdict.failed
    after_parts = snapshotter.asked[1][0]
    assert Part.MEMSTATS in after_parts and Part.HEAP not in after_parts
    assert verdict.delta.of(HEAP) is None  # a bound, not a growth: no figure is reported for it


def test_a_heap_bound_over_budget_is_read_again_after_a_gc_and_judged_on_that() -> None:
    # Garbage makes the bound read +3 MiB; after a GC the heap grew 100 KiB: the test passes.
    check, snapshotter, _ = _check([_exact(10 * MiB), _uncollected(13 * MiB), _exact(10 * MiB + (100 << 10))])
    check.begin()
    verdict = check.finish(exact=False)
    assert not verdict.failed
    assert Part.HEAP in snapshotter.asked[2][0]
    assert verdict.delta.of(HEAP) == 100 << 10


@pytest.mark.parametrize("live_after", [10 * MiB + 2 * MiB, 10 * MiB + MiB + 1])
def test_a_heap_leak_under_its_bound_fails_as_it_did_with_a_gc(live_after: int) -> None:
    readings = [_exact(10 * MiB), _uncollected(live_after + 5 * MiB), *[_exact(live_after)] * 20]
    check, _, _ = _check(readings)
    check.begin()
    verdict = check.finish(exact=False)
    assert verdict.failed and verdict.over == (HEAP,)
    assert verdict.delta.of(HEAP) == live_after - 10 * MiB


@given(
    live_before=st.integers(0, 1 << 34),
    growth=st.integers(-(1 << 30), 1 << 30),
    garbage=st.integers(0, 1 << 30),
    budget=st.integers(0, 1 << 30),
)
def test_the_heap_bound_never_passes_a_test_the_exact_reading_fails(
    live_before: int, growth: int, garbage: int, budget: int
) -> None:
    live_after = max(0, live_before + growth)

    def verdict(exact_after: bool) -> Verdict:
        readings = [_exact(live_before), _uncollected(live_after + garbage), *[_exact(live_after)] * 20]
        if exact_after:
            readings.pop(1)
        check, _, _ = _check(readings, Budget(limits={"heap": budget}, settle=0.0))
        check.begin()
        return check.finish(exact=exact_after)

    exact, bounded = verdict(True), verdict(False)
    assert bounded.failed == exact.failed
    assert bounded.violations == exact.violations


@pytest.mark.parametrize(
    ("values", "parts", "sockets"),
    [
        pytest.param({}, ALL_PARTS, False, id="defaults"),
        # Off-heap memory needs the runtime's MemStats (no GC) and the maps, even with the heap unchecked.
        pytest.param({"heap": None}, ALL_PARTS - {Part.HEAP}, False, id="heap-unchecked"),
        pytest.param(
            {"heap": None, "offheap": None}, CHEAP_PARTS | {Part.TMPDIR}, False, id="heap-and-offheap-unchecked"
        ),
        pytest.param({"tmpfiles": None}, ALL_PARTS - {Part.TMPDIR}, False, id="tmpfiles-unchecked"),
        pytest.param({"heap": None, "tmpfiles": None, "offheap": None}, CHEAP_PARTS, False, id="cheap-only"),
        pytest.param(
            {"heap": None, "tmpfiles": None, "fds": None, "children": None, "offheap": None},
            CHEAP_PARTS,
            False,
            id="process-is-cheap",
        ),
        pytest.param({"ignore_fds": "*.log"}, ALL_PARTS, True, id="fd-patterns-describe-sockets"),
    ],
)
def test_the_budget_decides_what_each_reading_holds(
    values: dict[str, object], parts: frozenset[Part], sockets: bool
) -> None:
    budget = Budget().updated(values, lambda name: name)
    check, snapshotter, _ = _check([CLEAN, LEAKY, CLEAN], budget)
    check.begin()
    check.finish()
    assert len(snapshotter.asked) == 3
    # The settle reading (the growth is goroutines) leaves out the heap: its reading stands, the GC is not paid.
    assert snapshotter.asked == [(parts, sockets)] * 2 + [(parts - {Part.HEAP, Part.MEMSTATS}, sockets)]
    assert (Part.HEAP in parts) == (HEAP in budget.checked)


# judged and rejudged


def _leaked_verdict(budget: Budget) -> Verdict:
    before = snapshot(IDLE, process=process())
    after = snapshot(_with((1, FLUSHER)), process=process({**process().fds, 7: "/data/orders.db"}))
    return judged(before, after, diff(before, after, budget), budget, waited=0.25)


def test_judged_names_the_violations_and_the_measures_over_budget_together() -> None:
    verdict = _leaked_verdict(Budget())
    assert verdict.violations == ("1 goroutine leaked (budget 0)", "fds +1 (budget 0)")
    assert verdict.over == (GOROUTINES, FDS)
    assert verdict.waited == 0.25
    assert verdict.failed


FLUSHER_DUMP = """\
goroutine 1 [IO wait]:
internal/poll.runtime_pollWait(0x7f3a2c1e8f28, 0x72)
\t/usr/local/go/src/runtime/netpoll.go:351 +0x85
net/http.(*Server).Serve(0xc0001a2000, {0x8a5e40, 0xc000012345})
\t/usr/local/go/src/net/http/server.go:3330 +0x30c
main.main()
\t/src/main.go:40 +0x1d

goroutine 30 [sleep]:
time.Sleep(0x3b9aca00)
\t/usr/local/go/src/runtime/time.go:338 +0x165
main.backgroundFlush()
\t/src/flush.go:12 +0x25
created by main.startFlusher in goroutine 1
\t/src/flush.go:30 +0x45
"""


def test_rejudged_drops_goroutines_ignored_by_their_creator_from_violations_and_over() -> None:
    budget = Budget(ignore=("main.startFlusher",))
    verdict = _leaked_verdict(budget)
    assert verdict.over == (GOROUTINES, FDS)  # the profile has no creator frames: the pattern cannot match yet
    snapshotter = FakeSnapshotter([], pprof=FakePprof(FLUSHER_DUMP))
    gathered = gather_evidence(snapshotter.as_snapshotter(), verdict)
    assert gathered.delta.grew["goroutines"] == 0
    assert gathered.delta.goroutines == ()
    assert gathered.leaked_groups == ()
    final = rejudged(gathered)
    assert final.violations == ("fds +1 (budget 0)",)
    assert final.over == (FDS,)
    assert GOROUTINES not in final.over
    # The evidence is kept.
    assert final.dump_text == FLUSHER_DUMP
    assert final.delta is gathered.delta
    assert final.waited == 0.25


def test_a_test_whose_only_growth_is_ignored_by_creator_passes() -> None:
    budget = Budget(ignore=("main.startFlusher",), settle=0)
    leaky = snapshot(_with((1, FLUSHER)), process=process())
    check, snapshotter, _ = _check([CLEAN, leaky], budget, pprof=FakePprof(FLUSHER_DUMP))
    check.begin()
    verdict = check.finish()
    assert not verdict.failed
    assert verdict.violations == ()
    assert verdict.over == ()
    assert verdict.delta.grew["goroutines"] == 0
    assert snapshotter.pprof.dumps_read == 1


def test_a_verdict_never_lists_goroutines_over_budget_when_its_violations_passed_them() -> None:
    budget = Budget(ignore=("main.startFlusher",), settle=0)
    leaky = snapshot(_with((1, FLUSHER)), process=process({**process().fds, 7: "/data/orders.db"}))
    check, _, _ = _check([CLEAN, leaky], budget, pprof=FakePprof(FLUSHER_DUMP))
    check.begin()
    verdict = check.finish()
    assert verdict.violations == tuple(verdict.delta.over(budget))
    assert verdict.over == tuple(verdict.delta.exceeded(budget))
    assert verdict.over == (FDS,)


# gather_evidence


WORKERS_DUMP = """\
goroutine 1 [IO wait, 5 minutes]:
internal/poll.runtime_pollWait(0x7f3a2c1e8f28, 0x72)
\t/usr/local/go/src/runtime/netpoll.go:351 +0x85
main.main()
\t/src/main.go:40 +0x1d

goroutine 21 [chan send, 3 minutes]:
main.worker(0xc000010000)
\t/src/worker.go:12 +0x3c
created by main.startWorkers in goroutine 1
\t/src/worker.go:30 +0x45

goroutine 22 [chan send]:
main.worker(...)
\t/src/worker.go:12 +0x3c
created by main.startWorkers in goroutine 1
\t/src/worker.go:30 +0x45

goroutine 23 [select]:
main.worker(0xc000010100)
\t/src/worker.go:15 +0x50
created by main.startWorkers in goroutine 1
\t/src/worker.go:30 +0x45
"""

WORKER_STACK_12 = (Frame("main.worker", "/src/worker.go", 12),)
WORKER_STACK_15 = (Frame("main.worker", "/src/worker.go", 15),)
START_WORKERS = Frame("main.startWorkers", "/src/worker.go", 30)


def _failed(before_workers: int, after: GoroutineProfile, budget: Budget | None = None) -> Verdict:
    budget = budget or Budget()
    before = snapshot(_with((before_workers, WORKER)) if before_workers else IDLE)
    later = snapshot(after)
    verdict = judged(before, later, diff(before, later, budget), budget)
    assert verdict.over == (GOROUTINES,)
    return verdict


THREE_WORKERS = _with((2, WORKER), (1, WORKER_SELECTING))


def test_evidence_groups_leaked_goroutines_by_state_stack_and_creator() -> None:
    snapshotter = FakeSnapshotter([], pprof=FakePprof(WORKERS_DUMP))
    verdict = gather_evidence(snapshotter.as_snapshotter(), _failed(0, THREE_WORKERS))
    assert verdict.leaked_groups == (
        # The wait's duration ("3 minutes") is left out, so 21 and 22 share a group.
        LeakedGroup(2, "main.worker", "chan send", WORKER_STACK_12, START_WORKERS),
        LeakedGroup(1, "main.worker", "select", WORKER_STACK_15, START_WORKERS),
    )
    assert verdict.dump_text == WORKERS_DUMP
    assert verdict.delta.grew["goroutines"] == 3


def test_evidence_shows_the_newest_goroutines_of_an_identity() -> None:
    snapshotter = FakeSnapshotter([], pprof=FakePprof(WORKERS_DUMP))
    verdict = gather_evidence(snapshotter.as_snapshotter(), _failed(1, THREE_WORKERS))
    # Two leaked of three: goroutines 22 and 23, not 21, which was there before.
    assert verdict.leaked_groups == (
        LeakedGroup(1, "main.worker", "chan send", WORKER_STACK_12, START_WORKERS),
        LeakedGroup(1, "main.worker", "select", WORKER_STACK_15, START_WORKERS),
    )
    assert sum(group.count for group in verdict.leaked_groups) == 2


# The goroutineleak profile's dump: 21 and 23 proven, 22 (same stack as 21) not yet.
PROVEN_DUMP = WORKERS_DUMP.replace("goroutine 21 [chan send, 3 minutes]", "goroutine 21 [chan send (leaked)]").replace(
    "goroutine 23 [select]", "goroutine 23 [select (leaked)]"
)


def test_evidence_counts_how_many_of_a_group_the_runtime_proved_leaked() -> None:
    snapshotter = FakeSnapshotter([], pprof=FakePprof(PROVEN_DUMP, proving=True))
    verdict = gather_evidence(snapshotter.as_snapshotter(), _failed(0, THREE_WORKERS))
    # The mark is not part of the wait state: 21 and 22 stay one group, one of its two proven.
    assert verdict.leaked_groups == (
        LeakedGroup(2, "main.worker", "chan send", WORKER_STACK_12, START_WORKERS, proven=1),
        LeakedGroup(1, "main.worker", "select", WORKER_STACK_15, START_WORKERS, proven=1),
    )
    unproven = gather_evidence(FakeSnapshotter([], pprof=FakePprof(WORKERS_DUMP)).as_snapshotter(), verdict)
    assert [group.proven for group in unproven.leaked_groups] == [0, 0]


def test_an_ignore_pattern_matching_the_creator_drops_the_growth() -> None:
    budget = Budget(ignore=("main.start*",))
    snapshotter = FakeSnapshotter([], pprof=FakePprof(WORKERS_DUMP))
    verdict = gather_evidence(snapshotter.as_snapshotter(), _failed(0, THREE_WORKERS, budget))
    assert verdict.delta.goroutines == ()
    assert verdict.delta.grew["goroutines"] == 0
    assert verdict.leaked_groups == ()
    assert rejudged(verdict).violations == ()


def test_an_ignore_pattern_matching_another_creator_keeps_the_growth() -> None:
    budget = Budget(ignore=("main.startFlusher",))
    snapshotter = FakeSnapshotter([], pprof=FakePprof(WORKERS_DUMP))
    verdict = gather_evidence(snapshotter.as_snapshotter(), _failed(0, THREE_WORKERS, budget))
    assert verdict.delta.grew["goroutines"] == 3
    assert sum(group.count for group in verdict.leaked_groups) == 3
    assert rejudged(verdict).over == (GOROUTINES,)


MIXED_DUMP = (
    WORKERS_DUMP
    + """
goroutine 40 [chan send]:
main.worker(...)
\t/src/worker.go:12 +0x3c
created by main.handleUpload in goroutine 35
\t/src/upload.go:77 +0x91
"""
)


def test_an_ignored_creator_does_not_hide_a_leak_of_the_same_function_from_elsewhere() -> None:
    # Three workers of the ignored pool were there before; the test leaked a fourth, started by an upload handler.
    budget = Budget(ignore=("main.startWorkers",))
    verdict = _failed(3, _with((4, WORKER)), budget)
    snapshotter = FakeSnapshotter([], pprof=FakePprof(MIXED_DUMP))
    final = rejudged(gather_evidence(snapshotter.as_snapshotter(), verdict))
    assert final.delta.grew["goroutines"] == 1
    assert final.over == (GOROUTINES,)
    assert [(g.count, g.created_by) for g in final.leaked_groups] == [
        (1, Frame("main.handleUpload", "/src/upload.go", 77))
    ]


@pytest.mark.parametrize(
    "pprof",
    [
        pytest.param(FakePprof(""), id="empty-dump"),
        pytest.param(FakePprof(error=ServiceUnresponsive("service did not answer")), id="dump-failed"),
    ],
)
@pytest.mark.parametrize(
    ("before_workers", "groups"),
    [
        # Three leaked: each current stack of the later reading, most populous first.
        pytest.param(
            0,
            [
                LeakedGroup(2, "main.worker", "", WORKER, None),
                LeakedGroup(1, "main.worker", "", WORKER_SELECTING, None),
            ],
            id="all",
        ),
        # One leaked: the most populous stack, cut to the count that leaked.
        pytest.param(2, [LeakedGroup(1, "main.worker", "", WORKER, None)], id="one"),
    ],
)
def test_without_a_dump_the_profiles_stacks_are_the_evidence(
    pprof: FakePprof, before_workers: int, groups: list[LeakedGroup]
) -> None:
    snapshotter = FakeSnapshotter([], pprof=pprof)
    verdict = gather_evidence(snapshotter.as_snapshotter(), _failed(before_workers, THREE_WORKERS))
    assert verdict.leaked_groups == tuple(groups)
    assert verdict.dump_text == ""


def test_no_dump_is_read_when_goroutines_are_within_budget() -> None:
    before = snapshot(IDLE, process=process())
    after = snapshot(IDLE, process=process({**process().fds, 7: "/data/orders.db"}))
    verdict = judged(before, after, diff(before, after), Budget())
    assert verdict.over == (FDS,)
    snapshotter = FakeSnapshotter([], pprof=FakePprof(WORKERS_DUMP))
    gathered = gather_evidence(snapshotter.as_snapshotter(), verdict)
    assert snapshotter.pprof.dumps_read == 0
    assert gathered.leaked_groups == ()
    assert gathered.delta.new_fds == ((7, "/data/orders.db"),)  # no pid: kept as read


def test_evidence_adds_the_heap_sites_that_grew() -> None:
    cache = ("main.(*Cache).Put", "main.handle")
    before = snapshot(IDLE, heap(10 * MiB, Site(1, MiB, cache)))
    after = snapshot(IDLE, heap(14 * MiB, Site(4, 4 * MiB, cache), Site(1, MiB, ("main.loadConfig", "main.main"))))
    budget = Budget()
    verdict = judged(before, after, diff(before, after, budget), budget)
    assert verdict.violations == ("heap +4.0 MiB (budget 1.0 MiB)",)
    gathered = gather_evidence(FakeSnapshotter([]).as_snapshotter(), verdict)
    assert [(site.stack[0].function, site.bytes, site.objects) for site in gathered.heap_sites] == [
        ("main.(*Cache).Put", 3 * MiB, 4),
        ("main.loadConfig", MiB, 1),
    ]
    assert rejudged(gathered).violations == verdict.violations


def test_rejudged_keeps_a_verdict_that_still_fails() -> None:
    verdict = _failed(0, THREE_WORKERS)
    gathered = gather_evidence(FakeSnapshotter([], pprof=FakePprof(WORKERS_DUMP)).as_snapshotter(), verdict)
    final = rejudged(gathered)
    assert final == replace(gathered, violations=verdict.violations, over=verdict.over)
    assert final.violations == ("3 goroutines leaked (budget 0)",)
