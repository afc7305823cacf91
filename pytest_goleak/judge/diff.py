"""``Delta``: what grew between two snapshots, and whether a budget allows it.

Goroutines are compared by identity (see :mod:`pytest_goleak.judge.identity`):

    leaked goroutines = sum over identities of max(0, after - before)

so a test that ends one goroutine but leaks another still leaks one. Every
other measure grows by its reading after minus its reading before, as
:mod:`pytest_goleak.judge.measures` reads it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from pytest_goleak.judge.budget import Budget, Known
from pytest_goleak.judge.identity import count_by_identity, counted, is_own
from pytest_goleak.judge.measures import GOROUTINES, MEASURES, Ignores, Measure
from pytest_goleak.read.backend import Lack
from pytest_goleak.read.pprof import GoroutineProfile, HeapProfile, Stack
from pytest_goleak.read.procfs import ChildInfo, new_children, new_fds
from pytest_goleak.read.snapshot import Snapshot
from pytest_goleak.read.tmpdir import new_entries


@dataclass(frozen=True)
class GoroutineGrowth:
    """Goroutines of one identity that a test left behind."""

    identity: str
    before: int
    after: int
    stacks: tuple[tuple[int, Stack], ...]  # current stacks in the later reading, with counts

    @property
    def leaked(self) -> int:
        return self.after - self.before


@dataclass(frozen=True)
class SiteGrowth:
    """Live heap that one allocation stack gained."""

    stack: Stack
    bytes: int
    objects: int


@dataclass(frozen=True)
class Delta:
    """Growth between two snapshots: each measure's (None if not read) and what is new."""

    grew: Mapping[str, int | None]  # by measure name
    goroutines: tuple[GoroutineGrowth, ...] = ()
    goroutine_total: int = 0  # plain count difference, for information
    new_fds: tuple[tuple[int, str], ...] = ()
    new_children: tuple[ChildInfo, ...] = ()
    new_tmpfiles: tuple[tuple[str, int], ...] = ()  # (path under TMPDIR, size or DIRECTORY)

    @property
    def goroutines_leaked(self) -> int:
        return sum(growth.leaked for growth in self.goroutines)

    def of(self, measure: Measure) -> int | None:
        return self.grew.get(measure.name)

    def beyond(self, known: Known | None) -> Delta:
        """The growth beyond what a baseline knows of: more of a known identity, a new one, or more bytes."""
        if known is None:
            return self
        goroutines = [
            GoroutineGrowth(g.identity, g.before + known.goroutines.get(g.identity, 0), g.after, g.stacks)
            for g in self.goroutines
            if g.leaked > known.goroutines.get(g.identity, 0)
        ]
        grew = {name: None if v is None else v - known.growth.get(name, 0) for name, v in self.grew.items()}
        return replace(self, grew=grew).with_goroutines(goroutines)

    def with_goroutines(self, goroutines: Iterable[GoroutineGrowth]) -> Delta:
        """This delta with ``goroutines`` as its goroutine growth, and the goroutines measure they add up to."""
        kept = tuple(goroutines)
        return replace(self, grew=_with_leaked(self.grew, kept), goroutines=kept)

    def excess(self, budget: Budget) -> list[tuple[Measure, int]]:
        """Each measure whose growth, beyond the budget's known growth, exceeds the budget, with that growth."""
        judged = self.beyond(budget.known)
        found = []
        for measure in MEASURES:
            allowed, grew = budget.limit(measure), judged.of(measure)
            if allowed is not None and grew is not None and grew > allowed:
                found.append((measure, grew))
        return found

    def exceeded(self, budget: Budget) -> list[Measure]:
        """The measures over ``budget``."""
        return [measure for measure, _ in self.excess(budget)]

    def over(self, budget: Budget) -> list[str]:
        """The measures that exceed ``budget``, as report phrases; empty if within it."""
        return [measure.phrase(grew, budget.limit(measure)) for measure, grew in self.excess(budget)]

    def unmeasured(self, measure: Measure) -> Delta:
        """This delta without a figure for ``measure``: what it holds is a bound, not a growth."""
        return replace(self, grew={**self.grew, measure.name: None})

    def without_goroutines(self, dropped: Sequence[GoroutineGrowth]) -> Delta:
        """This delta with some identities' growth taken out (ignored by their creator)."""
        return self.with_goroutines(growth for growth in self.goroutines if growth not in dropped)


