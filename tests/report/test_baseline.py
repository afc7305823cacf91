"""The baseline (known leaks per test) and the session's JSON document, through pytester and the example service."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_goleak.judge.budget import Budget, Known
from pytest_goleak.judge.diff import Delta, GoroutineGrowth
from pytest_goleak.judge.measures import MEASURES
from pytest_goleak.report.baseline import Baseline

SUITE = """
import os

def test_known(pytest_goleak):
    for _ in range(int(os.environ.get("LEAKS", "1"))):
        assert pytest_goleak.client.get("/leaky/chan-send").status_code == 200

def test_fd(pytest_goleak):
    kind = "fixed" if os.environ.get("FIXED") else "leaky"
    assert pytest_goleak.client.get(f"/{kind}/open").status_code == 200
    if os.environ.get("NEW"):
        assert pytest_goleak.client.get("/leaky/ticker").status_code == 200

def test_clean(pytest_goleak):
    assert pytest_goleak.client.get("/fixed/chan-send").status_code == 200
"""


@pytest.fixture
def suite(pytester: pytest.Pytester, write_ini: Callable[..., None]) -> pytest.Pytester:
    write_ini("goleak_baseline = goleak-baseline.json\n")
    pytester.makepyfile(test_x=SUITE)
    return pytester


def _baseline(pytester: pytest.Pytester) -> dict[str, dict[str, object]]:
    data = json.loads((pytester.path / "goleak-baseline.json").read_text())
    assert data["version"] == 1
    tests: dict[str, dict[str, object]] = data["tests"]
    return tests


def test_update_records_the_leaks_and_fails_nothing(suite: pytest.Pytester) -> None:
    result = suite.runpytest("--goleak-update-baseline")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["goleak-baseline.json: recorded 2 tests with leaks, removed 0 that no longer leak"])
    tests = _baseline(suite)
    assert list(tests) == ["test_x.py::test_fd", "test_x.py::test_known"]  # sorted, diff-friendly
    assert tests["test_x.py::test_fd"] == {"fds": 1}
    assert tests["test_x.py::test_known"] == {"goroutines": {"main.(*PriceService).fetchQuote": 1}}
    text = (suite.path / "goleak-baseline.json").read_text()
    assert text.endswith("}\n") and '\n  "tests": {\n' in text


def test_known_leaks_pass_and_are_counted(suite: pytest.Pytester) -> None:
    suite.runpytest("--goleak-update-baseline").assert_outcomes(passed=3)
    result = suite.runpytest()
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["3 tests checked, 0 leaked", "2 tests with known leaks from goleak-baseline.json"])
    # Without the baseline the same run fails: the baseline is what lets it pass.
    suite.runpytest("--goleak-baseline=").assert_outcomes(passed=3, errors=2)


def test_more_of_a_known_identity_fails_with_what_is_new(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    suite.runpytest("--goleak-update-baseline").assert_outcomes(passed=3)
    monkeypatch.setenv("LEAKS", "3")
    result = suite.runpytest()
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(
        [
            "goleak: 2 goroutines leaked (budget 0)",
            "",
            "beyond the baseline, which knows of 1 x main.(*PriceService).fetchQuote for this test:",
            "  main.(*PriceService).fetchQuote: 3 leaked, 1 known",
            "",
            "leaked goroutines (2 in 1 group):",
        ]
    )


def test_a_new_identity_in_a_known_test_fails(suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    suite.runpytest("--goleak-update-baseline").assert_outcomes(passed=3)
    monkeypatch.setenv("NEW", "1")
    result = suite.runpytest()
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(
        [
            "goleak: 1 goroutine leaked (budget 0)",
            "beyond the baseline, which knows of fds +1 for this test:",
            "  main.(*Session).heartbeatLeaky: a new identity",
        ]
    )
    assert "test_x.py::test_fd - Failed: goleak: 1 goroutine leaked (budget 0)" in result.stdout.str()


def test_gone_entries_are_listed_and_an_update_removes_only_them(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    suite.runpytest("--goleak-update-baseline").assert_outcomes(passed=3)
    monkeypatch.setenv("FIXED", "1")
    result = suite.runpytest()
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        [
            "1 test with known leaks from goleak-baseline.json",
            "1 test in goleak-baseline.json no longer leaks: test_x.py::test_fd (--goleak-update-baseline removes*",
        ]
    )
    # A partial update touches only the tests that ran.
    suite.runpytest("--goleak-update-baseline", "-k", "test_clean").assert_outcomes(passed=1, deselected=2)
    assert set(_baseline(suite)) == {"test_x.py::test_fd", "test_x.py::test_known"}
    result = suite.runpytest("--goleak-update-baseline")
    result.stdout.fnmatch_lines(["goleak-baseline.json: recorded 1 test with leaks, removed 1 that no longer leak"])
    assert set(_baseline(suite)) == {"test_x.py::test_known"}


def test_baseline_and_json_under_xdist(suite: pytest.Pytester) -> None:
    suite.runpytest("-n", "2", "--goleak-update-baseline").assert_outcomes(passed=3)
    assert set(_baseline(suite)) == {"test_x.py::test_fd", "test_x.py::test_known"}
    out = suite.path / "readings.json"
    result = suite.runpytest("-n", "2", f"--goleak-json={out}")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["2 tests with known leaks from goleak-baseline.json"])
    document = json.loads(out.read_text())
    assert [t["test"] for t in document["tests"]] == [
        "test_x.py::test_clean",
        "test_x.py::test_fd",
        "test_x.py::test_known",
    ]
    assert [t["known"] for t in document["tests"]] == [False, True, True]


def test_json_holds_each_test_with_its_measures(pytester: pytest.Pytester, write_ini: Callable[..., None]) -> None:
    write_ini()
    pytester.makepyfile(test_x=SUITE)
    out = pytester.path / "out" / "readings.json"
    result = pytester.runpytest(f"--goleak-json={out}")
    result.assert_outcomes(passed=3, errors=2)
    result.stdout.fnmatch_lines([f"json: {out}"])
    document = json.loads(out.read_text())
    assert (document["version"], document["tool"]) == (1, "pytest-goleak")
    tests = {t["test"]: t for t in document["tests"]}
    known = tests["test_x.py::test_known"]
    assert known["outcome"] == "failed"
    assert known["verdict"] == "goleak: 1 goroutine leaked (budget 0)"
    assert known["leaked_goroutines"] == {"main.(*PriceService).fetchQuote": 1}
    assert known["measures"]["goroutines"]["delta"] == 1
    fds = tests["test_x.py::test_fd"]["measures"]["fds"]
    assert fds["after"] - fds["before"] == fds["delta"] == 1
    clean = tests["test_x.py::test_clean"]
    assert (clean["outcome"], clean["verdict"], clean["leaked_goroutines"]) == ("passed", None, {})
    assert set(clean["measures"]) == {measure.name for measure in MEASURES}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "baseline */goleak-baseline.json does not exist; create it with --goleak-update-baseline*"),
        ("{not json", "baseline */goleak-baseline.json is not JSON*"),
        ('{"version": 7, "tests": {}}', "*is not a version 1 goleak baseline*"),
        ('{"version": 1, "tests": {"t": {"heap": "lots"}}}', "*the entry for 't' has 'heap': 'lots'*"),
    ],
)
def test_a_bad_baseline_is_one_usage_error(suite: pytest.Pytester, content: str | None, message: str) -> None:
    if content is not None:
        (suite.path / "goleak-baseline.json").write_text(content)
    result = suite.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: pytest-goleak: {message}"])
    assert len(result.stderr.str().strip().splitlines()) == 1


def test_update_needs_a_file(pytester: pytest.Pytester, write_ini: Callable[..., None], tmp_path: Path) -> None:
    write_ini()
    pytester.makepyfile(test_x=SUITE)
    result = pytester.runpytest("--goleak-update-baseline")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: pytest-goleak: --goleak-update-baseline needs a file to write*"])


def test_beyond_subtracts_what_is_known_per_identity_and_per_measure() -> None:
    delta = Delta(
        grew={"goroutines": 4, "heap": 5 << 20, "fds": 1, "children": None},
        goroutines=(GoroutineGrowth("main.worker", 1, 4, ()), GoroutineGrowth("main.new", 0, 1, ())),
    )
    known = Known({"heap": 3 << 20, "fds": 1}, {"main.worker": 2, "main.gone": 5})
    judged = delta.beyond(known)
    assert [(g.identity, g.leaked) for g in judged.goroutines] == [("main.worker", 1), ("main.new", 1)]
    assert dict(judged.grew) == {"goroutines": 2, "heap": 2 << 20, "fds": 0, "children": None}
    budget = Budget(known=known)
    assert [m.name for m in delta.exceeded(budget)] == ["goroutines", "heap"]
    assert delta.over(budget) == ["2 goroutines leaked (budget 0)", "heap +2.0 MiB (budget 1.0 MiB)"]
    assert delta.beyond(None) is delta


def test_an_update_rewrites_the_tests_that_ran_and_keeps_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    path.write_text(json.dumps({"version": 1, "tests": {"t::a": {"fds": 1}, "t::b": {"fds": 2}, "t::c": {"fds": 3}}}))
    baseline = Baseline.load(path, missing_ok=False)
    assert baseline.known("t::b") == Known({"fds": 2}, {})
    baseline.write({"t::a": None, "t::b": {"goroutines": {"main.w": 1}}, "t::d": {"heap": 4096}})
    written = json.loads(path.read_text())["tests"]
    assert written == {"t::b": {"goroutines": {"main.w": 1}}, "t::c": {"fds": 3}, "t::d": {"heap": 4096}}
    assert list(written) == sorted(written)
