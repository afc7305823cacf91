"""pytest-goleak's own hooks: the seam for dashboards, soaks and benchmarks.

Implement them in a ``conftest.py`` or a plugin. They are called in the
process that runs the test (an xdist worker, under xdist); what they receive
is the plugin's own data: :class:`~pytest_goleak.Snapshot` and :class:`~pytest_goleak.Verdict`, plain
frozen dataclasses, importable from ``pytest_goleak`` (its public face).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pytest_goleak.judge.verdict import Phase, Verdict
    from pytest_goleak.read.snapshot import Snapshot
    from pytest_goleak.service.protocol import Service


@pytest.hookspec
def pytest_goleak_reading(item: pytest.Item, service: Service, reading: Snapshot, phase: Phase) -> None:
    """A reading of ``service`` was taken for ``item``.

    ``phase`` says what for: ``"before"`` the test (not called when the
    previous test's after-reading is adopted as it: see ``judge/reuse.py``),
    ``"after"`` it (the first reading; without a forced GC where the heap is
    bounded, see ``judge/settle.py``), ``"settle"`` (a retake while the growth was over
    budget; one that waits on goroutines or fds keeps the heap of the reading
    before it), or ``"steady"`` (after one measured steady-state run).
    The verdict is judged on the last ``after`` or ``settle`` reading.
    """


@pytest.hookspec
def pytest_goleak_verdict(item: pytest.Item, service: Service, verdict: Verdict) -> None:
    """The leak check of ``service`` during ``item`` reached ``verdict`` (``verdict.failed`` tells which way).

    Called once per watched service, after the evidence of a failure was
    gathered and before the test's report is made.
    """
