"""Steady-state mode: repeat a test and call it a leak only if it grows every time.

Some leaks are too small to see in one run (a 16 KiB map entry per request,
one goroutine per call under a budget of two) and some growth is not a leak
at all (a ``sync.Once`` cache, a pool warming up). CPython's refleak hunter
settles this by running a test after warm-up runs and flagging a measure only
if it grows in **every** counted run; this module applies that rule to
snapshots taken after each measured run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

from pytest_goleak.budget import Budget
from pytest_goleak.diff import diff
from pytest_goleak.measures import HEAP, NOTHING_IGNORED, Measure
from pytest_goleak.snapshot import Snapshot


@dataclass(frozen=True)
class Trend:
    """One measure across the measured runs."""

    measure: Measure
    steps: tuple[int, ...]  # growth in each measured run
    slope: float  # growth per run, least squares
    r2: float  # how well a straight line fits the readings

    @property
    def grows_every_run(self) -> bool:
        return bool(self.steps) and all(step > 0 for step in self.steps)

    def phrase(self) -> str:
        return f"{self.measure.rate(self.slope)} (r² {self.r2:.2f}) over {len(self.steps)} iterations"


def fit(values: Sequence[float]) -> tuple[float, float]:
    """Slope and r² of the least-squares line through ``values`` at x = 0, 1, 2, ..."""
    n = len(values)
    if n < 2:
        return 0.0, 0.0
    mean_x, mean_y = (n - 1) / 2, sum(values) / n
    sxx = sum((x - mean_x) ** 2 for x in range(n))
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in enumerate(values))
    syy = sum((y - mean_y) ** 2 for y in values)
    slope = sxy / sxx
    r2 = 1.0 if syy == 0 else (sxy * sxy) / (sxx * syy)
    return slope, r2


def noise_floor(idle: Sequence[Snapshot]) -> int:
    """The largest heap change between consecutive readings of an idle service."""
    heaps = [size for size in (HEAP.read(s, NOTHING_IGNORED) for s in idle) if size is not None]
    return max((abs(b - a) for a, b in pairwise(heaps)), default=0)


def trends(readings: Sequence[Snapshot], budget: Budget, heap_noise: int) -> list[Trend]:
    """How each checked measure moved across ``readings`` (one per measured run, plus the one before)."""
    found = []
    deltas = [diff(a, b, budget) for a, b in pairwise(readings)]
    for measure in budget.checked:
        counts = [measure.read(s, budget) for s in readings]
        if any(count is None for count in counts):
            continue
        series = [count or 0 for count in counts]
        steps = tuple(delta.of(measure) or 0 for delta in deltas)
        if measure is HEAP:
            steps = tuple(step if step > heap_noise else 0 for step in steps)  # growth within idle noise is none
        found.append(Trend(measure, steps, *fit(series)))
    return found
