"""The evidence of a failed verdict: stacks, wait states, allocation sites, fd targets, mappings.

Gathered only once a verdict has failed, because the full goroutine dump is
dear and pauses the service. Each measure that has evidence has one gatherer
in :data:`EVIDENCE`; ``report/failure.py`` has one section per measure to match.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from pytest_goleak.errors import GoleakError
from pytest_goleak.judge.diff import GoroutineGrowth, heap_growth
from pytest_goleak.judge.identity import dumped_identity, is_own, matches
from pytest_goleak.judge.measures import FDS, GOROUTINES, OFFHEAP, Measure
from pytest_goleak.judge.verdict import LeakedGroup, Verdict
from pytest_goleak.read.pprof import DumpedGoroutine, Frame, Stack, parse_goroutine_dump
from pytest_goleak.read.procfs import grown_mappings, listening
from pytest_goleak.read.snapshot import Part, Snapshotter

_DURATION = re.compile(r", \d+ minutes?$")

Gatherer = Callable[[Snapshotter, Verdict], Verdict]


def gather_evidence(snapshotter: Snapshotter, verdict: Verdict) -> Verdict:
    """``verdict`` with what a reader needs to act on it, for each measure over budget."""
    before, after = verdict.before.heap, verdict.after.heap
    if before is not None and after is not None:
        verdict = replace(verdict, heap_sites=tuple(heap_growth(before, after)))
    for measure in verdict.over:
        gather = EVIDENCE.get(measure)
        if gather is not None:
            verdict = gather(snapshotter, verdict)
    return verdict


def _goroutines(snapshotter: Snapshotter, verdict: Verdict) -> Verdict:
    """The leaked goroutines from the full dump, grouped; growth whose every creator is ignored is dropped."""
    budget, delta = verdict.budget, verdict.delta
    try:
        dump_text, proving = snapshotter.pprof.proving_dump()
    except GoleakError:
        dump_text, proving = "", False  # the profile's stacks still go into the report
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
    groups: list[LeakedGroup] = []
    # Show what is new: with a baseline, only the goroutines beyond what it knows of.
    for growth in delta.beyond(budget.known).goroutines:
        mine = ours(growth)
        groups.extend(_group(growth.identity, _newest(mine, growth.leaked)) if mine else _from_profile(growth))
    return replace(
        verdict,
        delta=delta,
        leaked_groups=tuple(sorted(groups, key=lambda g: -g.count)),
        dump_text=dump_text,
        leak_profile=proving,
    )


def _fds(snapshotter: Snapshotter, verdict: Verdict) -> Verdict:
    """The new fds' targets, sockets described by address and state."""
    delta = verdict.delta
    if not delta.new_fds or snapshotter.pid is None:
        return verdict
    described = snapshotter.backend.describe_fds(snapshotter.pid, dict(delta.new_fds))
    ports = tuple(port for port, _ in listening(snapshotter.pid))
    return replace(verdict, delta=replace(delta, new_fds=tuple(sorted(described.items()))), listening=ports)


def _mappings(snapshotter: Snapshotter, verdict: Verdict) -> Verdict:
    """The memory mappings new or grown since the before-reading (read only now: parsing them is dear)."""
    before = verdict.before.process
    if snapshotter.pid is None or before is None or not snapshotter.serves(Part.MAPPINGS):
        return verdict  # the portable backend has none to read: the report says so (report/failure.py)
    grown = grown_mappings(before.mappings or (), snapshotter.backend.read_mappings(snapshotter.pid, resident=True))
    return replace(verdict, mappings=tuple(grown))


EVIDENCE: Mapping[Measure, Gatherer] = {GOROUTINES: _goroutines, FDS: _fds, OFFHEAP: _mappings}


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
