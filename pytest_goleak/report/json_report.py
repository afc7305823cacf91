"""``--goleak-json``: the session's readings as one JSON document, for dashboards and comparing CI runs.

Written once per session where the reports are gathered (the xdist controller
under xdist), so it covers every worker. Schema (``version`` changes with any
change that is not an addition)::

    {"version": 1, "tool": "pytest-goleak",
     "tests": [{"test": "tests/test_api.py::test_upload", "outcome": "failed",
                "service": "api pid 4242",
                "measures": {"goroutines": {"before": 12, "after": 14, "delta": 2}, "heap": {...}, ...},
                "verdict": "goleak: 2 goroutines leaked (budget 0)",
                "known": false,
                "leaked_goroutines": {"main.(*Uploader).spool": 2}}],
     "session": {"tests": 120, "services": 2, "grew": {"goroutines": 0, "heap": 1048576, ...}},
     "backend": {"name": "portable", "reads": "psutil's portable calls", "not_measured": [],
                 "limits": {"fds": "fds that are neither a file nor a socket ... are counted, not named", ...}}}

Tests are sorted by id. A measure not read has null before, after and delta;
``verdict`` is null for a test within budget; ``known`` says the test leaks
only what the baseline knows of. ``session`` is how much the service grew
over the session, from its first reading to its last, summed over its runs
(a restart or an xdist worker is a run of its own); a measure no run read
is absent. ``backend`` is how processes were read: a measure in ``not_measured`` is null
throughout because this platform cannot read it, never because it did not grow; ``limits``
says what a measure's report cannot show there. ``--goleak-compare`` reads these documents back (``compare.py``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pytest_goleak.judge.measures import MEASURES, not_measured
from pytest_goleak.read.backend import PROC, Backend
from pytest_goleak.report.session import Point

VERSION = 1


def document(
    points: Iterable[Point],
    baseline: Mapping[str, object] = {},
    growth: Mapping[str, Mapping[str, int]] = {},
    backend: Backend = PROC,
) -> dict[str, Any]:
    """The session's document; ``baseline`` holds the test ids a baseline knows of, ``growth`` each run's growth."""
    tests = []
    points = list(points)
    for point in sorted(points, key=lambda p: p.nodeid):
        measures = {
            m.name: {
                "before": point.before.get(m.name),
                "after": point.after.get(m.name),
                "delta": point.grew.get(m.name),
            }
            for m in MEASURES
        }
        tests.append(
            {
                "test": point.nodeid,
                "outcome": point.outcome,
                "service": point.service,
                "measures": measures,
                "verdict": point.failure,
                "known": point.leaks is not None and point.failure is None and point.nodeid in baseline,
                "leaked_goroutines": dict(sorted(point.leaked_goroutines.items())),
            }
        )
    return {
        "version": VERSION,
        "tool": "pytest-goleak",
        "tests": tests,
        "session": session_block(points, growth),
        "backend": backend_block(backend),
    }


def backend_block(backend: Backend) -> dict[str, Any]:
    """How the run read its processes, and what each measure could not do there."""
    return {
        "name": backend.name,
        "reads": backend.source,
        "not_measured": [m.name for m in not_measured(backend.lacks)],
        "limits": {m.name: m.availability(backend.lacks) for m in MEASURES if m.availability(backend.lacks)},
    }


def session_block(points: Iterable[Point], growth: Mapping[str, Mapping[str, int]]) -> dict[str, Any]:
    """The session's size and its growth per measure, summed over the service's runs."""
    grew: dict[str, int] = {}
    for measures in growth.values():
        for name, value in measures.items():
            grew[name] = grew.get(name, 0) + value
    return {"tests": len(list(points)), "services": len(growth), "grew": grew}


def write_json(
    path: Path,
    points: Iterable[Point],
    baseline: Mapping[str, object] = {},
    growth: Mapping[str, Mapping[str, int]] = {},
    backend: Backend = PROC,
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document(points, baseline, growth, backend), indent=2) + "\n", encoding="utf-8")
