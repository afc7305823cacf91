"""The after-reading of one test, retaken while over budget, and the verdict on it.

Settle, not sleep: a clean test is judged on the first reading after it and
costs no waiting. Only a reading that shows growth over budget is retaken,
with short backoff, until the growth winds down or ``settle`` runs out.
The dear evidence (a full goroutine dump, the runtime's leak proof) is not
fetched here: ``evidence.py`` does that once the verdict is a failure.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from itertools import chain, repeat

from pytest_goleak.judge.budget import Budget
from pytest_goleak.judge.diff import diff
from pytest_goleak.judge.measures import HEAP, Measure
from pytest_goleak.judge.verdict import Phase, Verdict, judged
from pytest_goleak.read.pprof import GoroutineProfile
from pytest_goleak.read.snapshot import Part, Snapshot, Snapshotter, bounding

OnReading = Callable[[Snapshot, Phase], None]

# No first pause: what a clean test most often leaves winding down is the server side of its own connection,
# gone within half a millisecond of the test's client closing, and the heap's forced GC has taken longer than that
# since the goroutines were read.
_BACKOFF = (0.0, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3)


class Reader:
    """Readings of one service, of what one budget checks, each told to ``on_reading``."""

    def __init__(self, snapshotter: Snapshotter, budget: Budget, on_reading: OnReading | None = None) -> None:
        self.snapshotter = snapshotter
        self.budget = budget
        self._on_reading = on_reading

    def take(self, phase: Phase, exact: bool = True, goroutines: GoroutineProfile | None = None) -> Snapshot:
        """A reading of what this budget checks (sockets described for fd patterns), told to ``on_reading``.

        Not ``exact``, the heap is read without a forced GC: live bytes plus garbage, a bound.
        """
        parts = self.budget.parts if exact else bounding(self.budget.parts)
        return self._told(self._read(parts, phase, goroutines), phase)

    def before(self, kept: Snapshot | None = None) -> Snapshot:
        """The before-reading: a fresh one, or ``kept`` (the previous test's after-reading, still current).

        The parts ``kept`` lacks that this budget checks are read now, its goroutine profile kept.
        """
        if kept is None:
            return self.take("before")
        if all(kept.has(part) or not self.snapshotter.serves(part) for part in self.budget.parts):
            return kept
        return self.take("before", goroutines=kept.goroutines)

    def retake(self, after: Snapshot, over: Sequence[Measure]) -> Snapshot:
        """A settle reading. While the heap is within budget its reading stands, and the dear GC is not paid again.

        Most retakes wait on a goroutine winding down, or the fd of a connection the test just closed.
        """
        if any(measure.parts & {Part.HEAP, Part.MEMSTATS} for measure in over):
            return self.take("settle")
        reading = self._read(self.budget.parts - {Part.HEAP, Part.MEMSTATS}, "settle")
        return self._told(replace(reading, heap=after.heap, resident_before_heap=after.resident_before_heap), "settle")

    def _read(self, parts: frozenset[Part], phase: Phase, goroutines: GoroutineProfile | None = None) -> Snapshot:
        late = phase == "before"  # see Snapshotter.take
        sockets = self.budget.describes_sockets
        return self.snapshotter.take(parts, sockets=sockets, goroutines=goroutines, late_process=late)

    def _told(self, reading: Snapshot, phase: Phase) -> Snapshot:
        if self._on_reading is not None:
            self._on_reading(reading, phase)
        return reading


def settle(
    reader: Reader,
    before: Snapshot,
    exact: bool = True,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Verdict:
    """Read the service after the test, retaking while over budget (see the module docstring); the verdict.

    Unless ``exact``, the first after-reading bounds the heap rather than
    forcing a GC: ``HeapAlloc`` read without one counts what is live plus
    garbage not yet collected, never less than the live heap at that moment.
    If the bound minus the live heap before the test is within budget, so is
    the growth, and the test passes without a GC. Otherwise the heap is read
    again after a forced GC and judged on that, as it always was: the bound
    can make a test dearer to pass, never pass one the exact reading fails.
    """
    budget = reader.budget
    start = clock()
    bound = not exact and HEAP in budget.checked
    after = reader.take("after", exact=not bound)
    delta = diff(before, after, budget)
    if bound and HEAP in delta.exceeded(budget):
        # Over budget on the heap's bound: read exactly, and judge on that.
        bound = False
        after = reader.take("settle")
        delta = diff(before, after, budget)
    for pause in _backoff():
        over = delta.exceeded(budget)
        if not over or budget.settle <= 0 or clock() + pause - start > budget.settle:
            break
        sleep(pause)
        after = reader.retake(after, over)
        delta = diff(before, after, budget)
    if bound:
        delta = delta.unmeasured(HEAP)  # within budget by its bound: how much it grew is not known
    return judged(before, after, delta, budget, waited=clock() - start)


def _backoff() -> Iterator[float]:
    """Pauses between settle readings: short at first, then steady (the settle time bounds the loop)."""
    return chain(_BACKOFF, repeat(_BACKOFF[-1]))
