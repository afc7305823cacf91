"""``diff``: what grew between two hand-built readings, and whether a budget allows it."""

from __future__ import annotations

from types import MappingProxyType

import pytest
from corefakes import IDLE, MAIN, PPROF_HANDLER, Site, child, goroutine, heap, process, profile, snapshot, stack

from pytest_goleak.judge.budget import Budget
from pytest_goleak.judge.diff import Delta, GoroutineGrowth, diff, heap_growth
from pytest_goleak.judge.measures import CHILDREN, FDS, GOROUTINES, HEAP, MEASURES, THREADS, TMPFILES, Measure
from pytest_goleak.read.pprof import GoroutineProfile, Stack
from pytest_goleak.read.snapshot import Snapshot
from pytest_goleak.read.tmpdir import DIRECTORY
from pytest_goleak.units import MiB


def _budget(**values: object) -> Budget:
    return Budget().updated(values, lambda name: f"test budget {name}")


def _goroutines(*groups: tuple[int, tuple[str, ...]]) -> GoroutineProfile:
    """The idle service's goroutines plus ``groups`` of (count, functions innermost first)."""
    return profile((1, MAIN), (1, PPROF_HANDLER), *((count, goroutine(*functions)) for count, functions in groups))


def _leak(before: GoroutineProfile, after: GoroutineProfile, budget: Budget | None = None) -> Delta:
    return diff(snapshot(before), snapshot(after), budget or Budget())


# Goroutines: compared by identity, not by current stack


def test_ending_one_goroutine_and_starting_another_kind_still_leaks_one() -> None:
    before = _goroutines((1, ("time.Sleep", "main.warmCache")))
    after = _goroutines((1, ("runtime.gopark", "main.pollUpstream")))
    delta = _leak(before, after)
    assert delta.grew["goroutines"] == 1
    assert delta.goroutines_leaked == 1
    (growth,) = delta.goroutines
    assert growth == GoroutineGrowth(
        "main.pollUpstream", 0, 1, ((1, goroutine("runtime.gopark", "main.pollUpstream")),)
    )
    assert delta.goroutine_total == 0  # the plain count did not move


def test_a_goroutine_whose_current_stack_changed_is_no_leak() -> None:
    before = _goroutines((1, ("syscall.Read", "main.(*conn).readLoop")))
    after = _goroutines((1, ("internal/poll.runtime_pollWait", "internal/poll.(*FD).Read", "main.(*conn).readLoop")))
    delta = _leak(before, after)
    assert delta.grew["goroutines"] == 0
    assert delta.goroutines == ()
    assert delta.exceeded(Budget()) == []


def test_growth_is_per_identity_and_sorted_largest_first() -> None:
    before = _goroutines((2, ("main.worker",)), (1, ("main.janitor",)))
    after = _goroutines(
        (3, ("runtime.chansend1", "main.worker")),
        (2, ("runtime.selectgo", "main.worker")),
        (1, ("main.janitor",)),
        (1, ("main.flusher",)),
    )
    delta = _leak(before, after)
    assert [(g.identity, g.before, g.after, g.leaked) for g in delta.goroutines] == [
        ("main.worker", 2, 5, 3),
        ("main.flusher", 0, 1, 1),
    ]
    assert delta.grew["goroutines"] == 4
    # The later reading's current stacks, most populous first.
    assert [count for count, _ in delta.goroutines[0].stacks] == [3, 2]
    assert delta.goroutines[0].stacks[0][1][0].function == "runtime.chansend1"


def test_fewer_goroutines_of_one_identity_do_not_offset_more_of_another() -> None:
    before = _goroutines((5, ("main.worker",)))
    after = _goroutines((1, ("main.worker",)), (2, ("main.leaky",)))
    delta = _leak(before, after)
    assert delta.grew["goroutines"] == 2
    assert delta.goroutine_total == -2


def test_launchers_are_looked_through_to_the_function_they_run() -> None:
    wait_group = "sync.(*WaitGroup).Go.func1"
    before = _goroutines((1, ("main.fetch", "main.main.func1", wait_group)))
    after = _goroutines((1, ("main.store", "main.main.func2", wait_group)))
    delta = _leak(before, after)
    assert [g.identity for g in delta.goroutines] == ["main.main.func2"]
    assert delta.grew["goroutines"] == 1


def test_errgroup_goroutines_are_told_apart_by_their_function() -> None:
    group = "golang.org/x/sync/errgroup.(*Group).Go.func1"
    after = _goroutines((2, ("main.poll", group)), (1, ("main.push", group)))
    delta = _leak(IDLE, after)
    assert [(g.identity, g.leaked) for g in delta.goroutines] == [("main.poll", 2), ("main.push", 1)]


def test_a_launcher_doing_its_own_work_keeps_the_launcher_as_identity() -> None:
    # wg.Done in the launcher's defer: the frame one in is the launcher's own package.
    wait_group = "sync.(*WaitGroup).Go.func1"
    after = _goroutines((1, ("sync.(*WaitGroup).Done", wait_group)))
    assert [g.identity for g in _leak(IDLE, after).goroutines] == [wait_group]


@pytest.mark.parametrize(
    "own",
    [
        pytest.param(goroutine("runtime/pprof.writeGoroutine", "net/http/pprof.handler.ServeHTTP"), id="pprof-frames"),
        pytest.param(goroutine("net/http.(*connReader).backgroundRead"), id="background-read"),
        pytest.param(
            goroutine("internal/poll.runtime_pollWait", "net/http.(*connReader).backgroundRead"),
            id="background-read-parked",
        ),
        pytest.param(
            goroutine("net/http.(*connReader).startBackgroundRead.func2"), id="background-read-go1.21-not-started"
        ),
        pytest.param(
            goroutine(
                "internal/poll.runtime_pollWait",
                "net/http.(*connReader).backgroundRead",
                "net/http.(*connReader).startBackgroundRead.func2",
            ),
            id="background-read-go1.21-parked",
        ),
        pytest.param((), id="empty-stack"),
        pytest.param(stack("runtime.goexit1", "runtime.goexit0"), id="exiting"),
        pytest.param(goroutine("runtime.goexit1", "main.worker"), id="exiting-worker"),
    ],
)
def test_the_plugins_own_and_passing_goroutines_never_count(own: Stack) -> None:
    after = profile((1, MAIN), (1, PPROF_HANDLER), (3, own))
    delta = _leak(IDLE, after)
    assert delta.grew["goroutines"] == 0
    assert delta.goroutines == ()
    assert delta.goroutine_total == 3  # the plain count sees them


def test_own_stacks_are_left_out_of_a_leaking_identitys_stacks() -> None:
    after = _goroutines((1, ("main.worker",)), (1, ("runtime.goexit1", "main.worker")))
    (growth,) = _leak(IDLE, after).goroutines
    assert growth.identity == "main.worker"
    assert growth.leaked == 1
    assert growth.stacks == ((1, goroutine("main.worker")),)


@pytest.mark.parametrize(
    ("patterns", "leaked"),
    [
        ((), ["main.backgroundFlush", "main.worker"]),
        (("main.background*",), ["main.worker"]),  # a start function, shell-style
        (("database/sql.*",), ["main.backgroundFlush"]),  # any frame of the stack
        (("main.work",), ["main.backgroundFlush", "main.worker"]),  # exact without a wildcard
        (("main.worker", "main.backgroundFlush"), []),
    ],
)
def test_ignore_patterns_leave_matching_goroutines_out(patterns: tuple[str, ...], leaked: list[str]) -> None:
    after = _goroutines(
        (1, ("time.Sleep", "main.backgroundFlush")),
        (2, ("database/sql.(*DB).connectionOpener", "main.worker")),
    )
    delta = _leak(IDLE, after, Budget(ignore=patterns))
    assert sorted(g.identity for g in delta.goroutines) == leaked
    assert delta.grew["goroutines"] == sum(g.leaked for g in delta.goroutines)


