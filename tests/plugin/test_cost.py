"""What a clean test costs, counted in calls rather than timed: nothing meant for a failure's evidence runs.

The suite runs in this process (``runpytest_inprocess``) under ``cProfile``, which counts every call of a
function wherever it was imported from; timings are the benchmark's job (``benchmarks/``).
"""

from __future__ import annotations

import cProfile
import pstats
from collections.abc import Callable
from pathlib import Path

import pytest

import pytest_goleak

PACKAGE = Path(pytest_goleak.__file__).resolve().parent

# Parsers and fetches that only a failure's evidence (or its report) needs.
EVIDENCE_ONLY = {
    ("read/procfs.py", "parse_mappings"),  # /proc/PID/maps: kept as text, parsed for grown mappings
    ("read/procfs.py", "read_mappings"),
    ("read/procfs.py", "grown_mappings"),
    ("read/procfs.py", "describe_fds"),
    ("read/pprof.py", "parse_goroutine_dump"),  # the full debug=2 dump
    ("read/pprof.py", "goroutine_dump"),
    ("read/pprof.py", "proving_dump"),
    ("read/pprof.py", "parse_heap_sites"),  # allocation sites: the heap's growth needs only its totals
    ("judge/diff.py", "heap_growth"),
    ("judge/evidence.py", "gather_evidence"),
    ("report/failure.py", "render"),
    ("report/hints.py", "ignore_help"),
}

SUITE = """
import pytest

@pytest.fixture
def touched(pytest_goleak):
    # A fixture that calls the service before each test: no gap is untouched, every before-reading is fresh.
    pytest_goleak.client.get("/healthz")

@pytest.mark.parametrize("n", range(6))
def test_in_a_row(pytest_goleak, n):
    assert pytest_goleak.client.get("/api/products").status_code == 200

@pytest.mark.parametrize("n", range(4))
def test_after_a_touched_gap(pytest_goleak, touched, n):
    assert pytest_goleak.client.get("/api/products").status_code == 200

@pytest.mark.goleak(ignore_fds=["*.log"])
def test_with_fd_patterns(pytest_goleak):
    assert pytest_goleak.client.get("/api/products").status_code == 200
"""


def _profiled(pytester: pytest.Pytester) -> tuple[pytest.RunResult, pstats.Stats]:
    """The nested suite run in this process under cProfile, and what it called."""
    profile = cProfile.Profile()
    profile.enable()
    try:
        result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    finally:
        profile.disable()
    return result, pstats.Stats(profile)


def _called(stats: pstats.Stats, wanted: set[tuple[str, str]]) -> dict[tuple[str, str], int]:
    calls = {}
    for (file, _, name), (_, ncalls, *_rest) in stats.stats.items():  # type: ignore[attr-defined]
        path = Path(file)
        if path.is_relative_to(PACKAGE):
            key = (path.relative_to(PACKAGE).as_posix(), name)
            if key in wanted:
                calls[key] = ncalls
    return calls


def test_clean_tests_parse_nothing_meant_for_evidence(
    pytester: pytest.Pytester, write_ini: Callable[..., None]
) -> None:
    write_ini()
    pytester.makepyfile(test_clean=SUITE)
    result, stats = _profiled(pytester)
    result.assert_outcomes(passed=11)
    called = _called(stats, EVIDENCE_ONLY | {("judge/settle.py", "settle")})
    assert called.pop(("judge/settle.py", "settle"), 0) == 11  # the check ran, in this process, for every test
    assert called == {}, f"clean tests called what only a failure needs: {called}"


def test_the_count_sees_evidence_when_a_test_leaks(pytester: pytest.Pytester, write_ini: Callable[..., None]) -> None:
    # The same count on a failing test: what the first test must not find, this one must.
    write_ini()
    pytester.makepyfile("def test_leaks(pytest_goleak):\n    pytest_goleak.client.get('/leaky/chan-send')\n")
    result, stats = _profiled(pytester)
    result.assert_outcomes(passed=1, errors=1)
    called = _called(stats, EVIDENCE_ONLY)
    assert {("judge/evidence.py", "gather_evidence"), ("read/pprof.py", "parse_goroutine_dump")} <= set(called)
