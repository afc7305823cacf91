"""What the whole session saw: each test's readings, the summary, and the drift check.

Every checked test's report carries a small JSON-able record (``report.goleak``),
so this works the same on an xdist controller, fed by its workers' reports, as
in a single process. Records are grouped by service run (name and PID): a
restarted service, or another worker's, starts a series of its own.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import pytest

from pytest_goleak.budget import format_size, parse_count, parse_size
from pytest_goleak.check import Verdict
from pytest_goleak.diff import describe

MEASURES = ("goroutines", "heap", "fds", "children", "threads", "tmpfiles")
MAX_LISTED = 20
_SPARKS = "▁▂▃▄▅▆▇█"


def record(service: str, verdict: Verdict, failure: str | None) -> dict[str, Any]:
    """The JSON-able facts of one checked test, to ride on its report."""

    def readings(snapshot: Any) -> dict[str, int | None]:
        return {
            "goroutines": snapshot.goroutine_count,
            "heap": snapshot.heap_bytes,
            "fds": snapshot.fd_count,
            "children": snapshot.child_count,
            "threads": snapshot.thread_count,
            "tmpfiles": snapshot.tmpfile_count,
        }

    return {
        "service": service,
        "before": readings(verdict.before),
        "after": readings(verdict.after),
        "grew": verdict.delta.measures(),
        "failure": failure,
    }


@dataclass(frozen=True)
class Point:
    nodeid: str
    service: str
    before: dict[str, int | None]
    after: dict[str, int | None]
    grew: dict[str, int | None]
    failure: str | None


@dataclass(frozen=True)
class SessionBudget:
    """How much a service may grow across the whole session (None: unchecked)."""

    goroutines: int | None = None
    heap: int | None = None
    fds: int | None = None

    @classmethod
    def parse(cls, goroutines: object, heap: object, fds: object) -> SessionBudget:
        def optional(value: object, parse: Any, name: str) -> int | None:
            if value is None or str(value).strip().lower() in ("", "none", "off"):
                return None
            result: int = parse(value, f"goleak_session_{name}")
            return result

        return cls(
            optional(goroutines, parse_count, "goroutines"),
            optional(heap, parse_size, "heap"),
            optional(fds, parse_count, "fds"),
        )


def sparkline(values: list[int], width: int = 40) -> str:
    """A text chart of ``values``, squeezed to at most ``width`` characters (each the max of its bucket)."""
    if not values:
        return ""
    if len(values) > width:
        step = len(values) / width
        values = [max(values[int(i * step) : max(int((i + 1) * step), int(i * step) + 1)]) for i in range(width)]
    low, high = min(values), max(values)
    span = (high - low) or 1
    return "".join(_SPARKS[min(len(_SPARKS) - 1, int((v - low) / span * (len(_SPARKS) - 1)))] for v in values)


class SessionRecorder:
    """Collects the records of a session's checked tests, in the order their reports arrive."""

    def __init__(self, budget: SessionBudget | None = None) -> None:
        self.points: list[Point] = []
        self.budget = budget or SessionBudget()

    def add(self, report: pytest.TestReport) -> None:
        data = getattr(report, "goleak", None)
        if report.when != "call" or not isinstance(data, dict):
            return
        try:
            self.points.append(
                Point(report.nodeid, data["service"], data["before"], data["after"], data["grew"], data["failure"])
            )
        except KeyError:
            return  # a record from another version of the plugin

    @property
    def failures(self) -> list[Point]:
        return [point for point in self.points if point.failure]

    def by_service(self) -> dict[str, list[Point]]:
        series: dict[str, list[Point]] = defaultdict(list)
        for point in self.points:
            series[point.service].append(point)
        return dict(series)

    def largest(self) -> dict[str, tuple[int, str]]:
        found: dict[str, tuple[int, str]] = {}
        for point in self.points:
            for measure in MEASURES:
                grew = point.grew.get(measure)
                if isinstance(grew, int) and grew > found.get(measure, (0, ""))[0]:
                    found[measure] = (grew, point.nodeid)
        return found

    def drift(self) -> list[str]:
        """Session-budget violations, one line each, naming the tests that added most."""
        problems = []
        for service, points in self.by_service().items():
            for measure in ("goroutines", "heap", "fds"):
                limit = getattr(self.budget, measure)
                first, last = points[0].before.get(measure), points[-1].after.get(measure)
                if limit is None or first is None or last is None or last - first <= limit:
                    continue
                grew = last - first
                shown = format_size(grew) if measure == "heap" else str(grew)
                allowed = format_size(limit) if measure == "heap" else str(limit)
                added = sorted(((p.after.get(measure) or 0) - (p.before.get(measure) or 0), p.nodeid) for p in points)
                top = ", ".join(
                    f"{nodeid} (+{format_size(n) if measure == 'heap' else n})"
                    for n, nodeid in reversed(added[-3:])
                    if n > 0
                )
                problems.append(
                    f"{service}: {measure} grew +{shown} over {len(points)} tests (session budget {allowed}); "
                    f"most added by: {top or 'no single test'}"
                )
        return problems

    def lines(self, verbosity: int = 0) -> list[str]:
        """The terminal summary; ``-q`` keeps one line, ``-v`` lists every leaking test."""
        if not self.points:
            return []
        failures = self.failures
        checked = len(self.points)
        lines = [f"{checked} test{'s' if checked != 1 else ''} checked, {len(failures)} leaked"]
        drift = self.drift()
        lines += [f"SESSION DRIFT {problem}" for problem in drift]
        if verbosity < 0:
            return lines
        shown = failures if verbosity > 0 else failures[:MAX_LISTED]
        lines += [f"LEAK {p.nodeid}: {str(p.failure).removeprefix('goleak: ')}" for p in shown]
        if len(shown) < len(failures):
            lines.append(f"... and {len(failures) - len(shown)} more (-v lists them all)")
        largest = self.largest()
        if largest:
            lines.append("largest growth in one test:")
            lines += [f"  {describe(measure, grew)}  {nodeid}" for measure, (grew, nodeid) in largest.items()]
        for service, points in self.by_service().items():
            lines.append(f"after each test ({service}, {len(points)} tests):")
            for measure in ("goroutines", "heap", "fds", "threads"):
                values = [p.after.get(measure) for p in points]
                if any(v is None for v in values):
                    continue
                numbers = [int(v or 0) for v in values]
                ends = (
                    f"{format_size(numbers[0])} -> {format_size(numbers[-1])}"
                    if measure == "heap"
                    else f"{numbers[0]} -> {numbers[-1]}"
                )
                lines.append(f"  {measure:<10} {sparkline(numbers)} {ends}")
        return lines