def test_ignore_patterns_apply_to_the_before_reading_too() -> None:
    # Ignored goroutines that end during the test must not offset a real leak either.
    before = _goroutines((4, ("main.backgroundFlush",)))
    after = _goroutines((1, ("main.worker",)))
    assert _leak(before, after, Budget(ignore=("main.background*",))).grew["goroutines"] == 1


# Heap, fds, children, threads, tmpfiles: after minus before


def test_heap_grows_by_live_bytes() -> None:
    delta = diff(snapshot(heap=heap(10 * MiB)), snapshot(heap=heap(14 * MiB)))
    assert delta.grew["heap"] == 4 * MiB
    assert delta.of(HEAP) == 4 * MiB
    assert diff(snapshot(heap=heap(14 * MiB)), snapshot(heap=heap(10 * MiB))).grew["heap"] == -4 * MiB


def test_new_fds_are_counted_and_listed() -> None:
    before = process()
    after = process({**before.fds, 7: "/data/orders.db", 9: "socket:[555]"})
    delta = diff(snapshot(process=before), snapshot(process=after))
    assert delta.grew["fds"] == 2
    assert delta.new_fds == ((7, "/data/orders.db"), (9, "socket:[555]"))


def test_an_fd_number_reused_for_another_target_is_listed_as_new() -> None:
    before = process({3: "socket:[100]", 7: "/data/a.db"})
    after = process({3: "socket:[100]", 7: "/data/b.db"})
    delta = diff(snapshot(process=before), snapshot(process=after))
    assert delta.grew["fds"] == 0  # the count did not move
    assert delta.new_fds == ((7, "/data/b.db"),)


def test_closing_an_ignored_fd_cannot_hide_a_new_real_one() -> None:
    before = process({3: "socket:[100]", 5: "/var/log/app.log"})
    after = process({3: "socket:[100]", 6: "/data/orders.db"})
    unfiltered = diff(snapshot(process=before), snapshot(process=after))
    assert unfiltered.grew["fds"] == 0  # the closed log file offsets the new fd
    delta = diff(snapshot(process=before), snapshot(process=after), Budget(ignore_fds=("*.log",)))
    assert delta.grew["fds"] == 1
    assert delta.new_fds == ((6, "/data/orders.db"),)
    assert delta.exceeded(Budget(ignore_fds=("*.log",))) == [FDS]


def test_an_ignored_new_fd_is_neither_counted_nor_listed() -> None:
    before = process({3: "socket:[100]"})
    after = process({3: "socket:[100]", 6: "/var/log/app.log"})
    delta = diff(snapshot(process=before), snapshot(process=after), Budget(ignore_fds=("*.log",)))
    assert delta.grew["fds"] == 0
    assert delta.new_fds == ()


def test_fd_patterns_match_a_sockets_description() -> None:
    postgres = "tcp 127.0.0.1:40312 -> 127.0.0.1:5432 ESTABLISHED"
    before = process({3: "socket:[100]"}, sockets={})
    after = process(
        {3: "socket:[100]", 8: "socket:[900]", 9: "socket:[901]"},
        sockets={8: postgres, 9: "tcp 127.0.0.1:40314 -> 10.0.0.9:443 ESTABLISHED"},
    )
    budget = Budget(ignore_fds=("tcp * -> 127.0.0.1:5432 *",))
    delta = diff(snapshot(process=before), snapshot(process=after), budget)
    assert delta.grew["fds"] == 1
    assert delta.new_fds == ((9, "socket:[901]"),)


def test_new_children_are_matched_by_pid_and_start_time() -> None:
    stays = child(300, start_time=10)
    before = process(children=[stays, child(301, start_time=11)])
    reused = child(301, "true", start_time=99)  # the old child exited and its pid was reused
    after = process(children=[stays, reused, child(302, start_time=12)])
    delta = diff(snapshot(process=before), snapshot(process=after))
    assert delta.new_children == (reused, child(302, start_time=12))
    assert delta.grew["children"] == 1  # a count: one more than before


def test_a_child_that_only_became_a_zombie_is_not_new() -> None:
    before = process(children=[child(300)])
    after = process(children=[child(300, status="zombie")])
    delta = diff(snapshot(process=before), snapshot(process=after))
    assert delta.new_children == ()
    assert delta.grew["children"] == 0


