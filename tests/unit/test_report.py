"""``render`` and ``junit_properties``: the text and properties of hand-built verdicts, line by line."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest
from corefakes import IDLE, child, heap, process, snapshot

from pytest_goleak.judge.budget import Budget
from pytest_goleak.judge.diff import Delta, SiteGrowth, diff
from pytest_goleak.judge.measures import CHILDREN, FDS, GOROUTINES, HEAP, MEASURES, TMPFILES, Measure
from pytest_goleak.judge.verdict import LeakedGroup, Verdict
from pytest_goleak.read.pprof import Frame, HeapProfile, Stack
from pytest_goleak.read.procfs import ChildInfo
from pytest_goleak.read.snapshot import Snapshot
from pytest_goleak.read.tmpdir import DIRECTORY
from pytest_goleak.report.failure import MAX_FRAMES, MAX_GROUPS, MAX_LISTED, headline, junit_properties, render
from pytest_goleak.units import MiB

WORKER_STACK: Stack = (
    Frame("runtime.gopark", "/usr/local/go/src/runtime/proc.go", 435),
    Frame("runtime.chansend", "/usr/local/go/src/runtime/chan.go", 283),
    Frame("main.worker", "/src/worker.go", 12),
    Frame("runtime.goexit", "/usr/local/go/src/runtime/asm_amd64.s", 1700),
)
START_WORKERS = Frame("main.startWorkers", "/src/worker.go", 30)


def _verdict(
    over: Sequence[Measure],
    grew: Mapping[str, int | None],
    *,
    groups: Sequence[LeakedGroup] = (),
    sites: Sequence[SiteGrowth] = (),
    fds: Sequence[tuple[int, str]] = (),
    children: Sequence[ChildInfo] = (),
    tmpfiles: Sequence[tuple[str, int]] = (),
    waited: float = 0.0,
    after: Snapshot | None = None,
    goroutine_total: int = 0,
) -> Verdict:
    """A failed verdict as ``judged`` and ``gather_evidence`` leave it: phrases from ``grew``, evidence given."""
    budget = Budget()
    delta = Delta(
        grew={measure.name: grew.get(measure.name) for measure in MEASURES},
        goroutine_total=goroutine_total,
        new_fds=tuple(fds),
        new_children=tuple(children),
        new_tmpfiles=tuple(tmpfiles),
    )
    violations = tuple(m.phrase(delta.of(m) or 0, budget.limit(m)) for m in over)
    return Verdict(
        snapshot(),
        after or snapshot(),
        delta,
        violations,
        budget,
        tuple(over),
        waited=waited,
        leaked_groups=tuple(groups),
        heap_sites=tuple(sites),
    )


# Headline and goroutines


def test_the_headline_joins_the_violations() -> None:
    verdict = _verdict([GOROUTINES, FDS], {"goroutines": 3, "fds": 1})
    assert headline(verdict) == "goleak: 3 goroutines leaked (budget 0), fds +1 (budget 0)"
    assert render(verdict).split("\n") == ["goleak: 3 goroutines leaked (budget 0), fds +1 (budget 0)"]


@pytest.mark.parametrize(
    ("count", "proven", "words"),
    [
        (1, 1, "  (proven leaked by the Go runtime: nothing can ever wake it)"),
        (18, 18, "  (all proven leaked by the Go runtime: nothing can ever wake them)"),
        (18, 12, "  (12 of 18 proven leaked by the Go runtime)"),
        (18, 0, ""),
    ],
)
def test_a_group_says_how_many_of_it_the_runtime_proved(count: int, proven: int, words: str) -> None:
    group = LeakedGroup(count, "main.worker", "chan send", WORKER_STACK, START_WORKERS, proven=proven)
    lines = render(_verdict([GOROUTINES], {"goroutines": count}, groups=[group])).split("\n")
    assert lines[3] == f"  {count} x [chan send] main.worker{words}"


def test_leaked_goroutine_groups_show_count_state_identity_frames_and_creator() -> None:
    groups = [
        LeakedGroup(2, "main.worker", "chan send", WORKER_STACK, START_WORKERS),
        LeakedGroup(
            1,
            "main.worker",
            "select",
            (Frame("runtime.selectgo"), Frame("main.worker", "/src/worker.go", 15)),
            Frame("main.startWorkers"),
            proven=True,
        ),
    ]
    assert render(_verdict([GOROUTINES], {"goroutines": 3}, groups=groups)).split("\n") == [
        "goleak: 3 goroutines leaked (budget 0)",
        "",
        "leaked goroutines (3 in 2 groups):",
        "  2 x [chan send] main.worker",
        "        runtime.gopark",
        "            /usr/local/go/src/runtime/proc.go:435",
        "        runtime.chansend",
        "            /usr/local/go/src/runtime/chan.go:283",
        "        main.worker",
        "            /src/worker.go:12",
        "        created by main.startWorkers",
        "            /src/worker.go:30",
        "  1 x [select] main.worker  (proven leaked by the Go runtime: nothing can ever wake it)",
        "        runtime.selectgo",  # no file: no location line
        "        main.worker",
        "            /src/worker.go:15",
        "        created by main.startWorkers",
    ]


def test_a_group_from_the_profile_alone_has_no_state_and_no_creator() -> None:
    groups = [LeakedGroup(1, "main.worker", "", (Frame("main.worker", "/src/worker.go", 12),), None)]
    assert render(_verdict([GOROUTINES], {"goroutines": 1}, groups=groups)).split("\n") == [
        "goleak: 1 goroutine leaked (budget 0)",
        "",
        "leaked goroutines (1 in 1 group):",
        "  1 x main.worker",
        "        main.worker",
        "            /src/worker.go:12",
    ]


def test_groups_past_the_cap_are_counted_not_shown() -> None:
    groups = [LeakedGroup(1, f"main.worker{i}", "", (Frame(f"main.worker{i}"),), None) for i in range(MAX_GROUPS + 2)]
    lines = render(_verdict([GOROUTINES], {"goroutines": MAX_GROUPS + 2}, groups=groups)).split("\n")
    assert lines[2] == f"leaked goroutines ({MAX_GROUPS + 2} in {MAX_GROUPS + 2} groups):"
    assert [line for line in lines if line.startswith("  1 x ")] == [f"  1 x main.worker{i}" for i in range(MAX_GROUPS)]
    assert lines[-1] == "  ... and 2 more groups"


def _deep(frames: int) -> Stack:
    return (*(Frame(f"main.f{i}") for i in range(frames)), Frame("runtime.goexit"))


@pytest.mark.parametrize("frames", [MAX_FRAMES, MAX_FRAMES + 1])
def test_a_stack_of_max_frames_or_one_more_is_shown_whole(frames: int) -> None:
    # One frame more is shown rather than "... 1 frames ...", which takes the same line.
    groups = [LeakedGroup(1, f"main.f{frames - 1}", "running", _deep(frames), None)]
    lines = render(_verdict([GOROUTINES], {"goroutines": 1}, groups=groups)).split("\n")
    assert lines[4:] == [f"        main.f{i}" for i in range(frames)]  # runtime.goexit left out


@pytest.mark.parametrize(("frames", "hidden"), [(MAX_FRAMES + 2, 2), (20, 6), (500, 486)])
def test_a_longer_stack_is_cut_in_the_middle(frames: int, hidden: int) -> None:
    groups = [LeakedGroup(1, f"main.f{frames - 1}", "running", _deep(frames), None)]
    lines = render(_verdict([GOROUTINES], {"goroutines": 1}, groups=groups)).split("\n")
    keep = MAX_FRAMES // 2
    assert lines[4:] == [
        *(f"        main.f{i}" for i in range(keep)),
        f"        ... {hidden} frames ...",
        *(f"        main.f{i}" for i in range(frames - keep, frames)),
    ]


# Heap


def test_heap_sites_that_grew_are_listed_with_their_callers() -> None:
    sites = [
        SiteGrowth(
            (
                Frame("runtime.mallocgc", "/usr/local/go/src/runtime/malloc.go", 1010),
                Frame("runtime.makeslice", "/usr/local/go/src/runtime/slice.go", 116),
                Frame("main.(*Cache).Put", "/src/cache/cache.go", 88),
                Frame("main.handle", "/src/server.go", 120),
            ),
            3 * MiB,
            4,
        ),
        SiteGrowth((Frame("runtime.malg", "/usr/local/go/src/runtime/proc.go", 4700),), 512 << 10, 1),
    ]
    assert render(_verdict([HEAP], {"heap": 4 * MiB}, sites=sites)).split("\n") == [
        "goleak: heap +4.0 MiB (budget 1.0 MiB)",
        "",
        "live heap grew 4.0 MiB; allocation sites that grew (sampled estimates):",
        "  +3.0 MiB (4 objects live)",
        "        main.(*Cache).Put  cache.go:88",  # the allocator's own frames say nothing
        "        main.handle  server.go:120",
        "  +512.0 KiB (1 objects live)",
        "        runtime.malg  proc.go:4700",  # only runtime frames: shown all the same
    ]


def test_a_sites_callers_are_capped_and_so_are_the_sites() -> None:
    callers = tuple(Frame(f"main.f{i}", f"/src/f{i}.go", i) for i in range(10))
    sites = [SiteGrowth(callers, (10 - i) * MiB, 1) for i in range(8)]
    lines = render(_verdict([HEAP], {"heap": 40 * MiB}, sites=sites)).split("\n")
    assert [line for line in lines if line.startswith("  +")] == [
        f"  +{10 - i}.0 MiB (1 objects live)" for i in range(5)
    ]
    assert lines[4:8] == [f"        main.f{i}  f{i}.go:{i}" for i in range(4)]
    assert lines[8] == "  +9.0 MiB (1 objects live)"


@pytest.mark.parametrize(
    ("after_heap", "rate"),
    [
        pytest.param(heap(20 * MiB, rate=512 << 10), "512.0 KiB", id="go-default"),
        pytest.param(HeapProfile(20 * MiB, sample_rate=64 << 10), "64.0 KiB", id="lowered"),
        pytest.param(None, "512.0 KiB", id="unread"),
    ],
)
def test_no_site_that_grew_names_the_sample_rate(after_heap: HeapProfile | None, rate: str) -> None:
    verdict = _verdict([HEAP], {"heap": 4 * MiB}, after=snapshot(heap=after_heap))
    assert render(verdict).split("\n") == [
        "goleak: heap +4.0 MiB (budget 1.0 MiB)",
        "",
        f"no sampled allocation site grew: this service samples one allocation per {rate} "
        "(runtime.MemProfileRate), so a small leak may show no site; lower goleak_memprofilerate to see one",
    ]


def test_heap_within_budget_gets_no_section_even_with_sites() -> None:
    sites = [SiteGrowth((Frame("main.cache", "/src/c.go", 1),), MiB, 1)]
    verdict = _verdict([FDS], {"heap": MiB // 2, "fds": 1}, sites=sites, fds=[(7, "/x")])
    assert "allocation" not in render(verdict)
    assert render(verdict).split("\n") == ["goleak: fds +1 (budget 0)", "", "new file descriptors (1):", "  fd 7: /x"]


# Fds, children, tmpfiles


def test_new_fds_are_listed_with_their_targets() -> None:
    fds = [(7, "/data/orders.db (deleted)"), (9, "tcp 127.0.0.1:40312 -> 127.0.0.1:5432 ESTABLISHED")]
    assert render(_verdict([FDS], {"fds": 2}, fds=fds)).split("\n") == [
        "goleak: fds +2 (budget 0)",
        "",
        "new file descriptors (2):",
        "  fd 7: /data/orders.db (deleted)",
        "  fd 9: tcp 127.0.0.1:40312 -> 127.0.0.1:5432 ESTABLISHED",
    ]


@pytest.mark.parametrize(("count", "more"), [(MAX_LISTED, None), (MAX_LISTED + 5, "  ... and 5 more")])
def test_the_fd_list_is_capped(count: int, more: str | None) -> None:
    fds = [(10 + i, f"/data/f{i}") for i in range(count)]
    lines = render(_verdict([FDS], {"fds": count}, fds=fds)).split("\n")
    assert lines[2] == f"new file descriptors ({count}):"
    assert lines[3 : 3 + MAX_LISTED] == [f"  fd {10 + i}: /data/f{i}" for i in range(MAX_LISTED)]
    assert lines[3 + MAX_LISTED :] == ([more] if more else [])


def test_new_children_are_listed_by_pid_status_and_command_line() -> None:
    children = [child(300, "sleep 60", "sleeping"), child(301, "", "zombie")]
    assert render(_verdict([CHILDREN], {"children": 2}, children=children)).split("\n") == [
        "goleak: children +2 (budget 0)",
        "",
        "new child processes (2):",
        "  pid 300 [sleeping] sleep 60",
        "  pid 301 [zombie] sh",  # no command line (a zombie's is gone): its name
    ]


@pytest.mark.parametrize(("count", "more"), [(MAX_LISTED, None), (MAX_LISTED + 5, "  ... and 5 more")])
def test_the_child_list_is_capped(count: int, more: str | None) -> None:
    children = [child(300 + i) for i in range(count)]
    lines = render(_verdict([CHILDREN], {"children": count}, children=children)).split("\n")
    assert lines[2] == f"new child processes ({count}):"
    assert lines[3 : 3 + MAX_LISTED] == [f"  pid {300 + i} [sleeping] sleep 60" for i in range(MAX_LISTED)]
    assert lines[3 + MAX_LISTED :] == ([more] if more else [])


def test_new_tmpfiles_are_listed_with_sizes_and_directories() -> None:
    entries = [("spool-1.json", 4096), ("upload-42", DIRECTORY), ("upload-42/part-0", 0)]
    assert render(_verdict([TMPFILES], {"tmpfiles": 3}, tmpfiles=entries)).split("\n") == [
        "goleak: tmpfiles +3 (budget 0)",
        "",
        "new entries in the service's TMPDIR (3):",
        "  spool-1.json (4.0 KiB)",
        "  upload-42/",
        "  upload-42/part-0 (0 B)",
    ]


@pytest.mark.parametrize(("count", "more"), [(MAX_LISTED, None), (MAX_LISTED + 1, "  ... and 1 more")])
def test_the_tmpfile_list_is_capped(count: int, more: str | None) -> None:
    entries = [(f"spool-{i:02d}.json", 10) for i in range(count)]
    lines = render(_verdict([TMPFILES], {"tmpfiles": count}, tmpfiles=entries)).split("\n")
    assert lines[2] == f"new entries in the service's TMPDIR ({count}):"
    assert lines[3 : 3 + MAX_LISTED] == [f"  spool-{i:02d}.json (10 B)" for i in range(MAX_LISTED)]
    assert lines[3 + MAX_LISTED :] == ([more] if more else [])


def test_lists_of_measures_within_budget_are_left_out() -> None:
    verdict = _verdict(
        [GOROUTINES],
        {"goroutines": 1, "fds": 0, "children": 0, "tmpfiles": 0},
        fds=[(7, "/data/b.db")],  # an fd number reused: listed as new, but the count did not grow
        children=[child(300)],
        tmpfiles=[("x", 1)],
    )
    assert render(verdict).split("\n") == ["goleak: 1 goroutine leaked (budget 0)"]


# Settling


@pytest.mark.parametrize(
    ("waited", "said"),
    [
        (0.0, None),
        (0.049, None),
        (0.05, "(growth persisted through 0.05s of settling)"),
        (1.234, "(growth persisted through 1.23s of settling)"),
    ],
)
def test_the_settling_line_only_when_the_check_waited(waited: float, said: str | None) -> None:
    lines = render(_verdict([FDS], {"fds": 1}, fds=[(7, "/x")], waited=waited)).split("\n")
    tail = ["goleak: fds +1 (budget 0)", "", "new file descriptors (1):", "  fd 7: /x"]
    assert lines == ([*tail, "", said] if said else tail)


def test_the_whole_report_in_order() -> None:
    verdict = _verdict(
        [GOROUTINES, HEAP, FDS, CHILDREN, TMPFILES],
        {"goroutines": 1, "heap": 2 * MiB, "fds": 1, "children": 1, "tmpfiles": 1},
        groups=[LeakedGroup(1, "main.worker", "chan send", (Frame("main.worker", "/src/worker.go", 12),), None)],
        sites=[SiteGrowth((Frame("main.grow", "/src/grow.go", 7),), 2 * MiB, 2)],
        fds=[(7, "/data/orders.db")],
        children=[child(300)],
        tmpfiles=[("spool-1.json", 10)],
        waited=0.5,
    )
    assert render(verdict).split("\n") == [
        "goleak: 1 goroutine leaked (budget 0), heap +2.0 MiB (budget 1.0 MiB), fds +1 (budget 0), "
        "children +1 (budget 0), tmpfiles +1 (budget 0)",
        "",
        "leaked goroutines (1 in 1 group):",
        "  1 x [chan send] main.worker",
        "        main.worker",
        "            /src/worker.go:12",
        "",
        "live heap grew 2.0 MiB; allocation sites that grew (sampled estimates):",
        "  +2.0 MiB (2 objects live)",
        "        main.grow  grow.go:7",
        "",
        "new file descriptors (1):",
        "  fd 7: /data/orders.db",
        "",
        "new child processes (1):",
        "  pid 300 [sleeping] sleep 60",
        "",
        "new entries in the service's TMPDIR (1):",
        "  spool-1.json (10 B)",
        "",
        "(growth persisted through 0.50s of settling)",
    ]


# JUnit properties


def test_junit_properties_carry_each_measured_growth_and_the_plain_goroutine_count() -> None:
    verdict = _verdict(
        [GOROUTINES],
        {"goroutines": 3, "heap": 4 * MiB, "fds": 0, "children": None, "threads": -2, "tmpfiles": None},
        goroutine_total=5,
    )
    assert junit_properties(verdict) == [
        ("goroutines_leaked", 3),
        ("heap_delta_bytes", 4 * MiB),
        ("fds_delta", 0),  # measured and zero: still reported
        ("threads_delta", -2),
        ("goroutines_delta", 5),
    ]


def test_junit_properties_of_a_diff_without_heap_or_tmpdir() -> None:
    before = snapshot(IDLE, process=process(threads=6))
    after = snapshot(IDLE, process=process({**process().fds, 7: "/x"}, [child(300)], threads=9))
    delta = diff(before, after)
    verdict = Verdict(before, after, delta, (), Budget())
    assert junit_properties(verdict) == [
        ("goroutines_leaked", 0),
        ("fds_delta", 1),
        ("children_delta", 1),
        ("threads_delta", 3),
        ("goroutines_delta", 0),
    ]


def test_every_measure_has_a_distinct_junit_property() -> None:
    names = [measure.junit for measure in MEASURES]
    assert names == [
        "goroutines_leaked",
        "heap_delta_bytes",
        "fds_delta",
        "children_delta",
        "threads_delta",
        "tmpfiles_delta",
        "offheap_delta_bytes",
    ]
    assert "goroutines_delta" not in names