def goroutine_growth(before: GoroutineProfile, after: GoroutineProfile, ignore: Sequence[str]) -> list[GoroutineGrowth]:
    old = count_by_identity(before, ignore)
    new = count_by_identity(after, ignore)
    grown = {name: count for name, count in new.items() if count > old.get(name, 0)}
    if not grown:
        return []  # a clean test: no stack to gather
    stacks: dict[str, list[tuple[int, Stack]]] = defaultdict(list)
    for name, count, stack in counted(after, ignore):
        if name in grown:
            stacks[name].append((count, stack))
    growth = [
        GoroutineGrowth(name, old.get(name, 0), count, tuple(sorted(stacks[name], key=lambda s: -s[0])))
        for name, count in grown.items()
    ]
    return sorted(growth, key=lambda g: (-g.leaked, g.identity))


def heap_growth(before: HeapProfile, after: HeapProfile, limit: int = 10) -> list[SiteGrowth]:
    """Allocation stacks whose live bytes grew, largest first."""
    old: Counter[Stack] = Counter()
    for site in before.sites():
        old[site.stack] += site.inuse_bytes
    new: Counter[Stack] = Counter()
    objects: Counter[Stack] = Counter()
    for site in after.sites():
        if is_own(site.stack):  # the profile request's own buffers, live during its GC
            continue
        new[site.stack] += site.inuse_bytes
        objects[site.stack] += site.inuse_objects
    grown = [SiteGrowth(stack, size - old.get(stack, 0), objects[stack]) for stack, size in new.items()]
    grown = [site for site in grown if site.bytes > 0]
    grown.sort(key=lambda site: -site.bytes)
    return grown[:limit]


def _with_leaked(grew: Mapping[str, int | None], goroutines: tuple[GoroutineGrowth, ...]) -> dict[str, int | None]:
    """``grew`` with the goroutines measure: what ``goroutines`` add up to."""
    return {**grew, GOROUTINES.name: sum(g.leaked for g in goroutines)}


def growth(
    measure: Measure, before: Snapshot, after: Snapshot, ignores: Ignores, lacks: frozenset[Lack] | None = None
) -> int | None:
    """How much ``measure`` grew from ``before`` to ``after``; None if either reading lacks it.

    ``lacks``: what the two readings lack together, when the caller has it already.
    """
    if not measure.measured(before.lacks | after.lacks if lacks is None else lacks):
        return None  # not measured on this platform: never a zero
    if measure.grew is not None:
        return measure.grew(before, after, ignores)
    old, new = measure.read(before, ignores), measure.read(after, ignores)
    return None if old is None or new is None else new - old


_ALL = Budget()  # no ignore patterns


def diff(before: Snapshot, after: Snapshot, budget: Budget = _ALL) -> Delta:
    """What grew from ``before`` to ``after``, leaving out what the budget's ignore patterns match."""
    # Goroutines grow by identity (goroutine_growth), not by the difference of their counts.
    lacks = before.lacks | after.lacks
    grew = {m.name: growth(m, before, after, budget, lacks) for m in MEASURES if m is not GOROUTINES}
    fds: tuple[tuple[int, str], ...] = ()
    children: tuple[ChildInfo, ...] = ()
    if before.process is not None and after.process is not None:
        fds = tuple(sorted(new_fds(before.process, after.process, budget.ignore_fds).items()))
        children = tuple(new_children(before.process, after.process))
    goroutines = tuple(goroutine_growth(before.goroutines, after.goroutines, budget.ignore))
    return Delta(
        grew=_with_leaked(grew, goroutines),
        goroutines=goroutines,
        goroutine_total=after.goroutines.total - before.goroutines.total,
        new_fds=fds,
        new_children=children,
        new_tmpfiles=new_entries(before.tmpfiles or {}, after.tmpfiles or {}),
    )
