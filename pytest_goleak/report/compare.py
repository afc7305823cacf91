"""``--goleak-compare``: this run's growth per test against another run's (main's, say), read from its JSON.

A leak smaller than every budget (200 KiB of heap per test, say) passes every
run and still grows a long-running server by gigabytes; between two commits
it shows as a change. Budgets are absolute; this is relative, in the spirit
of pytest-benchmark's ``--benchmark-compare`` and ``--benchmark-compare-fail``:
the other run is a JSON document written by ``--goleak-json`` (several files,
one per CI shard, count as one run), and a run fails only when
``--goleak-compare-fail`` says how much more is too much.

A change is shown when a test grew a measure by more than it did in the other
run, beyond the measure's noise (:data:`NOISE`, chosen from two runs of the
same clean suite, see docs/ci.md); new tests and gone tests are said as such
and never fail. The session's growth (``session`` in the JSON) is compared the
same way, as ``session_NAME`` thresholds.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_goleak.errors import ConfigError
from pytest_goleak.judge.measures import BY_NAME, MEASURES, SESSION, Measure
from pytest_goleak.report.json_report import VERSION
from pytest_goleak.report.session import SessionRecorder, whole_lines

# How much more than in the other run a test may grow before it is shown as a change, by measure (a change past a
# --goleak-compare-fail threshold is shown whatever its size). Counts of things a test leaks are exact between runs
# of a clean suite; threads moved by 1. The heap of a clean test moved by up to 7 KiB in the example service, but by
# up to 0.9 MiB in prometheus-pushgateway, whose background work holds and frees an 812 KiB buffer in whichever test
# it falls; off-heap memory moved by up to 2.2 MiB (example) and 3.3 MiB (pushgateway). Figures: docs/ci.md.
NOISE: Mapping[str, int] = {
    "goroutines": 0,
    "heap": 1 << 20,
    "fds": 0,
    "children": 0,
    "threads": 2,
    "tmpfiles": 0,
    "offheap": 4 << 20,
}
# The session's growth is steadier than any one test's: it moved by 15 KiB of heap (example service) and 6 KiB
# (pushgateway) between runs, off-heap memory by 2.1 MiB. A small leak in every test adds up here first.
SESSION_NOISE: Mapping[str, int] = {"goroutines": 0, "heap": 256 << 10, "fds": 0, "offheap": 4 << 20}
SPEC_EXAMPLE = "heap:+256KiB,goroutines:+0,session_heap:+4MiB"
MAX_SHOWN = 20


@dataclass(frozen=True)
class OtherRun:
    """The run compared against: each test's growth per measure, and the session's, merged over its files."""

    files: tuple[Path, ...]
    tests: Mapping[str, Mapping[str, int | None]]
    session: Mapping[str, int] = field(default_factory=dict)
    session_tests: int = 0
    services: int = 1  # service runs the session's growth is summed over

    @property
    def name(self) -> str:
        names = [path.name for path in self.files]
        return names[0] if len(names) == 1 else f"{names[0]} and {len(names) - 1} more"


def read_document(path: Path, what: str = "--goleak-compare") -> dict[str, Any]:
    """One ``--goleak-json`` document, checked; :class:`ConfigError` naming the file and the fix otherwise."""
    fix = "point it at a file written by --goleak-json"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{what}: {path} does not exist; {fix} (main's run, say)") from None
    except OSError as exc:
        raise ConfigError(f"{what}: cannot read {path} ({exc.strerror}); {fix}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{what}: {path} is not JSON ({exc}); {fix}") from None
    if not isinstance(data, dict) or data.get("tool") != "pytest-goleak" or not isinstance(data.get("tests"), list):
        raise ConfigError(f"{what}: {path} is not a pytest-goleak JSON report; {fix}")
    if data.get("version") != VERSION:
        raise ConfigError(
            f"{what}: {path} is version {data.get('version')!r} of the JSON report, this plugin reads version "
            f"{VERSION}; write it again with this version's --goleak-json"
        )
    for test in data["tests"]:
        if (
            not isinstance(test, dict)
            or not isinstance(test.get("test"), str)
            or not isinstance(test.get("measures"), dict)
        ):
            raise ConfigError(f"{what}: {path} has a test entry without 'test' and 'measures'; {fix}")
    return data


def merge_documents(documents: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Shards' documents as one run's: the tests of all (a test in two, the later file's), the sessions summed."""
    tests: dict[str, dict[str, Any]] = {}
    grew: dict[str, int] = {}
    count = services = 0
    backend: object = None
    for data in documents:
        backend = data.get("backend", backend)  # every shard of one run reads alike
        for test in data["tests"]:
            tests[test["test"]] = test
        session = data.get("session")
        if isinstance(session, dict):
            count += int(session.get("tests", 0))
            services += int(session.get("services", 0))
            for name, value in dict(session.get("grew", {})).items():
                if isinstance(value, int):
                    grew[name] = grew.get(name, 0) + value
    merged = {
        "version": VERSION,
        "tool": "pytest-goleak",
        "tests": [tests[name] for name in sorted(tests)],
        "session": {"tests": count, "services": services, "grew": grew},
    }
    if backend is not None:
        merged["backend"] = backend
    return merged


