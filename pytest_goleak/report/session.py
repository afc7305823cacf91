"""What the whole session saw: each test's readings, the summary, and the drift check.

Every checked test's report carries a small JSON-able record (``report.goleak``),
so this works the same on an xdist controller, fed by its workers' reports, as
in a single process. Records are grouped by service run (name and PID): a
restarted service, or another worker's, starts a series of its own.
"""

from __future__ import annotations

import re
import textwrap
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import pytest

from pytest_goleak.judge.measures import BY_NAME, CHARTED, MEASURES, SESSION, Measure, values
from pytest_goleak.judge.verdict import Verdict
from pytest_goleak.report.baseline import entry

MAX_LISTED = 20
_WITH_UNIT = re.compile(r"(\d) (B|KiB|MiB|GiB)\b")
_SPARKS = "▁▂▃▄▅▆▇█"


def record(service: str, verdict: Verdict, failure: str | None) -> dict[str, Any]:
    """The JSON-able facts of one checked test, to ride on its report.

    Readings are counted as the test's verdict counts them: under its ignore patterns.
    """
    judged = verdict.delta.beyond(verdict.budget.known)
    return {
        "service": service,
        "before": values(verdict.before, verdict.budget),
        "after": values(verdict.after, verdict.budget),
        "grew": dict(verdict.delta.grew),
        "failure": failure,
        # What it leaked without any baseline (the baseline's entry for it), and the identities that failed it.
        "leaks": entry(verdict),
        "leaked_goroutines": {g.identity: g.leaked for g in judged.goroutines} if failure else {},
    }


@dataclass(frozen=True)
class Point:
    nodeid: str
    service: str
    before: dict[str, int | None]
    after: dict[str, int | None]
    grew: dict[str, int | None]
    failure: str | None
    outcome: str = "passed"  # the test's call-phase outcome
    leaks: dict[str, Any] | None = None  # what it leaked judged without a baseline (see baseline.entry)
    leaked_goroutines: dict[str, int] = field(default_factory=dict)
    # The test function's file (relative to the rootdir) and 1-based line, from the report: where annotations point.
    location: tuple[str, int] | None = None


