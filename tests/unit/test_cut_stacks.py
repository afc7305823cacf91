"""Identity of goroutines whose profile stack was cut at the runtime's depth limit, on hand-built readings.

The goroutine profile keeps 32 frames of a stack before Go 1.23 and 128
since, innermost first: a deeper goroutine's start function is cut off. A
profile holding such a stack comes with the dump read right after it, and that
reading is counted from the dump. ``tests/judge/test_deep_stacks.py`` runs the same
against real Go builds.
"""

from __future__ import annotations

from dataclasses import replace

from corefakes import IDLE, MAIN, PPROF_HANDLER, profile, snapshot, stack

from pytest_goleak.judge.budget import Budget
from pytest_goleak.judge.diff import diff
from pytest_goleak.judge.identity import count_by_identity, dumped_identity, is_own
from pytest_goleak.read.pprof import PROFILE_DEPTH, DumpedGoroutine, Frame, GoroutineProfile, parse_goroutine_dump

WAIT = ("runtime.gopark", "runtime.chanrecv", "runtime.chanrecv1")
SERVE_LEAK = Frame("main.serveLeak", "/src/main.go", 59)
MAIN_MAIN = Frame("main.main", "/src/main.go", 67)


def _recursing(depth: int, start: str) -> tuple[Frame, ...]:
    """A goroutine parked ``depth`` frames deep in main.descend, started by ``start``, as a dump shows it."""
    return stack(*(["main.descend"] * depth), start)


def _cut(depth: int = 40) -> tuple[Frame, ...]:
    """The profile's view of a goroutine deeper than its limit: the innermost frames only."""
    return stack(*WAIT, *(["main.descend"] * depth))[:PROFILE_DEPTH]


def _dumped(goid: int, frames: tuple[Frame, ...], created_by: Frame) -> DumpedGoroutine:
    return DumpedGoroutine(goid, "chan receive", frames, created_by, 1)


MAIN_DUMPED = DumpedGoroutine(1, "IO wait", MAIN[:-2])  # a dump hides runtime.main and runtime.goexit
HANDLER_DUMPED = DumpedGoroutine(9, "running", PPROF_HANDLER[:-1], Frame("net/http.(*Server).Serve"), 7)
WORKER_SHALLOW = stack(*WAIT, "main.descend", "main.descend", "main.descend", "main.worker", "runtime.goexit")


def _reading(groups: tuple[tuple[int, tuple[Frame, ...]], ...], *dumped: DumpedGoroutine) -> GoroutineProfile:
    """A profile with a cut stack, and the dump read with it (the service's own goroutines in both)."""
    cut = profile((1, MAIN), (1, PPROF_HANDLER), *groups)
    return replace(cut, dumped=(MAIN_DUMPED, HANDLER_DUMPED, *dumped))


def test_a_stack_of_the_limit_or_more_may_be_cut_and_a_shorter_one_is_whole() -> None:
    assert not profile((1, _cut()[: PROFILE_DEPTH - 1])).cut
    assert profile((1, _cut())).cut
    assert not IDLE.cut


def test_a_worker_going_deeper_than_the_limit_keeps_its_identity() -> None:
    before = snapshot(profile((1, MAIN), (1, PPROF_HANDLER), (1, WORKER_SHALLOW)))
    after = snapshot(_reading(((1, _cut()),), _dumped(6, _recursing(40, "main.worker"), MAIN_MAIN)))
    assert count_by_identity(after.goroutines) == {"main.main": 1, "main.worker": 1}
    assert diff(before, after).goroutines == ()
    # And back: deep before, shallow after.
    assert diff(after, before).goroutines == ()


def test_a_deep_leak_beside_a_deep_worker_is_one_leak_of_its_own_kind() -> None:
    """Both cut stacks look the same in the profile; only the dump tells the worker from the leak."""
    before = snapshot(_reading(((1, _cut()),), _dumped(6, _recursing(40, "main.worker"), MAIN_MAIN)))
    leak = _dumped(21, _recursing(60, "main.leakDeep"), SERVE_LEAK)
    after = snapshot(_reading(((2, _cut()),), _dumped(6, _recursing(45, "main.worker"), MAIN_MAIN), leak))
    (growth,) = diff(before, after).goroutines
    assert (growth.identity, growth.leaked) == ("main.leakDeep", 1)
    # The report's stacks come from the dump: whole, down to the start function.
    assert growth.stacks == ((1, leak.stack),)


def test_an_ignore_pattern_aimed_at_the_creator_matches_a_cut_goroutine() -> None:
    before = snapshot(_reading(((1, _cut()),), _dumped(6, _recursing(40, "main.worker"), MAIN_MAIN)))
    leak = _dumped(21, _recursing(60, "main.leakDeep"), SERVE_LEAK)
    after = snapshot(_reading(((2, _cut()),), _dumped(6, _recursing(40, "main.worker"), MAIN_MAIN), leak))
    assert diff(before, after, Budget(ignore=("main.serveLeak",))).goroutines == ()
    assert diff(before, after, Budget(ignore=("main.leakDeep",))).goroutines == ()
    assert diff(before, after, Budget(ignore=("main.other",))).goroutines_leaked == 1


# Go 1.20 and older print the innermost 100 frames of a deeper goroutine, then this line, then its creator.
OLD_DUMP = (
    "goroutine 21 [chan receive, 2 minutes]:\n"
    + "main.descend(0x0, 0xc000012345)\n\t/src/main.go:36 +0x29\n" * 100
    + "...additional frames elided...\n"
    + "created by main.serveLeak\n\t/src/main.go:59 +0x65\n"
)
# Go 1.21 on keep the outermost frames and elide the middle.
NEW_DUMP = (
    "goroutine 21 [chan receive]:\n"
    + "main.descend(0x0, 0xc000012345)\n\t/src/main.go:36 +0x29\n" * 50
    + "...102 frames elided...\n"
    + "main.descend(0x0, 0xc000012345)\n\t/src/main.go:38 +0x3c\n" * 49
    + "main.leakDeep(0xc8)\n\t/src/main.go:51 +0x25\n"
    + "created by main.serveLeak in goroutine 7\n\t/src/main.go:59 +0x65\n"
)


def test_a_dump_that_lost_the_start_function_names_the_goroutine_by_its_creator() -> None:
    (old,) = parse_goroutine_dump(OLD_DUMP)
    assert old.elided and old.outer_missing
    assert dumped_identity(old) == "main.serveLeak"
    (new,) = parse_goroutine_dump(NEW_DUMP)
    assert new.elided and not new.outer_missing
    assert dumped_identity(new) == "main.leakDeep"


def test_a_goroutine_not_yet_running_is_left_out_as_the_profile_leaves_it_out() -> None:
    """A dump shows such a goroutine at the wrapper Go compiles `go f(x)` into; a profile shows no frames."""
    (waiting,) = parse_goroutine_dump(
        "goroutine 14 [runnable]:\n"
        "net/http.(*connReader).startBackgroundRead.gowrap2()\n\t/go/src/net/http/server.go:698 +0x25\n"
        "runtime.goexit({})\n\t/go/src/runtime/asm_amd64.s:1700 +0x1\n"
        "created by net/http.(*connReader).startBackgroundRead in goroutine 13\n\t/go/src/net/http/server.go:698\n"
    )
    assert is_own(waiting.stack)
    assert is_own(())
    assert not is_own(stack("main.run.gowrap1", "main.run", "runtime.goexit"))
