"""Steady-state mode: repeat a test and call it a leak only if it grows every time.

Some leaks are too small to see in one run (a 16 KiB map entry per request,
one goroutine per call under a budget of two) and some growth is not a leak
at all (a ``sync.Once`` cache, a pool warming up). CPython's refleak hunter
settles this by running a test after warm-up runs and flagging a measure only
if it grows in **every** counted run; this module applies that rule to
snapshots taken after each measured run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from itertools import pairwise

from pytest_goleak.judge.budget import Budget
from pytest_goleak.judge.diff import diff, heap_growth
from pytest_goleak.judge.measures import HEAP, NOTHING_IGNORED, Measure
from pytest_goleak.judge.verdict import Verdict
from pytest_goleak.read.snapshot import Snapshot


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
        # Growth within the noise is none: the heap's as measured at rest, another measure's tolerance.
        noise = heap_noise if measure is HEAP else measure.tolerance
        steps = tuple(step if step > noise else 0 for step in steps)
        found.append(Trend(measure, steps, *fit(series)))
    return found


# More runs of a test whose heap grows every run but whose sampled profile names no site yet.
MAX_EXTRA_RUNS = 512
MAX_EXTRA_SECONDS = 20.0


# Sampled growth of this many sample periods leaves a leak unseen with odds of e^-8 (1 in 3,000).
SAMPLES_TO_SEE = 8


def names_the_leak(verdict: Verdict, grew: int | None = None) -> bool:
    """Whether the heap grew enough for the sampler to have seen the leak, and its sites account for half of it.

    Half is not enough alone: one sampled allocation stands for a whole sample
    period (512 KiB by default), so a lone unrelated buffer can outweigh a
    leak of 80 KiB.
    """
    growth = verdict.delta.of(HEAP) if grew is None else grew
    heap = verdict.after.heap
    rate = heap.sample_rate if heap is not None else 512 << 10
    if not growth or growth < SAMPLES_TO_SEE * rate:
        return False
    return sum(site.bytes for site in verdict.heap_sites) * 2 >= growth


def sample_more(
    verdict: Verdict,
    rerun: Callable[[], object],
    take: Callable[[], Snapshot],
    clock: Callable[[], float] = time.monotonic,
) -> Verdict:
    """Rerun a steady test whose heap leak the sampler has not seen, until the heap profile names its site.

    The runtime samples one allocation per ``MemProfileRate`` bytes (512 KiB by
    default), so a leak of 16 KiB per run over 5 runs shows no site in about
    four failures out of five. The test is repeatable by declaration, so it
    runs again, in doubling batches, until the heap has grown by
    :data:`SAMPLES_TO_SEE` sample periods since the before-reading and the
    sampled sites account for half of that: a leak of 16 KiB per run is seen
    within about 256 runs. Bounded by :data:`MAX_EXTRA_RUNS` and
    :data:`MAX_EXTRA_SECONDS`; only a failing test pays for it.
    """
    before = verdict.before.heap
    runs, batch, start = 0, 8, clock()
    best = verdict
    while before is not None and runs < MAX_EXTRA_RUNS and clock() - start < MAX_EXTRA_SECONDS:
        for _ in range(min(batch, MAX_EXTRA_RUNS - runs)):
            rerun()
            runs += 1
        after = take().heap
        if after is None:
            break
        best = replace(verdict, heap_sites=tuple(heap_growth(before, after)), extra_runs=runs)
        if names_the_leak(best, after.live_bytes - before.live_bytes):
            break
        batch *= 2
    return best
