"""The start-up wait and the first test's hint, against a Go service that goes on starting after pprof answers.

``tests/goapps/warming`` answers pprof at once, then starts a worker (a
goroutine holding an fd) every 100 ms for ``-for``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

# The first test lasts long enough that, without the wait, workers start during it.
FIRST_TEST = """
import time

def test_first(pytest_goleak):
    assert pytest_goleak.client.get("/ping").text == "pong"
    time.sleep({sleep})
"""


@pytest.fixture
def warming(pytester: pytest.Pytester, go_build: Callable[[str], Path]) -> Callable[..., pytest.RunResult]:
    """Run one first test against ``warming`` with ``args`` and extra ini lines."""
    binary = go_build("tests/goapps/warming")

    def run(args: str, extra: str = "", sleep: float = 0.3) -> pytest.RunResult:
        pytester.makeini(
            f"[pytest]\ngoleak_binary = {binary}\ngoleak_args = -addr {{addr}} {args}\ngoleak_settle = 0.3\n{extra}"
        )
        pytester.makepyfile(FIRST_TEST.format(sleep=sleep))
        return pytester.runpytest()

    return run


@pytest.mark.parametrize("quiet", ["", "goleak_startup_quiet = 0\n"], ids=["default", "off"])
def test_the_first_test_is_not_charged_with_start_up(warming: Callable[..., pytest.RunResult], quiet: str) -> None:
    result = warming("-for 1.5s", quiet)
    if not quiet:  # the default waits until the workers stop coming
        result.assert_outcomes(passed=1)
        return
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*goleak: * goroutines leaked (budget 0), fds +* (budget 0)*",
            "*x * main.warmWorker*",
            "warming had just started (0.*s before this test): this was the first test after its start,",
            "so some of this growth may be start-up work still going on, not the test's.",
            "  The start-up wait is off (goleak_startup_quiet = 0).",
            "  Give the service a warm-up: a session-scoped autouse fixture that waits until its start-up is over",
            '  (see "Waiting out start-up" in pytest-goleak\'s README).',
        ]
    )


def test_the_hint_names_a_readiness_path_that_answers(warming: Callable[..., pytest.RunResult]) -> None:
    # The first test outlasts the warm-up, so /-/ready answers 200 when its failure is reported.
    result = warming("-for 0.6s -ready-path /-/ready", "goleak_startup_quiet = 0\n", sleep=0.9)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "  /-/ready answers 2xx. If it does so only once start-up is over, add this line to the ini file",
            "  and tests wait for it:",
            "      goleak_ready_url = http://{addr}/-/ready",
        ]
    )
    result.stdout.no_fnmatch_line("*Give the service a warm-up*")
    # The line it names is the fix.
    fixed = warming(
        "-for 0.6s -ready-path /-/ready", "goleak_startup_quiet = 0\ngoleak_ready_url = http://{addr}/-/ready\n"
    )
    fixed.assert_outcomes(passed=1)


def test_a_service_that_never_settles_runs_its_first_test_anyway(warming: Callable[..., pytest.RunResult]) -> None:
    result = warming("-for 60s", "goleak_start_timeout = 1.5\n", sleep=0.2)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*goleak: * goroutines leaked (budget 0)*",
            "warming had just started (1.*s before this test): this was the first test after its start,",
            "  It never became quiet: still changing when goleak_start_timeout (1.5s) ran out:",
            "  main.warmWorker +*, fds +*.",
        ]
    )
