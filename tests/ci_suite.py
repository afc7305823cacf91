"""The nested suite the CI-output tests run, and how they set it up: shared by tests/report/test_ci.py and
tests/acceptance/test_ci_workflow.py.

Three tests: one clean, one whose cache grows by ``CACHE_KB`` KiB when that is set, and one that leaks a
goroutine when ``LEAK`` is set. The environment that could leak into a nested run (a GitHub runner's
variables, those two switches) is cleared, and the terminal is wide.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

LEAKY_TEST = "test_leaky_route_that_has_a_rather_long_name_for_a_narrow_terminal"
SUITE = f"""\
import os

def test_clean(pytest_goleak):
    assert pytest_goleak.client.get("/fixed/chan-send").status_code == 200

def test_cache(pytest_goleak):
    kb = os.environ.get("CACHE_KB", "0")
    if kb != "0":
        assert pytest_goleak.client.get(f"/leaky/cache?kb={{kb}}").status_code == 200

def {LEAKY_TEST}(pytest_goleak):
    if os.environ.get("LEAK"):
        assert pytest_goleak.client.get("/leaky/chan-send").status_code == 200
"""
LEAKY = f"test_suite.py::{LEAKY_TEST}"
LEAKY_LINE = 1 + SUITE.splitlines().index(f"def {LEAKY_TEST}(pytest_goleak):")
_VARIABLES = ("GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY", "GITHUB_WORKSPACE", "LEAK", "CACHE_KB")


def write_suite(pytester: pytest.Pytester, write_ini: Callable[..., None], monkeypatch: pytest.MonkeyPatch) -> None:
    """The suite and its ini in ``pytester``'s directory, in an environment of its own."""
    for name in _VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLUMNS", "200")  # a wide terminal, but where a test says otherwise
    write_ini()
    pytester.makepyfile(test_suite=SUITE)
