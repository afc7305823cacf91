"""CI-native output through nested pytest runs of the example service.

GitHub annotations, the Markdown summary, comparing with another run's JSON
(shards merged or not), the strict baseline and the ``-q`` summary on a narrow
terminal, each as a user's CI runs it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from ci_suite import LEAKY, LEAKY_LINE, write_suite
from markdown_tables import as_github_renders, tables


@pytest.fixture
def suite(
    pytester: pytest.Pytester, write_ini: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> pytest.Pytester:
    write_suite(pytester, write_ini, monkeypatch)
    return pytester


def _commands(result: pytest.RunResult) -> list[str]:
    return [line for line in result.outlines if line.startswith("::")]


def test_a_leak_is_annotated_at_its_test_under_github_actions(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEAK", "1")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_WORKSPACE", str(suite.path.parent))
    result = suite.runpytest()
    result.assert_outcomes(passed=3, errors=1)  # the leak: an error at its teardown
    assert _commands(result) == [
        f"::error file={suite.path.name}/test_suite.py,line={LEAKY_LINE},title=goleak%3A 1 goroutine leaked (budget 0)"
        f"::{LEAKY}%0A1 x main.(*PriceService).fetchQuote"
    ]
    assert _commands(suite.runpytest("--goleak-annotations=off")) == []


def test_annotations_are_off_outside_github_unless_asked(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEAK", "1")
    assert _commands(suite.runpytest()) == []
    (line,) = _commands(suite.runpytest("--goleak-annotations=github"))
    assert line.startswith(f"::error file=test_suite.py,line={LEAKY_LINE},")
    result = suite.runpytest("--goleak-annotations=maybe")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--goleak-annotations: 'maybe' is not auto, github or off*"])


def test_drift_past_its_budget_is_annotated(suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CACHE_KB", "700")
    result = suite.runpytest("--goleak-annotations=github", "--goleak-session-heap=256KiB")
    result.assert_outcomes(passed=3)
    (line,) = _commands(result)
    assert line.startswith("::error title=goleak%3A session drift past its budget::example_service pid ")
    assert "heap grew +" in line and result.ret == pytest.ExitCode.TESTS_FAILED


def _markdown_tables(path: Path) -> list[list[list[str]]]:
    return tables(as_github_renders(path.read_text()))


def test_the_markdown_summary_renders_the_leaking_tests(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEAK", "1")
    result = suite.runpytest("--goleak-md=out/summary.md")
    result.stdout.fnmatch_lines(["markdown: */out/summary.md"])
    leaking, largest, session = _markdown_tables(suite.path / "out" / "summary.md")
    assert leaking[1] == [LEAKY, "goleak: 1 goroutine leaked (budget 0)", "1 x main.(*PriceService).fetchQuote"]
    assert ["goroutines", "+1", LEAKY] in largest
    assert session[1][1] == "3"


def test_the_job_summary_is_appended_to(suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    summary = suite.path / "step_summary.md"
    summary.write_text("# Earlier step output\n\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    suite.runpytest("--goleak-md=github").assert_outcomes(passed=3)
    text = summary.read_text()
    assert text.startswith("# Earlier step output\n\n## pytest-goleak: no leaks\n")
    monkeypatch.delenv("GITHUB_STEP_SUMMARY")
    result = suite.runpytest("--goleak-md=github")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--goleak-md = github appends to $GITHUB_STEP_SUMMARY, which is not set*"])


def test_a_test_that_grows_more_than_on_main_is_shown_and_fails_past_the_threshold(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    suite.runpytest("--goleak-json=main.json").assert_outcomes(passed=3)
    monkeypatch.setenv("CACHE_KB", "600")  # under the 1 MiB budget: every test passes
    result = suite.runpytest(
        "--goleak-compare=main.json", "--goleak-compare-fail=heap:+256KiB,goroutines:+1", "--goleak-md=s.md"
    )
    result.assert_outcomes(passed=3)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "compared 3 tests with main.json: 1 test grew more than in main.json, 1 past --goleak-compare-fail",
            "COMPARE FAIL test_suite.py::test_cache: heap +* KiB here, * in main.json (+* more; allowed +256.0 KiB)",
            "GREW session: heap +* KiB here, * in main.json (+* more), over 3 tests here and 3 there",
        ]
    )
    rows = _markdown_tables(suite.path / "s.md")[-1]
    (row,) = (row for row in rows if row[0] == "test_suite.py::test_cache")
    assert row[1] == "heap" and row[-1] == "fails (allowed +256.0 KiB)"
    # Without --goleak-compare-fail nothing fails; 600 KiB in one test is within a test's noise, not the session's.
    shown = suite.runpytest("--goleak-compare=main.json")
    shown.stdout.fnmatch_lines(
        ["compared 3 tests with main.json: 0 tests grew more than in main.json", "GREW session: heap +*"]
    )
    assert shown.ret == pytest.ExitCode.OK
    # Past a test's noise (1 MiB of heap), the test is named.
    monkeypatch.setenv("CACHE_KB", "2048")
    grew = suite.runpytest("--goleak-compare=main.json", "--goleak-heap=4MiB")
    grew.stdout.fnmatch_lines(["GREW test_suite.py::test_cache: heap +2.* MiB here, * in main.json (+2.* MiB more)"])
    assert grew.ret == pytest.ExitCode.OK


def test_new_and_gone_tests_are_said_as_such(suite: pytest.Pytester) -> None:
    suite.runpytest("--goleak-json=main.json", "-k", "not clean").assert_outcomes(passed=2, deselected=1)
    result = suite.runpytest("--goleak-compare=main.json", "-k", "not cache")
    result.stdout.fnmatch_lines(
        [
            "compared 1 tests with main.json: 0 tests grew more than in main.json, 1 new, 1 not run here",
            "new (not in main.json): test_suite.py::test_clean",
            "not run here (in main.json): test_suite.py::test_cache",
        ]
    )
    assert result.ret == pytest.ExitCode.OK


def test_shards_merge_into_one_file_and_compare_as_one_run(suite: pytest.Pytester) -> None:
    suite.runpytest("--goleak-json=shard-1.json", "-k", "clean").assert_outcomes(passed=1, deselected=2)
    suite.runpytest("--goleak-json=shard-2.json", "-k", "not clean").assert_outcomes(passed=2, deselected=1)
    merged = subprocess.run(
        [sys.executable, "-m", "pytest_goleak.report.merge", "main.json", "shard-1.json", "shard-2.json"],
        cwd=suite.path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert merged.stdout.strip() == "merge: 3 tests from 2 files into main.json"
    data = json.loads((suite.path / "main.json").read_text())
    assert [test["test"] for test in data["tests"]] == ["test_suite.py::test_cache", "test_suite.py::test_clean", LEAKY]
    assert data["session"]["tests"] == 3 and data["session"]["services"] == 2
    # One run of the service here, two (one per shard) there: the sessions are not compared.
    for against in (["--goleak-compare=main.json"], ["--goleak-compare=shard-1.json", "--goleak-compare=shard-2.json"]):
        result = suite.runpytest(*against)
        result.stdout.fnmatch_lines(
            [
                "compared 3 tests with *: 0 tests grew more than in *",
                "session not compared: the service ran 1 time here and 2 times in *",
            ]
        )
        assert "not run here" not in result.stdout.str()


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--goleak-compare=nowhere.json"], "*--goleak-compare: */nowhere.json does not exist; point it at a file *"),
        (["--goleak-compare=garbled.json"], "*--goleak-compare: */garbled.json is not JSON (*); point it at a file *"),
        (["--goleak-compare-fail=heap:+1MiB"], "*--goleak-compare-fail needs a run to compare with: add *"),
        (["--goleak-compare=garbled.json", "--goleak-compare-fail=heap:1%"], "*'heap:1%' is a percentage*"),
        (["--goleak-baseline-strict"], "*goleak_baseline_strict needs a baseline: set goleak_baseline*"),
    ],
)
def test_bad_comparison_input_stops_the_run_with_one_line(suite: pytest.Pytester, args: list[str], said: str) -> None:
    (suite.path / "garbled.json").write_text('{"version": 1, "tool": "pytest-goleak", "tests": [')
    result = suite.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.errlines if "pytest-goleak:" in line]
    assert len(errors) == 1
    result.stderr.fnmatch_lines([said])


def test_a_strict_baseline_fails_on_a_stale_entry_and_an_update_removes_it(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEAK", "1")
    suite.runpytest("--goleak-baseline=b.json", "--goleak-update-baseline").assert_outcomes(passed=3)
    suite.runpytest("--goleak-baseline=b.json", "--goleak-baseline-strict").assert_outcomes(passed=3)
    monkeypatch.delenv("LEAK")  # fixed: the baseline's entry is now stale
    result = suite.runpytest("--goleak-baseline=b.json", "--goleak-baseline-strict", "--goleak-md=s.md")
    result.assert_outcomes(passed=3)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([f"STALE BASELINE b.json knows of leaks that did not happen (1): {LEAKY}; *"])
    assert f"STALE BASELINE b.json knows of leaks that did not happen (1): {LEAKY.replace('_', chr(92) + '_')}" in (
        (suite.path / "s.md").read_text()
    )
    assert suite.runpytest("--goleak-baseline=b.json").ret == pytest.ExitCode.OK  # not strict: a note only
    updated = suite.runpytest("--goleak-baseline=b.json", "--goleak-baseline-strict", "--goleak-update-baseline")
    assert updated.ret == pytest.ExitCode.OK
    assert json.loads((suite.path / "b.json").read_text())["tests"] == {}
    assert suite.runpytest("--goleak-baseline=b.json", "--goleak-baseline-strict").ret == pytest.ExitCode.OK


def test_quiet_on_a_narrow_terminal_keeps_the_test_id_and_headline_whole(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEAK", "1")
    monkeypatch.setenv("COLUMNS", "60")
    result = suite.runpytest("-q")
    out = result.outlines
    section = out[out.index(next(line for line in out if "= goleak =" in line)) :]
    assert section[1:4] == ["3 tests checked, 1 leaked", f"LEAK {LEAKY}:", "    1 goroutine leaked (budget 0)"]
    # pytest's own short summary cuts the same line at the terminal's edge.
    assert not any(line.startswith(f"FAILED {LEAKY} - goleak: 1 goroutine leaked (budget 0)") for line in out)
