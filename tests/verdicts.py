"""Which report of a nested run carries a test's leak check.

The check spans the test's own function-scoped fixtures, so a test's verdict
is taken in the teardown of ``pytest_goleak``: a leak is the teardown report's
failure, and the check's record (``report.goleak``) rides on the teardown
report. A steady-state test is judged in its call phase.
"""

from __future__ import annotations

from collections.abc import Iterable

import pytest


def checked(reports: Iterable[pytest.TestReport]) -> dict[str, pytest.TestReport]:
    """Each test's report of its check, by node id: the teardown report where it failed or holds the record,
    else the call report (a steady-state test's, or one that was not checked)."""
    found: dict[str, pytest.TestReport] = {}
    for report in reports:
        if report.when == "call" and report.nodeid not in found:
            found[report.nodeid] = report
        elif report.when == "teardown" and (report.failed or hasattr(report, "goleak")):
            found[report.nodeid] = report
        elif report.when == "call" and hasattr(report, "goleak"):
            found[report.nodeid] = report
    return found


def by_name(reports: Iterable[pytest.TestReport], cut: str = "::") -> dict[str, pytest.TestReport]:
    """:func:`checked`, keyed by what follows the last ``cut`` in the node id."""
    return {nodeid.rsplit(cut, 1)[-1]: report for nodeid, report in checked(reports).items()}