def load_other(paths: Iterable[Path]) -> OtherRun:
    """The other run from one file or several (shards); raises :class:`ConfigError` on a missing or bad one."""
    files = tuple(paths)
    merged = merge_documents([read_document(path) for path in files])
    tests = {}
    for test in merged["tests"]:
        measures = test["measures"]
        tests[test["test"]] = {m.name: _delta(measures.get(m.name)) for m in MEASURES}
    session = merged["session"]
    return OtherRun(files, tests, dict(session["grew"]), int(session["tests"]), int(session["services"]))


def _delta(measure: object) -> int | None:
    if isinstance(measure, dict):
        value = measure.get("delta")
        return value if isinstance(value, int) and not isinstance(value, bool) else None
    return None


@dataclass(frozen=True)
class Threshold:
    """How much more than in the other run fails: a test's growth, or the session's (``session_NAME``)."""

    measure: Measure
    amount: int
    session: bool = False

    @property
    def key(self) -> str:
        return f"session_{self.measure.name}" if self.session else self.measure.name


def parse_fail(value: object, where: str) -> tuple[Threshold, ...]:
    """``heap:+256KiB,goroutines:+0,session_heap:+4MiB`` (one per line in the ini works too)."""
    if value in (None, "", [], ()):
        return ()
    raw = value if isinstance(value, (list, tuple)) else [value]
    items = [part.strip() for text in raw for part in str(text).replace("\n", ",").split(",") if part.strip()]
    names = ", ".join([m.name for m in MEASURES] + [f"session_{m.name}" for m in SESSION])
    found: dict[str, Threshold] = {}
    for item in items:
        name, colon, amount = item.partition(":")
        name, amount = name.strip(), amount.strip().removeprefix("+").strip()
        session = name.startswith("session_")
        measure = BY_NAME.get(name.removeprefix("session_"))
        if not colon or not amount:
            raise ConfigError(f"{where}: {item!r} is not MEASURE:+AMOUNT; write e.g. {SPEC_EXAMPLE!r}")
        if measure is None or (session and measure not in SESSION):
            raise ConfigError(f"{where}: {name!r} is not a measure; use one of {names}, e.g. {SPEC_EXAMPLE!r}")
        if amount.endswith("%"):
            raise ConfigError(
                f"{where}: {item!r} is a percentage; a clean test grows by about nothing, so give an amount, "
                f"e.g. {SPEC_EXAMPLE!r}"
            )
        threshold = Threshold(measure, measure.parse(amount, f"{where} ({name})"), session)
        found[threshold.key] = threshold
    return tuple(found.values())


@dataclass(frozen=True)
class Change:
    """A test (or the session, ``test`` None) that grew a measure more here than in the other run."""

    test: str | None
    measure: Measure
    now: int
    then: int
    allowed: int | None = None  # the --goleak-compare-fail threshold it breaks, if any

    @property
    def more(self) -> int:
        return self.now - self.then

    @property
    def fails(self) -> bool:
        return self.allowed is not None

    def phrase(self, other: str) -> str:
        """``heap +300.0 KiB here, +12.0 KiB in main.json (+288.0 KiB more; allowed +256.0 KiB)``."""
        m = self.measure
        said = f"{m.label or m.name} {m.signed(self.now)} here, {m.signed(self.then)} in {other} ({m.signed(self.more)}"
        return said + (f" more; allowed {m.signed(self.allowed)})" if self.allowed is not None else " more)")