def test_threads_grow_but_are_unchecked_by_default() -> None:
    delta = diff(snapshot(process=process(threads=8)), snapshot(process=process(threads=11)))
    assert delta.grew["threads"] == 3
    assert Budget().limit(THREADS) is None
    assert delta.exceeded(Budget()) == []
    assert delta.exceeded(_budget(threads=2)) == [THREADS]
    assert delta.over(_budget(threads=2)) == ["threads +3 (budget 2)"]


def test_new_tmpfiles_are_counted_and_listed_by_path() -> None:
    before = {"cache": DIRECTORY, "cache/index": 128}
    after = {**before, "upload-42": DIRECTORY, "spool-1.json": 4096}
    delta = diff(snapshot(tmpfiles=before), snapshot(tmpfiles=after))
    assert delta.grew["tmpfiles"] == 2
    assert delta.new_tmpfiles == (("spool-1.json", 4096), ("upload-42", DIRECTORY))


def _full(goroutines: GoroutineProfile = IDLE) -> Snapshot:
    return snapshot(goroutines, heap(MiB), process(), {})


@pytest.mark.parametrize(
    ("before", "after", "missing"),
    [
        pytest.param(
            snapshot(), _full(), {"heap", "fds", "children", "threads", "tmpfiles", "offheap"}, id="before-bare"
        ),
        pytest.param(
            _full(), snapshot(), {"heap", "fds", "children", "threads", "tmpfiles", "offheap"}, id="after-bare"
        ),
        pytest.param(
            snapshot(process=process()),
            snapshot(process=process()),
            {"heap", "tmpfiles", "offheap"},
            id="no-heap-no-tmpdir",
        ),
        pytest.param(
            _full(), snapshot(heap=heap(MiB), tmpfiles={}), {"fds", "children", "threads", "offheap"}, id="no-pid"
        ),
    ],
)
def test_a_measure_missing_from_either_reading_is_none(before: Snapshot, after: Snapshot, missing: set[str]) -> None:
    delta = diff(before, after)
    assert {name for name, grew in delta.grew.items() if grew is None} == missing
    assert delta.grew["goroutines"] == 0  # always read
    assert set(delta.grew) == {measure.name for measure in MEASURES}


def test_a_missing_measure_is_never_over_budget_even_at_zero() -> None:
    delta = diff(snapshot(), snapshot(process=process({**process().fds, 9: "/x"}), tmpfiles={"a": 1}))
    assert delta.of(FDS) is None
    assert delta.of(TMPFILES) is None
    assert delta.exceeded(_budget(fds=0, tmpfiles=0, heap=0)) == []


# Budgets: exceeded and over


def _three_ways() -> Delta:
    before = snapshot(IDLE, heap(10 * MiB), process(), {})
    after = snapshot(
        _goroutines((3, ("main.worker",))),
        heap(14 * MiB),
        process({**process().fds, 7: "/data/orders.db"}),
        {},
    )
    return diff(before, after)


def test_exceeded_lists_measures_over_budget_in_table_order() -> None:
    delta = _three_ways()
    assert delta.exceeded(Budget()) == [GOROUTINES, HEAP, FDS]
    assert delta.over(Budget()) == [
        "3 goroutines leaked (budget 0)",
        "heap +4.0 MiB (budget 1.0 MiB)",
        "fds +1 (budget 0)",
    ]


def test_growth_equal_to_the_budget_is_within_it() -> None:
    delta = _three_ways()
    budget = _budget(goroutines=3, heap="4MiB", fds=1)
    assert delta.exceeded(budget) == []
    assert delta.over(budget) == []
    assert delta.over(_budget(goroutines=2, heap="4MiB", fds=1)) == ["3 goroutines leaked (budget 2)"]


def test_one_goroutine_is_singular() -> None:
    delta = _leak(IDLE, _goroutines((1, ("main.worker",))))
    assert delta.over(Budget()) == ["1 goroutine leaked (budget 0)"]