@dataclass(frozen=True)
class SessionBudget:
    """How much a service may grow across the whole session, by measure name (absent or None: unchecked)."""

    limits: Mapping[str, int | None] = field(default_factory=dict)

    def limit(self, measure: Measure) -> int | None:
        return self.limits.get(measure.name)


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
        if not isinstance(data, dict):  # on the call report (steady state) or the teardown report
            return
        try:
            self.points.append(
                Point(
                    report.nodeid,
                    data["service"],
                    data["before"],
                    data["after"],
                    data["grew"],
                    data["failure"],
                    data.get("outcome", report.outcome),
                    data.get("leaks"),
                    data.get("leaked_goroutines", {}),
                    _location(report),
                )
            )
        except KeyError:
            return  # a record from another version of the plugin

    def leaks(self) -> dict[str, dict[str, Any] | None]:
        """Each checked test's leaks judged without a baseline (None: clean), by test id; the last run wins."""
        return {point.nodeid: point.leaks for point in self.points}

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
                grew = point.grew.get(measure.name)
                if isinstance(grew, int) and grew > found.get(measure.name, (0, ""))[0]:
                    found[measure.name] = (grew, point.nodeid)
        return found

    def growth(self) -> dict[str, dict[str, int]]:
        """Per service run, how much each session measure grew from its first reading to its last."""
        grown: dict[str, dict[str, int]] = {}
        for service, points in self.by_service().items():
            grown[service] = {}
            for measure in SESSION:
                first = _known(points, measure.name, "before")
                last = _known(reversed(points), measure.name, "after")
                if first is not None and last is not None:
                    grown[service][measure.name] = last - first
        return grown

    def drift(self) -> list[str]:
        """Session-budget violations, one line each, naming the tests that added most."""
        problems = []
        grown = self.growth()
        for service, points in self.by_service().items():
            for measure in SESSION:
                name, limit = measure.name, self.budget.limit(measure)
                grew = grown[service].get(name)
                if limit is None or grew is None or grew <= limit:
                    continue
                added = sorted(((p.after.get(name) or 0) - (p.before.get(name) or 0), p.nodeid) for p in points)
                top = ", ".join(f"{nodeid} ({measure.signed(n)})" for n, nodeid in reversed(added[-3:]) if n > 0)
                problems.append(
                    f"{service}: {name} grew {measure.signed(grew)} over {len(points)} tests "
                    f"(session budget {measure.show(limit)}); most added by: {top or 'no single test'}"
                )
        return problems

    def lines(self, verbosity: int = 0, width: int = 80) -> list[str]:
        """The terminal summary; ``-q`` keeps the counts and the leaking tests, ``-v`` lists every leaking test.

        A leaking test's id and headline are never cut: where they do not fit in ``width`` the headline
        goes on the lines below, wrapped (pytest's short summary cuts both at the terminal's edge).
        """
        if not self.points:
            return []
        failures = self.failures
        checked = len(self.points)
        lines = [f"{checked} test{'s' if checked != 1 else ''} checked, {len(failures)} leaked"]
        drift = self.drift()
        lines += [f"SESSION DRIFT {problem}" for problem in drift]
        shown = failures if verbosity > 0 else failures[:MAX_LISTED]
        for point in shown:
            lines += leak_lines(point.nodeid, str(point.failure), width)
        if len(shown) < len(failures):
            lines.append(f"... and {len(failures) - len(shown)} more (-v lists them all)")
        if verbosity < 0:
            return lines
        largest = self.largest()
        if largest:
            lines.append("largest growth in one test:")
            lines += [f"  {BY_NAME[name].phrase(grew)}  {nodeid}" for name, (grew, nodeid) in largest.items()]
        for service, points in self.by_service().items():
            lines.append(f"after each test ({service}, {len(points)} tests):")
            for measure in CHARTED:
                # A reading that bounded the heap without a GC has no figure for it; the others chart.
                charted = measure.chart_values([p.after.get(measure.name) for p in points])
                numbers = [v for v in charted if v is not None]
                if len(numbers) < len(points) / 2:
                    continue
                ends = f"{measure.shown_in_chart(numbers[0])} -> {measure.shown_in_chart(numbers[-1])}"
                since = " (since the first test)" if measure.from_first else ""
                lines.append(f"  {measure.name:<10} {sparkline(numbers)} {ends}{since}")
        return lines


def leak_lines(nodeid: str, failure: str, width: int) -> list[str]:
    """``LEAK id: headline`` on one line where it fits, else the id whole and the headline wrapped below it."""
    return whole_lines(f"LEAK {nodeid}", failure.removeprefix("goleak: "), width)


def whole_lines(head: str, said: str, width: int) -> list[str]:
    """``head: said`` on one line where it fits, else ``head`` whole and ``said`` wrapped, indented, below it."""
    line = f"{head}: {said}"
    if len(line) <= width:
        return [line]
    kept = _WITH_UNIT.sub("\\1\u00a0\\2", said)  # "256.0 KiB" stays on one line: textwrap splits at ASCII spaces
    wrapped = textwrap.wrap(kept, max(width - 4, 20), break_long_words=False, break_on_hyphens=False)
    return [f"{head}:", *(f"    {part.replace(chr(0xA0), ' ')}" for part in wrapped)]


def _location(report: pytest.TestReport) -> tuple[str, int] | None:
    """The test's file and 1-based line (pytest's ``location`` has a 0-based line, or None)."""
    try:
        path, line, _ = report.location
    except (TypeError, ValueError):
        return None
    return (str(path), line + 1 if isinstance(line, int) else 1)


def _known(points: Iterable[Point], name: str, first: Literal["before", "after"]) -> int | None:
    """The first figure for measure ``name`` along ``points``, from ``first`` then the other reading of each.

    A test whose after-reading bounded the heap has no figure for it there; its
    before-reading (or the next test's, going back) still has one.
    """
    for point in points:
        readings = (point.before, point.after) if first == "before" else (point.after, point.before)
        for reading in readings:
            value = reading.get(name)
            if value is not None:
                return value
    return None
