"""Steady-state mode: repeat a test and call it a leak only if it grows every time.

Some leaks are too small to see in one run (a 16 KiB map entry per request,
one goroutine per call under a budget of two) and some growth is not a leak
at all (a ``sync.Once`` cache, a pool warming up). CPython's refleak hunter
settles this by running a test after warm-up runs and flagging a measure only
if it grows in **every** counted run; this module applies that rule to
snapshots taken after each measured run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise

from pytest_goleak.budget import Budget, format_size
from pytest_goleak.diff import count_by_identity, diff, fd_count
from pytest_goleak.snapshot import Snapshot


@dataclass(frozen=True)
class Trend:
    """One measure across the measured runs."""

    measure: str
    steps: tuple[int, ...]  # growth in each measured run
    slope: float  # growth per run, least squares
    r2: float  # how well a straight line fits the readings

    @property
    def grows_every_run(self) -> bool:
        return bool(self.steps) and all(step > 0 for step in self.steps)

    def phrase(self) -> str:
        runs = len(self.steps)
        if self.measure == "heap":
            rate = f"heap +{format_size(self.slope)} per iteration"
        elif self.measure == "goroutines":
            rate = f"+{self.slope:.3g} goroutine{'s' if round(self.slope, 3) != 1 else ''} per iteration"
        else:
            rate = f"{self.measure} +{self.slope:.3g} per iteration"
        return f"{rate} (r² {self.r2:.2f}) over {runs} iterations"


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
    heaps = [s.heap_bytes for s in idle if s.heap_bytes is not None]
    return max((abs(b - a) for a, b in pairwise(heaps)), default=0)


def trends(readings: Sequence[Snapshot], budget: Budget, heap_noise: int) -> list[Trend]:
    """How each checked measure moved across ``readings`` (one per measured run, plus the one before)."""
    found = []
    pairs = list(pairwise(readings))
    if budget.goroutines is not None:
        steps = tuple(diff(a, b, budget).goroutines_leaked for a, b in pairs)
        totals = [sum(count_by_identity(s.goroutines, budget.ignore).values()) for s in readings]
        found.append(Trend("goroutines", steps, *fit(totals)))
    if budget.heap is not None and all(s.heap_bytes is not None for s in readings):
        heaps = [s.heap_bytes or 0 for s in readings]
        # Growth within the idle noise is no growth.
        steps = tuple(b - a if b - a > heap_noise else 0 for a, b in pairwise(heaps))
        found.append(Trend("heap", steps, *fit(heaps)))
    readers: dict[str, Callable[[Snapshot], int | None]] = {
        "fds": lambda s: fd_count(s, budget.ignore_fds),
        "children": lambda s: s.child_count,
        "threads": lambda s: s.thread_count,
        "tmpfiles": lambda s: s.tmpfile_count,
    }
    for measure, read in readers.items():
        if getattr(budget, measure) is None:
            continue
        read_counts = [read(s) for s in readings]
        counts = [count for count in read_counts if count is not None]
        if len(counts) != len(read_counts):
            continue
        steps = tuple(b - a for a, b in pairwise(counts))
        found.append(Trend(measure, steps, *fit(counts)))
    return found