@pytest.mark.parametrize(
    ("unchecked", "left"),
    [
        ("goroutines", [HEAP, FDS]),
        ("heap", [GOROUTINES, FDS]),
        ("fds", [GOROUTINES, HEAP]),
    ],
)
def test_a_none_limit_leaves_a_measure_unchecked(unchecked: str, left: list[Measure]) -> None:
    budget = _budget(**{unchecked: None})
    assert budget.limits[unchecked] is None
    assert _three_ways().exceeded(budget) == left
    assert len(_three_ways().over(budget)) == 2


def test_children_and_tmpfiles_phrases() -> None:
    before = snapshot(process=process(), tmpfiles={})
    after = snapshot(process=process(children=[child(300), child(301)]), tmpfiles={"spool-1.json": 10})
    delta = diff(before, after)
    assert delta.exceeded(Budget()) == [CHILDREN, TMPFILES]
    assert delta.over(Budget()) == ["children +2 (budget 0)", "tmpfiles +1 (budget 0)"]


def test_without_goroutines_keeps_the_count_consistent_with_the_kept_growth() -> None:
    delta = diff(
        snapshot(IDLE, process=process()),
        snapshot(
            _goroutines((2, ("main.backgroundFlush",)), (1, ("main.worker",))),
            process=process({**process().fds, 7: "/data/orders.db"}),
        ),
    )
    flush, worker = delta.goroutines
    assert (flush.identity, worker.identity) == ("main.backgroundFlush", "main.worker")
    trimmed = delta.without_goroutines([flush])
    assert trimmed.goroutines == (worker,)
    assert trimmed.grew["goroutines"] == trimmed.goroutines_leaked == 1
    # Everything else is kept as it was.
    assert trimmed.grew["fds"] == 1
    assert trimmed.new_fds == delta.new_fds
    assert trimmed.goroutine_total == delta.goroutine_total == 3
    assert trimmed.over(Budget()) == ["1 goroutine leaked (budget 0)", "fds +1 (budget 0)"]
    emptied = delta.without_goroutines([flush, worker])
    assert emptied.grew["goroutines"] == 0
    assert emptied.exceeded(Budget()) == [FDS]
    assert delta.grew["goroutines"] == 3  # the original is untouched


def test_a_delta_built_by_hand_reads_its_growth_by_name() -> None:
    delta = Delta(MappingProxyType({"goroutines": 0, "heap": None, "fds": 2}))
    assert delta.of(FDS) == 2
    assert delta.of(HEAP) is None
    assert delta.of(THREADS) is None  # not in the mapping at all
    assert delta.exceeded(Budget()) == [FDS]


# Heap allocation sites


def test_heap_growth_sorts_sites_and_drops_the_plugins_own() -> None:
    before = heap(
        10 * MiB,
        Site(1, 1000, ("main.(*Cache).Put", "main.handle")),
        Site(4, 8000, ("main.loadConfig", "main.main")),
    )
    after = heap(
        20 * MiB,
        Site(3, 3000, ("main.(*Cache).Put", "main.handle")),  # +2000
        Site(2, 4000, ("main.loadConfig", "main.main")),  # shrank
        Site(5, 5000, ("main.newSession", "main.login")),  # new
        Site(1, 9000, ("bytes.growSlice", "net/http/pprof.handler.ServeHTTP")),  # the profile request's buffer
        Site(1, 700, ("main.newBuffer", "main.serve")),  # new, small
    )
    sites = heap_growth(before, after)
    assert [(site.stack[0].function, site.bytes, site.objects) for site in sites] == [
        ("main.newSession", 5000, 5),
        ("main.(*Cache).Put", 2000, 3),  # objects live now, not their growth
        ("main.newBuffer", 700, 1),
    ]
    assert [site.stack[0].function for site in heap_growth(before, after, limit=2)] == [
        "main.newSession",
        "main.(*Cache).Put",
    ]


def test_heap_growth_is_empty_when_no_site_grew() -> None:
    sites = (Site(1, 1000, ("main.(*Cache).Put", "main.handle")),)
    assert heap_growth(heap(MiB, *sites), heap(2 * MiB, *sites)) == []
