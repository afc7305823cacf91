"""One test's leak check: snapshot before, snapshot after with settling, verdict.

Settle, not sleep: a clean test is judged on the first reading after it and
costs no waiting. Only a reading that shows growth over budget is retaken,
with short backoff, until the growth winds down or ``settle`` runs out.
The dear evidence (a full goroutine dump, the runtime's leak proof) is
fetched once, after the verdict is already a failure.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from itertools import chain, repeat
from typing import Literal

from pytest_goleak.errors import GoleakError
from pytest_goleak.judge.budget import Budget
from pytest_goleak.judge.diff import Delta, GoroutineGrowth, SiteGrowth, diff, heap_growth
from pytest_goleak.judge.identity import dumped_identity, is_own, matches
from pytest_goleak.judge.measures import FDS, GOROUTINES, HEAP, OFFHEAP, Measure
from pytest_goleak.read.pprof import DumpedGoroutine, Frame, GoroutineProfile, Stack, parse_goroutine_dump
from pytest_goleak.read.procfs import MappingGrowth, describe_fds, grown_mappings, read_mappings
from pytest_goleak.read.snapshot import Part, Snapshot, Snapshotter, bounding

# What a reading was taken for: before the test, the first after it, a retake
# while over budget, one after a measured steady-state run.
Phase = Literal["before", "after", "settle", "steady"]
OnReading = Callable[[Snapshot, Phase], None]

_BACKOFF = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3)
_DURATION = re.compile(r", \d+ minutes?$")


@dataclass(frozen=True)
class LeakedGroup:
    """Leaked goroutines that share a wait state, a stack and a creator."""

    count: int
    identity: str
    state: str
    stack: Stack
    created_by: Frame | None
    proven: int = 0  # how many of them the Go runtime proved leaked (goroutineleak profile)


@dataclass(frozen=True)
class Verdict:
    before: Snapshot
    after: Snapshot
    delta: Delta
    violations: tuple[str, ...]  # report phrases, the headline
    budget: Budget
    over: tuple[Measure, ...] = ()  # the measures that failed
    waited: float = 0.0
    leaked_groups: tuple[LeakedGroup, ...] = ()
    heap_sites: tuple[SiteGrowth, ...] = ()
    dump_text: str = ""  # the full debug=2 dump, when one was read
    mappings: tuple[MappingGrowth, ...] = ()  # memory mappings new or grown since the before-reading
    extra_runs: int = 0  # steady-state runs after the measured ones, so that the heap sampler saw the leak
    leak_profile: bool = False  # the dump came through the runtime's goroutineleak profile: it tested them for proof

    @property
    def failed(self) -> bool:
        return bool(self.violations)


class LeakCheck:
    """Runs the check for one test against one service."""

    def __init__(
        self,
        snapshotter: Snapshotter,
        budget: Budget,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        on_reading: OnReading | None = None,
    ) -> None:
        self.snapshotter = snapshotter
        self.budget = budget
        self._sleep = sleep
        self._clock = clock
        self._on_reading = on_reading
        self.before: Snapshot | None = None
        # Whether the first after-reading forces a GC; without, the heap is bounded first (see finish).
        self.exact_after = True

    def take(self, phase: Phase, exact: bool = True, goroutines: GoroutineProfile | None = None) -> Snapshot:
        """A reading of what this budget checks (sockets described for fd patterns), told to ``on_reading``.

        Not ``exact``, the heap is read without a forced GC: live bytes plus garbage, a bound.
        """
        parts = self.budget.parts if exact else bounding(self.budget.parts)
        return self._told(self._read(parts, phase, goroutines), phase)

    def _read(self, parts: frozenset[Part], phase: Phase, goroutines: GoroutineProfile | None = None) -> Snapshot:
        sockets = bool(self.budget.ignore_fds)
        late = phase == "before"  # see Snapshotter.take
        return self.snapshotter.take(parts, sockets=sockets, goroutines=goroutines, late_process=late)

    def _told(self, reading: Snapshot, phase: Phase) -> Snapshot:
        """``reading``, told to ``on_reading``."""
        if self._on_reading is not None:
            self._on_reading(reading, phase)
        return reading

    def _retake(self, after: Snapshot, over: Sequence[Measure]) -> Snapshot:
        """A settle reading. While the heap is within budget its reading stands, and the dear GC is not paid again.

        Most retakes wait on a goroutine winding down, or the fd of a connection the test just closed.
        """
        if any(measure.parts & {Part.HEAP, Part.MEMSTATS} for measure in over):
            return self.take("settle")
        reading = self._read(self.budget.parts - {Part.HEAP, Part.MEMSTATS}, "settle")
        return self._told(replace(reading, heap=after.heap, resident_before_heap=after.resident_before_heap), "settle")

    def begin(self, kept: Snapshot | None = None) -> Snapshot:
        """Take the before-reading, or adopt ``kept`` (the previous test's after-reading, still current).

        The parts ``kept`` lacks that this budget checks are read now, its goroutine profile kept.
        """
        if kept is None:
            self.before = self.take("before")
        elif all(kept.has(part) or not self.snapshotter.serves(part) for part in self.budget.parts):
            self.before = kept
        else:
            self.before = self.take("before", goroutines=kept.goroutines)
        return self.before

    def finish(self) -> Verdict:
        """Read the service after the test, retaking while over budget (see the module docstring).

        Unless ``exact_after``, the first after-reading bounds the heap rather
        than forcing a GC: ``HeapAlloc`` read without one counts what is live
        plus garbage not yet collected, never less than the live heap at that
        moment. If the bound minus the live heap before the test is within
        budget, so is the growth, and the test passes without a GC. Otherwise
        the heap is read again after a forced GC and judged on that, as it
        always was: the bound can make a test dearer to pass, never pass one
        the exact reading fails.
        """
        if self.before is None:
            raise RuntimeError("LeakCheck.finish() before begin()")
        before = self.before
        start = self._clock()
        bound = not self.exact_after and HEAP in self.budget.checked
        after = self.take("after", exact=not bound)
        delta = diff(before, after, self.budget)
        if bound and HEAP in delta.exceeded(self.budget):
            # Over budget on the heap's bound: read exactly, and judge on that.
            bound = False
            after = self.take("settle")
            delta = diff(before, after, self.budget)
        for pause in _backoff():
            over = delta.exceeded(self.budget)
            if not over or self._clock() + pause - start > self.budget.settle:
                break
            self._sleep(pause)
            after = self._retake(after, over)
            delta = diff(before, after, self.budget)
        if bound:
            delta = delta.unmeasured(HEAP)  # within budget by its bound: how much it grew is not known
        verdict = judged(before, after, delta, self.budget, waited=self._clock() - start)
        if not verdict.failed:
            return verdict
        verdict = gather_evidence(self.snapshotter, verdict)
        # Ignoring goroutines by their creator can bring a test back within budget.
        return rejudged(verdict)


def judged(before: Snapshot, after: Snapshot, delta: Delta, budget: Budget, waited: float = 0.0) -> Verdict:
    """The verdict on ``delta``: its headline phrases and the measures over budget, from one computation."""
    excess = delta.excess(budget)
    phrases = tuple(measure.phrase(grew, budget.limit(measure)) for measure, grew in excess)
    return Verdict(before, after, delta, phrases, budget, tuple(measure for measure, _ in excess), waited)


def rejudged(verdict: Verdict) -> Verdict:
    """``verdict`` judged again on its (evidence-trimmed) delta, keeping the evidence."""
    fresh = judged(verdict.before, verdict.after, verdict.delta, verdict.budget, verdict.waited)
    return replace(verdict, violations=fresh.violations, over=fresh.over)


def gather_evidence(snapshotter: Snapshotter, verdict: Verdict) -> Verdict:
    """Add what a reader needs to a failed verdict: stacks, wait states, allocation sites, fd targets.

    Only called once a verdict has failed, because the full goroutine dump is
    dear and pauses the service.
    """
    pprof, budget = snapshotter.pprof, verdict.budget
    groups: list[LeakedGroup] = []
    delta = verdict.delta
    dump_text, proving = "", False
    if GOROUTINES in verdict.over:
        try:
            dump_text, proving = pprof.proving_dump()
        except GoleakError:
            dump_text = ""  # the profile's stacks still go into the report
        dump = parse_goroutine_dump(dump_text, mentioning={growth.identity for growth in delta.goroutines})

        def ours(growth: GoroutineGrowth) -> list[DumpedGoroutine]:
            return [g for g in dump if dumped_identity(g) == growth.identity and not is_own(g.stack)]

        dropped = []
        for growth in delta.goroutines:
            mine = ours(growth)
            creators = [g.created_by.function for g in mine if g.created_by is not None]
            # Ignore patterns also match the `created by` frame, which only the dump carries.
            # Every creator must match: one leaked goroutine started elsewhere keeps the growth.
            ignored = [creator for creator in creators if matches(budget.ignore, (creator,))]
            if budget.ignore and mine and len(ignored) == len(mine):
                dropped.append(growth)
        if dropped:
            delta = delta.without_goroutines(dropped)
        # Show what is new: with a baseline, only the goroutines beyond what it knows of.
        for growth in delta.beyond(budget.known).goroutines:
            mine = ours(growth)
            if mine:
                groups.extend(_group(growth.identity, _newest(mine, growth.leaked)))
            else:
                groups.extend(_from_profile(growth))
    if delta.new_fds and FDS in verdict.over and snapshotter.pid is not None:
        described = describe_fds(snapshotter.pid, dict(delta.new_fds))
        delta = replace(delta, new_fds=tuple(sorted(described.items())))
    mappings: list[MappingGrowth] = []
    before_process = verdict.before.process
    if OFFHEAP in verdict.over and snapshotter.pid is not None and before_process is not None:
        mappings = grown_mappings(before_process.mappings or (), read_mappings(snapshotter.pid, resident=True))
    sites: list[SiteGrowth] = []
    if verdict.before.heap is not None and verdict.after.heap is not None:
        sites = heap_growth(verdict.before.heap, verdict.after.heap)
    return replace(
        verdict,
        delta=delta,
        leaked_groups=tuple(sorted(groups, key=lambda g: -g.count)),
        heap_sites=tuple(sites),
        dump_text=dump_text,
        leak_profile=proving,
        mappings=tuple(mappings),
    )


def _backoff() -> Iterator[float]:
    """Pauses between settle readings: short at first, then steady (the settle time bounds the loop)."""
    return chain(_BACKOFF, repeat(_BACKOFF[-1]))


def _newest(goroutines: Sequence[DumpedGoroutine], count: int) -> list[DumpedGoroutine]:
    # Goroutine ids only grow, so the newest of an identity are the ones most
    # likely started by this test.
    return sorted(goroutines, key=lambda g: g.goid)[-count:] if count > 0 else []


def _from_profile(growth: GoroutineGrowth) -> list[LeakedGroup]:
    """Report groups from the profile alone: current stacks, no state or creator."""
    groups, left = [], growth.leaked
    for count, stack in growth.stacks:
        if left <= 0:
            break
        groups.append(LeakedGroup(min(count, left), growth.identity, "", stack, None))
        left -= count
    return groups


def _group(name: str, goroutines: Sequence[DumpedGoroutine]) -> list[LeakedGroup]:
    """Goroutines of one identity grouped by wait state, stack and creator, counting the proven ones."""
    buckets: Counter[tuple[str, Stack, Frame | None]] = Counter()
    proven: Counter[tuple[str, Stack, Frame | None]] = Counter()
    for goroutine in goroutines:
        key = (_DURATION.sub("", goroutine.state), goroutine.stack, goroutine.created_by)
        buckets[key] += 1
        proven[key] += goroutine.leaked
    return [LeakedGroup(count, name, *key, proven=proven[key]) for key, count in buckets.most_common()]
