"""The benchmark's timing plugin takes the plugin's own time, and only it (benchmarks/goleak_bench_timing.py)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Generator
from pathlib import Path

import pytest
from benchreport import load_timing

ROOT = Path(__file__).resolve().parents[2]


def test_a_timed_hook_wrapper_passes_the_result_through_and_times_both_halves(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    timing = load_timing(monkeypatch)
    seen: list[object] = []

    def wrapper(item: object) -> Generator[None, object, object]:
        seen.append(item)
        result = yield
        return f"{result}, wrapped"

    class Call:
        when = "call"

    timing._OWN[:] = [0.0, 0.0, 0.0]
    halves = timing.timed_hook(wrapper, wrapper=True)(Call())
    next(halves)
    with pytest.raises(StopIteration) as stop:
        halves.send("report")
    assert stop.value.value == "report, wrapped" and len(seen) == 1
    assert timing._OWN[timing._OWN_AFTER] > 0 and timing._OWN[timing._OWN_BEFORE] == 0


def test_a_timed_hook_wrapper_lets_the_wrapped_one_handle_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    timing = load_timing(monkeypatch)

    def wrapper() -> Generator[None, object, object]:
        try:
            yield
        except ValueError:
            return "handled"
        return "not reached"

    halves = timing.timed_hook(wrapper, wrapper=True)()
    next(halves)
    with pytest.raises(StopIteration) as stop:
        halves.throw(ValueError("from the inner implementations"))
    assert stop.value.value == "handled"
    assert timing._OWN[timing._OWN_BEFORE] > 0  # no argument says a phase: the setup hook's


def test_the_after_phase_is_the_plugin_fixtures_teardown_not_the_others(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A stand-in for the plugin's fixture, and another fixture whose slow teardown pytest runs first: only the
    # first's teardown is the plugin's after phase.
    pytester.makeconftest(
        """
        import time
        import pytest

        @pytest.fixture(name="pytest_goleak")
        def stand_in():
            time.sleep(0.02)
            yield
            time.sleep(0.05)

        @pytest.fixture
        def other():
            yield
            time.sleep(0.5)
        """
    )
    pytester.makepyfile("def test_one(other, pytest_goleak):\n    pass\n")
    pytester.makeini(f"[pytest]\ngoleak_binary = {sys.executable}\n")  # found, never started: nothing asks for it
    out = tmp_path / "out.jsonl"
    monkeypatch.setenv("GOLEAK_BENCH_OUT", str(out))
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([str(ROOT / "benchmarks"), str(ROOT), os.environ.get("PYTHONPATH", "")])
    )
    result = pytester.runpytest_subprocess("-p", "goleak_bench_timing", "-p", "goleak", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    records = [json.loads(line) for line in out.read_text().splitlines()]
    item = next(record for record in records if record["type"] == "item")
    assert 20 <= item["py_before_ms"] < 500
    assert 50 <= item["py_after_ms"] < 500, item["py_after_ms"]