@dataclass(frozen=True)
class Comparison:
    other: OtherRun
    changes: tuple[Change, ...]  # per test, in test order
    session: tuple[Change, ...]
    new: tuple[str, ...]
    gone: tuple[str, ...]
    tests: int  # tests of this run compared (checked in both)
    session_tests: int
    services: int = 1  # this run's service runs; the sessions are compared only when both ran as many

    @property
    def failing(self) -> tuple[Change, ...]:
        return tuple(change for change in (*self.changes, *self.session) if change.fails)

    @property
    def failing_tests(self) -> list[str]:
        return sorted({change.test for change in self.failing if change.test is not None})

    def headline(self) -> str:
        grew = len({change.test for change in self.changes})
        parts = [f"{grew} test{'s' if grew != 1 else ''} grew more than in {self.other.name}"]
        if self.failing:
            parts.append(f"{len(self.failing)} past --goleak-compare-fail")
        if self.new:
            parts.append(f"{len(self.new)} new")
        if self.gone:
            parts.append(f"{len(self.gone)} not run here")
        return f"compared {self.tests} tests with {self.other.name}: " + ", ".join(parts)

    def lines(self, width: int = 80) -> list[str]:
        """The terminal summary's comparison lines; failing changes first, each naming its test whole."""
        other = self.other.name
        lines = [self.headline()]
        ordered = sorted(self.changes, key=lambda c: (not c.fails, c.test or ""))
        for change in ordered[:MAX_SHOWN]:
            tag = "COMPARE FAIL" if change.fails else "GREW"
            lines += whole_lines(f"{tag} {change.test}", change.phrase(other), width)
        if len(ordered) > MAX_SHOWN:
            lines.append(f"... and {len(ordered) - MAX_SHOWN} more (the --goleak-md summary lists them all)")
        if self.services != self.other.services:
            lines.append(
                f"session not compared: the service ran {_times(self.services)} here and {_times(self.other.services)} "
                f"in {other} (restarts, xdist workers or shards each warm up their own)"
            )
        for change in self.session:
            tag = "COMPARE FAIL" if change.fails else "GREW"
            over = f", over {self.session_tests} tests here and {self.other.session_tests} there"
            lines += whole_lines(f"{tag} session", change.phrase(other) + over, width)
        if self.new:
            lines.append(f"new (not in {other}): {_names(self.new)}")
        if self.gone:
            lines.append(f"not run here (in {other}): {_names(self.gone)}")
        return lines


def _times(count: int) -> str:
    return f"{count} time{'s' if count != 1 else ''}"


def _names(tests: Sequence[str], shown: int = 5) -> str:
    return ", ".join(tests[:shown]) + (f" and {len(tests) - shown} more" if len(tests) > shown else "")


def compare(
    recorder: SessionRecorder,
    other: OtherRun,
    thresholds: Sequence[Threshold] = (),
    noise: Mapping[str, int] = NOISE,
    session_noise: Mapping[str, int] = SESSION_NOISE,
) -> Comparison:
    """This run's tests and session against ``other``'s; a change fails past its threshold."""
    per_test = {t.measure.name: t.amount for t in thresholds if not t.session}
    per_session = {t.measure.name: t.amount for t in thresholds if t.session}
    latest = {point.nodeid: point for point in recorder.points}  # a rerun test: its last run
    changes = []
    for test in sorted(latest):
        then_all = other.tests.get(test)
        if then_all is None:
            continue
        for measure in MEASURES:
            change = _change(test, measure, latest[test].grew.get(measure.name), then_all.get(measure.name))
            if change is not None:
                changes.append(_judged(change, per_test))
    session_changes = []
    growth: dict[str, int] = {}
    runs = recorder.growth()
    for grown in runs.values():
        for name, value in grown.items():
            growth[name] = growth.get(name, 0) + value
    for measure in SESSION if len(runs) == other.services else ():
        change = _change(None, measure, growth.get(measure.name), other.session.get(measure.name))
        if change is not None:
            session_changes.append(_judged(change, per_session))
    return Comparison(
        other,
        tuple(c for c in changes if c.fails or c.more > noise.get(c.measure.name, 0)),
        tuple(c for c in session_changes if c.fails or c.more > session_noise.get(c.measure.name, 0)),
        tuple(sorted(set(latest) - set(other.tests))),
        tuple(sorted(set(other.tests) - set(latest))),
        len(set(latest) & set(other.tests)),
        len(recorder.points),
        len(runs),
    )


def _change(test: str | None, measure: Measure, now: int | None, then: int | None) -> Change | None:
    if now is None or then is None or now <= then:
        return None
    return Change(test, measure, now, then)


def _judged(change: Change, limits: Mapping[str, int]) -> Change:
    limit = limits.get(change.measure.name)
    if limit is not None and change.more > limit:
        return Change(change.test, change.measure, change.now, change.then, limit)
    return change
