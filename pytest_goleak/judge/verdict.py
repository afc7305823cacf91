"""``Verdict``: what one test's leak check decided, and the one computation that decides it."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from pytest_goleak.judge.budget import Budget
from pytest_goleak.judge.diff import Delta, SiteGrowth
from pytest_goleak.judge.measures import Measure
from pytest_goleak.read.pprof import Frame, Stack
from pytest_goleak.read.procfs import MappingGrowth
from pytest_goleak.read.snapshot import Snapshot

# What a reading was taken for: before the test, the first after it, a retake
# while over budget, one after a measured steady-state run.
Phase = Literal["before", "after", "settle", "steady"]


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
    listening: tuple[int, ...] = ()  # the ports the service listens on, read with leaked fds: which are incoming

    @property
    def failed(self) -> bool:
        return bool(self.violations)


def judged(before: Snapshot, after: Snapshot, delta: Delta, budget: Budget, waited: float = 0.0) -> Verdict:
    """The verdict on ``delta``: its headline phrases and the measures over budget, from one computation."""
    excess = delta.excess(budget)
    phrases = tuple(measure.phrase(grew, budget.limit(measure)) for measure, grew in excess)
    return Verdict(before, after, delta, phrases, budget, tuple(measure for measure, _ in excess), waited)


def rejudged(verdict: Verdict) -> Verdict:
    """``verdict`` judged again on its (evidence-trimmed) delta, keeping the evidence."""
    fresh = judged(verdict.before, verdict.after, verdict.delta, verdict.budget, verdict.waited)
    return replace(verdict, violations=fresh.violations, over=fresh.over)
