"""Turns the benchmark sessions' JSON lines and cProfile stats into numbers and markdown."""

from __future__ import annotations

import json
import math
import pstats
import re
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_GROUPED = re.compile(r"leaked goroutines \((\d+) in (\d+) groups?")
_MiB = 1 << 20


def load(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The session record and the item records of one session's JSON lines."""
    session: dict[str, Any] = {}
    items: list[dict[str, Any]] = []
    if not path.exists():
        return session, items
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if record.get("type") in ("session", "timing"):  # timing: what the timing plugin found at configure
            session.update(record)
        elif record.get("type") == "item":
            items.append(record)
    return session, items


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


# A reading counts as slow above this many times the first quartile of its kind in the session. On two shared
# vCPUs the service's forced GC answers in one of two modes, ~1.3 or ~4.8 ms at ~10 goroutines (docs/cost.md);
# a median follows whichever mode holds most of its readings, so the share says which way a ratio may swing.
SLOW_FACTOR = 1.8


def slow_share(values: Sequence[float], factor: float = SLOW_FACTOR) -> float:
    """The share of ``values`` above ``factor`` times their first quartile; NaN for none."""
    if not values:
        return math.nan
    threshold = factor * percentile(values, 25)
    return sum(value > threshold for value in values) / len(values)


def of_kind(items: Iterable[dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
    return [item for item in items if item["name"].startswith(prefix)]


# Warm-up is dropped per kind: the unchecked, floor, checked-after-the-gap and checked-in-a-row tests.
WARMED = ("test_check_row_", "test_check_gap_", "test_base_", "test_floor_")


def drop_warmup(items: Sequence[dict[str, Any]], warmup: int) -> list[dict[str, Any]]:
    """One session's items without the first ``warmup`` tests of each kind in ``WARMED``."""
    seen: dict[str, int] = {}
    kept = []
    for item in items:
        kind = next((prefix for prefix in WARMED if item["name"].startswith(prefix)), None)
        if kind is not None:
            seen[kind] = seen.get(kind, 0) + 1
            if seen[kind] <= warmup:
                continue
        kept.append(item)
    return kept


# The plugin's Python side per test, in ms, as the timing plugin records it (see goleak_bench_timing.py):
# the fixture's setup, the plugin's call wrapper around the test body and its fixture's teardown (each with
# the plugin's pytest hooks of its phases), judging and rendering, and the dispatch of its own hooks, each
# without the waits on the service in it; then the waits themselves.
PHASES = ("py_before_ms", "py_after_ms", "py_verdict_ms", "py_hooks_ms")


@dataclass
class Spread:
    """Median and p95 (nearest rank) of one figure over the tests that have it; NaN for none."""

    median: float = math.nan
    p95: float = math.nan

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        return cls(median(values), percentile(values, 95))


@dataclass
class PythonSide:
    """The plugin's own Python time per test, the waits on the service left out (ms); NaN where not measured."""

    n: int = 0  # tests with the figures (0: the plugin under test lacks a function in TIMED)
    before: Spread = field(default_factory=Spread)
    after: Spread = field(default_factory=Spread)
    verdict: Spread = field(default_factory=Spread)
    hooks: Spread = field(default_factory=Spread)
    total: Spread = field(default_factory=Spread)  # of the per-test sums of the four
    waits: Spread = field(default_factory=Spread)  # time blocked on the service's pprof answers (Answer.read)
    cpu: Spread = field(default_factory=Spread)  # this thread's CPU time over the same regions (waits' CPU too)
    own_cpu: Spread = field(default_factory=Spread)  # the same less the waits' CPU: the plugin's own work


def python_side(items: Sequence[dict[str, Any]]) -> PythonSide:
    timed = [item for item in items if all(phase in item for phase in PHASES)]
    if not timed:
        return PythonSide()
    before, after, verdict, hooks = ([item[phase] for item in timed] for phase in PHASES)
    return PythonSide(
        n=len(timed),
        before=Spread.of(before),
        after=Spread.of(after),
        verdict=Spread.of(verdict),
        hooks=Spread.of(hooks),
        total=Spread.of([sum(item[phase] for phase in PHASES) for item in timed]),
        waits=Spread.of([item["wait_ms"] for item in timed if "wait_ms" in item]),
        cpu=Spread.of([item["py_cpu_ms"] for item in timed if "py_cpu_ms" in item]),
        own_cpu=Spread.of([item["py_cpu_own_ms"] for item in timed if "py_cpu_own_ms" in item]),
    )


@dataclass
class Checked:
    """The checked tests of one kind at one size: in a row, or after a touched gap."""

    n: int
    check_median: float
    check_p95: float
    overhead_median: float  # per test: its wall time minus the unchecked median; the median of that
    overhead_p95: float
    ratio: float  # checked median / unchecked median
    over_floor: float  # overhead median / floor median (the floor of one reading)
    after_median: float  # Verdict.waited: the after-test reading(s)
    after_p95: float
    before_per_test: float  # fresh before-readings taken, per test (an adopted one is not counted)
    after_per_test: float  # after and settle readings, per test
    gc_per_test: float  # readings whose heap was read after a forced GC, per test
    python: PythonSide = field(default_factory=PythonSide)  # the plugin's Python side per test, waits left out
    after_slow: float = math.nan  # the share of after-test readings that were slow (slow_share)


def checked_result(items: list[dict[str, Any]], base_median: float, floor_median: float) -> Checked:
    wall = [item["wall_ms"] for item in items]
    overhead = [value - base_median for value in wall]
    after = [item["settle_ms"] for item in items if "settle_ms" in item]
    readings = [reading for item in items for reading in item.get("readings", [])]
    per = 1 / len(items) if items else math.nan
    overhead_median = median(overhead)
    return Checked(
        n=len(items),
        check_median=median(wall),
        check_p95=percentile(wall, 95),
        overhead_median=overhead_median,
        overhead_p95=percentile(overhead, 95),
        ratio=median(wall) / base_median if base_median else math.nan,
        over_floor=overhead_median / floor_median if floor_median else math.nan,
        after_median=median(after),
        after_p95=percentile(after, 95),
        before_per_test=sum(r.startswith("before:") for r in readings) * per,
        after_per_test=sum(r.startswith(("after:", "settle:")) for r in readings) * per,
        gc_per_test=sum(r.endswith(":gc") for r in readings) * per,
        python=python_side(items),
        after_slow=slow_share(after),
    )


@dataclass
class SizeResult:
    label: str
    goroutines: int | None
    heap_alloc: int | None
    base_n: int
    base_median: float
    base_p95: float
    # One reading's floor, after a touch of the test's path on a fresh connection (floor.py --touch):
    # goroutine?debug=0 + heap?gc=1&debug=1, summed per test.
    floor_median: float
    floor_p95: float
    floor_goroutine: float
    floor_heap: float
    row: Checked  # checked tests right after another checked test: the primary figures
    gap: Checked  # the first checked test after the unchecked and floor tests touched the service
    unexpected: list[str] = field(default_factory=list)
    leaks: list[dict[str, Any]] = field(default_factory=list)
    timed_missing: list[str] = field(default_factory=list)  # TIMED functions the plugin under test lacks
    call_wrappers_adjacent: bool | None = None  # the timing plugin's call wrappers sat next to the plugin's
    floor_heap_slow: float = math.nan  # the share of the floor's heap answers that were slow (slow_share)

    @property
    def leak_report_median(self) -> float:
        return median([leak["report_ms"] for leak in self.leaks])

    @property
    def leak_report_max(self) -> float:
        return max((leak["report_ms"] for leak in self.leaks), default=math.nan)

    @property
    def leak_grouped(self) -> bool:
        return bool(self.leaks) and all(leak["grouped"] for leak in self.leaks)


def leak_record(item: dict[str, Any]) -> dict[str, Any]:
    props = item.get("props") or {}
    text = item.get("text", "")
    found = _GROUPED.search(text)
    groups = int(found.group(2)) if found else None
    listed = int(found.group(1)) if found else None
    report_ms = (
        (item["reported_at"] - props["body_end"]) * 1000 if "body_end" in props and "reported_at" in item else math.nan
    )
    return {
        "outcome": item.get("outcome"),
        "report_ms": report_ms,
        "whole_minus_request_ms": item["wall_ms"] - props.get("request_ms", math.nan),
        "request_ms": props.get("request_ms", math.nan),
        "groups": groups,
        "listed": listed,
        # Grouped: the test failed, and the 10,000 goroutines are a handful of entries with counts.
        "grouped": item.get("outcome") == "failed" and groups is not None and groups <= 8 and (listed or 0) >= 10000,
        "headline": text.split("\n", 1)[0][:160],
    }


def size_result(label: str, session: dict[str, Any], items: list[dict[str, Any]]) -> SizeResult:
    """One size's numbers from its sessions' items (warm-up already dropped)."""
    base = of_kind(items, "test_base_")
    floor = of_kind(items, "test_floor_")
    base_ms = [item["wall_ms"] for item in base]
    floor_g = [item["props"]["goroutine_ms"] for item in floor if item.get("props")]
    floor_h = [item["props"]["heap_ms"] for item in floor if item.get("props")]
    floor_sum = [g + h for g, h in zip(floor_g, floor_h, strict=False)]
    base_median = median(base_ms)
    floor_median = median(floor_sum)
    unexpected = [
        f"{item['name']}: {item.get('outcome')}: {item.get('text', '').splitlines()[0] if item.get('text') else ''}"
        for item in items
        if not item["name"].startswith("test_leak_") and item.get("outcome") != "passed"
    ]
    return SizeResult(
        label=label,
        goroutines=session.get("goroutines"),
        heap_alloc=session.get("heap_alloc"),
        base_n=len(base_ms),
        base_median=base_median,
        base_p95=percentile(base_ms, 95),
        floor_median=floor_median,
        floor_p95=percentile(floor_sum, 95),
        floor_goroutine=median(floor_g),
        floor_heap=median(floor_h),
        row=checked_result(of_kind(items, "test_check_row_"), base_median, floor_median),
        gap=checked_result(of_kind(items, "test_check_gap_"), base_median, floor_median),
        unexpected=unexpected,
        leaks=[leak_record(item) for item in of_kind(items, "test_leak_")],
        timed_missing=list(session.get("timed_missing", [])),
        call_wrappers_adjacent=session.get("call_wrappers_adjacent"),
        floor_heap_slow=slow_share(floor_h),
    )


@dataclass
class CleanResult:
    n: int
    failures: int
    errors: int
    failed_names: list[str]
    rss_first: int
    rss_last: int
    rss_max: int
    median_ms: float

    @property
    def rss_growth(self) -> int:
        return self.rss_last - self.rss_first


def clean_result(items: list[dict[str, Any]], prefix: str) -> CleanResult:
    chosen = of_kind(items, prefix)
    failed = [item for item in chosen if item.get("outcome") == "failed"]
    errors = [item for item in chosen if str(item.get("outcome", "")).startswith("error")]
    rss = [item["rss"] for item in chosen] or [0]
    return CleanResult(
        n=len(chosen),
        failures=len(failed),
        errors=len(errors),
        failed_names=[f"{item['name']}: {(item.get('text') or '').splitlines()[0:1]}" for item in failed + errors][:10],
        rss_first=rss[0],
        rss_last=rss[-1],
        rss_max=max(rss),
        median_ms=median([item["wall_ms"] for item in chosen]),
    )


# ---------------------------------------------------------------- profiles

# Every function the profile tables look up in a cProfile dump, by what its time stands for:
# (path suffix of its file, function name). A plugin function's path is its file in the repository;
# "~" is a builtin, named as cProfile names it. tests/unit/test_benchmark_names.py fails when a
# plugin function here is renamed or moved, where a stale name would read as zero in RESULTS.md.
PROFILED: dict[str, tuple[str, str]] = {
    # the readings
    "snapshot": ("pytest_goleak/read/snapshot.py", "take"),  # Snapshotter.take: one reading
    "pprof answer": ("pytest_goleak/read/keepalive.py", "read"),  # reading one answer off the kept-alive connection
    "goroutine profile parse": ("pytest_goleak/read/pprof.py", "parse_goroutine_profile"),
    "heap profile": ("pytest_goleak/read/pprof.py", "heap_of"),  # one heap profile read and parsed
    "heap profile parse": ("pytest_goleak/read/pprof.py", "parse_heap_profile"),
    "/proc read": ("pytest_goleak/read/procfs.py", "read_process"),
    "/proc children scan": ("pytest_goleak/read/procfs.py", "_read_descendants"),
    # judging
    "diff": ("pytest_goleak/judge/diff.py", "diff"),
    "kept reading check": ("pytest_goleak/judge/reuse.py", "read_now"),
    "settle": ("pytest_goleak/judge/settle.py", "settle"),  # the caller of the settle sleeps
    # a failed verdict
    "evidence": ("pytest_goleak/judge/evidence.py", "gather_evidence"),
    "full dump": ("pytest_goleak/read/pprof.py", "proving_dump"),  # goroutineleak?debug=2, else the plain dump
    "plain dump": ("pytest_goleak/read/pprof.py", "goroutine_dump"),  # goroutine?debug=2
    "full dump parse": ("pytest_goleak/read/pprof.py", "parse_goroutine_dump"),
    "dumped identity": ("pytest_goleak/judge/identity.py", "dumped_identity"),
    "render": ("pytest_goleak/report/failure.py", "render"),
    # third-party code and builtins
    "httpx client": ("httpx/_client.py", "__init__"),
    "httpx ssl context": ("httpx/_config.py", "create_ssl_context"),
    "sleep": ("~", "<built-in method time.sleep>"),
    "recv_into": ("~", "<method 'recv_into' of '_socket.socket' objects>"),
    "recv": ("~", "<method 'recv' of '_socket.socket' objects>"),
    "send": ("~", "<method 'send' of '_socket.socket' objects>"),
    "sendall": ("~", "<method 'sendall' of '_socket.socket' objects>"),
}


# Every plugin function the timing plugin (goleak_bench_timing.py) wraps to take the plugin's Python side
# apart, by what its time stands for: (module where the plugin looks the name up, the name there, with
# "Class.method" for a method, the module that defines it, the sum its time goes to). The wrapper replaces
# the name where it is looked up, so a function imported by name is wrapped at its import site.
# tests/unit/test_benchmark_names.py fails when one is renamed, moved or no longer called from there; under
# --ref an older plugin may lack one, and then no phase figure is taken (the tables say n/a).
TIMED: dict[str, tuple[str, str, str, str]] = {
    # every wait of the plugin on the service: the status and body of one pprof answer
    "pprof answer": ("pytest_goleak.read.keepalive", "Answer.read", "pytest_goleak.read.keepalive", "wait"),
    # judging: the verdict on a delta (settle's, the one a clean test is judged by)
    "judge": ("pytest_goleak.judge.settle", "judged", "pytest_goleak.judge.verdict", "verdict"),
    # rendering: the failure text (None for a clean test), the JUnit properties, the session's record
    "render": ("pytest_goleak.handle", "render_outcome", "pytest_goleak.report.failure", "verdict"),
    # imported where it is called (a session that checks no test never loads report/failure.py), so wrapped where
    # it is defined; an older plugin (--ref) bound it at import, and its time then falls to the after phase
    "junit properties": ("pytest_goleak.report.failure", "junit_properties", "pytest_goleak.report.failure", "verdict"),
    "session record": ("pytest_goleak.plugin", "record", "pytest_goleak.report.session", "verdict"),
}


class Stats:
    """Look-ups in one cProfile dump by file suffix and function name."""

    def __init__(self, path: Path) -> None:
        self.stats: dict[tuple[str, int, str], tuple[int, int, float, float, Any]] = pstats.Stats(str(path)).stats  # type: ignore[attr-defined]

    def of(self, what: str) -> tuple[int, float, float]:
        """:meth:`find` of the ``PROFILED`` entry ``what``."""
        return self.find(*PROFILED[what])

    def find(self, file_suffix: str, function: str) -> tuple[int, float, float]:
        """(calls, own seconds, cumulative seconds) of the outermost matching entry."""
        best = (0, 0.0, 0.0)
        for (file, _line, name), (_cc, calls, own, cum, _callers) in self.stats.items():
            if name == function and file.replace("\\", "/").endswith(file_suffix) and cum >= best[2]:
                best = (calls, own, cum)
        return best

    def called_from(self, function: str, caller_suffix: str, caller: str) -> tuple[int, float]:
        """(calls, own seconds) of builtin ``function`` when called from ``caller`` in ``caller_suffix``."""
        calls, own = 0, 0.0
        for (_file, _line, name), (_cc, _calls, _own, _cum, callers) in self.stats.items():
            if name != function:
                continue
            for (cfile, _cline, cname), value in callers.items():
                if cname == caller and cfile.replace("\\", "/").endswith(caller_suffix):
                    calls += value[0]
                    own += value[2]
        return calls, own

    def cum_from(self, file_suffix: str, function: str, caller: str) -> float:
        """Cumulative seconds of ``function`` spent in calls made by ``caller``."""
        total = 0.0
        for (file, _line, name), (_cc, _calls, _own, _cum, callers) in self.stats.items():
            if name != function or not file.replace("\\", "/").endswith(file_suffix):
                continue
            for (_cfile, _cline, cname), value in callers.items():
                if cname == caller:
                    total += value[3]
        return total

    def of_from(self, what: str, caller: str) -> float:
        """:meth:`cum_from` of the ``PROFILED`` entry ``what`` in calls made by the entry ``caller``."""
        return self.cum_from(*PROFILED[what], PROFILED[caller][1])

    def sleeps_in(self, caller: str) -> tuple[int, float]:
        """(calls, seconds) of ``time.sleep`` called from the ``PROFILED`` entry ``caller``."""
        return self.called_from(PROFILED["sleep"][1], *PROFILED[caller])

    def top(self, count: int = 12) -> list[tuple[str, int, float, float]]:
        rows = []
        for (file, line, name), (_cc, calls, own, cum, _callers) in self.stats.items():
            where = f"{_short(file)}:{line}({name})" if file != "~" else name
            rows.append((where, calls, own, cum))
        rows.sort(key=lambda row: -row[2])
        return rows[:count]


def _short(file: str) -> str:
    file = file.replace("\\", "/")
    for marker in ("site-packages/", "pytest_goleak/", "lib/python3"):
        if marker in file:
            _, tail = file.split(marker, 1)
            return (marker if marker == "pytest_goleak/" else "") + tail
    return file.rsplit("/", 1)[-1]


def check_breakdown(path: Path, tests: int, wall_per_test: float) -> list[tuple[str, float, str]]:
    """Where a clean checked test's time goes: (what, ms per test, note)."""
    s = Stats(path)
    per = 1000.0 / max(tests, 1)
    answers = s.of("pprof answer")
    heap = s.of("heap profile")
    descendants = s.of("/proc children scan")
    kept = s.of("kept reading check")
    client = s.of("httpx client")
    ssl = s.of("httpx ssl context")
    sleep = s.sleeps_in("settle")
    take = s.of("snapshot")
    rows = [
        (
            "waiting for pprof answers (goroutine profile, heap profile, index)",
            answers[2] * per,
            f"{answers[0] / max(tests, 1):.2f} answers/test, {heap[0] / max(tests, 1):.2f} heap profiles/test",
        ),
        (
            "goroutine profile parse (text)",
            s.of("goroutine profile parse")[2] * per,
            f"{s.of('goroutine profile parse')[0] / max(tests, 1):.2f} parses/test: a text seen before is not parsed",
        ),
        ("heap profile parse (text)", s.of("heap profile parse")[2] * per, ""),
        (
            "/proc read (read_process)",
            s.of("/proc read")[2] * per,
            f"of which scanning /proc for children {descendants[2] * per:.2f} ms",
        ),
        ("diff", s.of("diff")[2] * per, ""),
        (
            "checking the kept reading: /proc/PID/io, the pprof index after a long gap"
            " (reuse.read_now, less its /proc read)",
            (kept[2] - s.of_from("/proc read", "kept reading check")) * per,
            f"{kept[0] / max(tests, 1):.2f} checks/test",
        ),
        (
            "httpx.Client() construction",
            client[2] * per,
            f"{client[0] / max(tests, 1):.1f} clients/test, SSL context {ssl[2] * per:.2f} ms",
        ),
        ("settle sleeps (settle.settle)", sleep[1] * per, f"{sleep[0] / max(tests, 1):.2f} sleeps/test"),
    ]
    accounted = sum(row[1] for row in rows)
    rows.append(("everything else (pytest, fixtures, the test body, report)", wall_per_test - accounted, ""))
    rows.append(
        ("= profiled wall time per checked test", wall_per_test, f"{take[0] / max(tests, 1):.2f} snapshots/test")
    )
    waiting = (s.of("recv_into")[1] + s.of("recv")[1]) * per
    sending = (s.of("send")[1] + s.of("sendall")[1]) * per
    rows.append(("(of all the above: blocked in socket recv, i.e. waiting for Go's answer)", waiting, ""))
    rows.append(
        (
            "(of all the above: in socket send)",
            sending,
            "on 2 shared cores a send can wait for a CPU the Go runtime is busy on",
        )
    )
    return rows


def leak_breakdown(path: Path, tests: int, wall_per_test: float) -> list[tuple[str, float, str]]:
    """Where a 10,000-goroutine leak test's time goes."""
    s = Stats(path)
    per = 1000.0 / max(tests, 1)
    take = s.of("snapshot")
    sleep = s.sleeps_in("settle")
    dump = s.of("full dump")
    # The plain dump, where this Go does not serve goroutineleak (no leak proof).
    plain = s.of_from("plain dump", "full dump")
    identity = s.of("dumped identity")
    rows = [
        ("snapshots (before, after, settle retakes)", take[2] * per, f"{take[0] / max(tests, 1):.1f} snapshots/test"),
        ("settle sleeps (settle.settle)", sleep[1] * per, f"{sleep[0] / max(tests, 1):.1f} sleeps/test"),
        (
            "full dump fetch (goroutineleak?debug=2, else goroutine?debug=2)",
            dump[2] * per,
            f"goroutine?debug=2 {plain * per:.1f} ms (goroutineleak not served)" if plain else "goroutineleak?debug=2",
        ),
        ("full dump parse (parse_goroutine_dump)", s.of("full dump parse")[2] * per, ""),
        (
            "dumped_identity() over every dumped goroutine",
            identity[2] * per,
            f"{identity[0] / max(tests, 1):.0f} calls/test (all callers)",
        ),
        ("evidence total (gather_evidence)", s.of("evidence")[2] * per, ""),
        ("render the report", s.of("render")[2] * per, ""),
        ("httpx.Client() construction", s.of("httpx client")[2] * per, ""),
        ("= profiled wall time per leak test", wall_per_test, "includes the 10,000-goroutine request itself"),
    ]
    return rows


# ---------------------------------------------------------------- markdown


def ms(value: float, digits: int = 1) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:,.{digits}f}"


def ratio(value: float) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.2f}x"


def mib(value: int | None) -> str:
    return "n/a" if value is None else f"{value / _MiB:,.1f} MiB"


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines
