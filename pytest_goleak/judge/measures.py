"""The measures: one row each, and the one place that reads a measure from a snapshot.

Budgets, the report header and marker help, the delta, the JUnit
properties, steady-state trends, session drift, the summary and the timeline
all loop over :data:`MEASURES`. Adding a measure is one row here plus its
reader. Ignore patterns are applied in the readers, so that every consumer
counts what a test's verdict counts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from pytest_goleak.judge.identity import count_by_identity
from pytest_goleak.read.backend import Lack
from pytest_goleak.read.snapshot import Part, Snapshot
from pytest_goleak.units import MiB, format_size, parse_count, parse_size


class Ignores(Protocol):
    """The ignore patterns a reading is counted under (a :class:`~pytest_goleak.judge.budget.Budget` has them)."""

    @property
    def ignore(self) -> tuple[str, ...]: ...

    @property
    def ignore_fds(self) -> tuple[str, ...]: ...


@dataclass(frozen=True)
class NoIgnores:
    ignore: tuple[str, ...] = ()
    ignore_fds: tuple[str, ...] = ()


NOTHING_IGNORED = NoIgnores()
Reader = Callable[[Snapshot, Ignores], int | None]


@dataclass(frozen=True, eq=False)  # one object per measure: compared by identity, as `in budget.checked` does per test
class Measure:
    """One thing a test can leak, and everything the plugin says and does about it."""

    name: str  # the budget's key: marker argument, goleak_NAME, --goleak-NAME
    help: str  # what the budget allows, for the ini/flag help
    default: int | None  # the per-test budget; None: read and reported, not checked
    parts: frozenset[Part]  # the parts of a reading it is read from
    read: Reader  # its value in one reading, ignore patterns applied
    junit: str  # the JUnit property that carries a test's growth
    title: str  # its chart's title in the timeline
    charted: bool = True  # the summary's sparklines and the timeline chart it
    session: bool = False  # a session-wide budget (goleak_session_NAME) can limit it
    bytes: bool = False  # its values are byte counts
    noun: str = ""  # for a count of things that leak: "3 goroutines leaked" rather than "goroutines +3"
    label: str = ""  # its words in a report phrase, where they differ from its name
    # How much it grew between two readings, where that is not after - before of ``read``.
    grew: Callable[[Snapshot, Snapshot, Ignores], int | None] | None = None
    drift: int = 3  # timeline: a climb at least this large is marked as drift
    tolerance: int = 0  # a change this small is noise: in a steady-state step, and near the timeline's low
    # Charted as growth since the first test: its figure in one reading carries an offset that means
    # nothing alone (off-heap counts memory the runtime reserved but never touched, so it can be negative).
    from_first: bool = False
    # What a backend must read for it to be measured at all; without it, "not measured on this platform".
    needs: frozenset[Lack] = frozenset()
    # What a backend may lack and still measure it, with less to show in a failure (see backend.py).
    limits: frozenset[Lack] = frozenset()

    def measured(self, lacks: frozenset[Lack]) -> bool:
        """Whether a backend lacking ``lacks`` reads it at all."""
        return not self.needs & lacks

    def availability(self, lacks: frozenset[Lack]) -> str:
        """What it can do on a backend lacking ``lacks``: "" (all), not measured on this platform, or its limits."""
        missing = [lack.value for lack in Lack if lack in self.needs & lacks]
        if missing:
            return f"not measured on this platform ({'; '.join(missing)})"
        return "; ".join(lack.value for lack in Lack if lack in self.limits & lacks)

    def parse(self, value: object, where: str) -> int:
        return parse_size(value, where) if self.bytes else parse_count(value, where)

    def show(self, value: float) -> str:
        """A value as a user reads it: ``4.0 MiB``, ``12``."""
        return format_size(value) if self.bytes else f"{value:.0f}"

    def signed(self, value: float) -> str:
        return ("+" if value >= 0 else "") + self.show(value)

    def phrase(self, grew: int, allowed: int | None = None) -> str:
        """``3 goroutines leaked (budget 0)``, ``heap +4.0 MiB (budget 1.0 MiB)``, ``fds +1``."""
        if self.noun:
            text = f"{grew} {self.noun}{'s' if grew != 1 else ''} leaked"
        else:
            text = f"{self.label or self.name} {self.signed(grew)}"
        return text if allowed is None else f"{text} (budget {self.show(allowed)})"

    def chart_values(self, values: Sequence[int | None]) -> list[int | None]:
        """The values its charts show: as read, or as growth since the first known one."""
        if not self.from_first:
            return list(values)
        first = next((v for v in values if v is not None), 0)
        return [None if v is None else v - first for v in values]

    def shown_in_chart(self, value: float) -> str:
        return self.signed(value) if self.from_first else self.show(value)

    def rate(self, slope: float) -> str:
        """Growth per steady-state iteration: ``heap +24.1 KiB per iteration``, ``+1 goroutine per iteration``."""
        if self.bytes:
            return f"{self.label or self.name} +{format_size(slope)} per iteration"
        if self.noun:
            return f"+{slope:.3g} {self.noun}{'s' if round(slope, 3) != 1 else ''} per iteration"
        return f"{self.name} +{slope:.3g} per iteration"


def _goroutines(snapshot: Snapshot, ignores: Ignores) -> int:
    return sum(count_by_identity(snapshot.goroutines, ignores.ignore).values())


def _heap(snapshot: Snapshot, ignores: Ignores) -> int | None:
    heap = snapshot.heap
    return heap.live_bytes if heap is not None and heap.collected else None  # uncollected: garbage too


def _heap_grew(before: Snapshot, after: Snapshot, ignores: Ignores) -> int | None:
    # From a live heap (after a forced GC) to one read without a GC, the growth is a bound: the later
    # HeapAlloc counts garbage too, never less than what is live. From a bound, nothing is known.
    old, new = before.heap, after.heap
    return None if old is None or new is None or not old.collected else new.live_bytes - old.live_bytes


def _offheap_range(snapshot: Snapshot) -> tuple[int, int] | None:
    """Off-heap memory at the moment of the heap profile's MemStats, as the bounds the reading allows.

    Resident memory that is not a page of a mapped file, less what the Go runtime holds from
    the OS (Sys - HeapReleased), leaves C's malloc, mmap'd regions and a C library's caches.
    The scavenger returning pages lowers both sides alike, and Go garbage raises both alike;
    but the profile's own GC wakes the scavenger, which can return megabytes between the MemStats
    and a /proc read. Resident memory is read just before and just after the profile, so the
    true figure lies between the two. And of the heap pages the runtime holds idle, some may
    never have been touched (mapped for a burst of allocation, not yet reused): those are held
    but not resident, so the upper bound counts none of the idle pages as resident. A pure-Go
    registry pushing 64 MiB blobs swung the lower bound alone by 5 MiB a test on idle pages.
    """
    heap, process = snapshot.heap, snapshot.process
    if heap is None or process is None or heap.runtime_held is None:
        return None
    earlier = process.resident_anon if snapshot.resident_before_heap is None else snapshot.resident_before_heap
    low = min(earlier, process.resident_anon) - heap.runtime_held
    return low, max(earlier, process.resident_anon) - heap.runtime_held + heap.runtime_idle


def _offheap(snapshot: Snapshot, ignores: Ignores) -> int | None:
    bounds = _offheap_range(snapshot)
    return None if bounds is None else bounds[0]


def _offheap_grew(before: Snapshot, after: Snapshot, ignores: Ignores) -> int | None:
    # The least growth the two readings allow: pages the scavenger returned mid-reading are not a leak.
    old, new = _offheap_range(before), _offheap_range(after)
    return None if old is None or new is None else new[0] - old[1]


def _fds(snapshot: Snapshot, ignores: Ignores) -> int | None:
    return None if snapshot.process is None else snapshot.process.fd_count(ignores.ignore_fds)


def _children(snapshot: Snapshot, ignores: Ignores) -> int | None:
    return None if snapshot.process is None else len(snapshot.process.children)


def _threads(snapshot: Snapshot, ignores: Ignores) -> int | None:
    return None if snapshot.process is None else snapshot.process.threads


def _tmpfiles(snapshot: Snapshot, ignores: Ignores) -> int | None:
    return None if snapshot.tmpfiles is None else len(snapshot.tmpfiles)


# Goroutine growth is not after - before of this count but a sum over
# identities (see diff.py); the count is what drift and the timeline chart.
GOROUTINES = Measure(
    "goroutines",
    "goroutines a test may leak",
    0,
    frozenset({Part.GOROUTINES}),
    _goroutines,
    junit="goroutines_leaked",
    title="goroutines",
    session=True,
    noun="goroutine",
)
HEAP = Measure(
    "heap",
    "live heap growth a test may leave, e.g. 1MiB",
    MiB,
    frozenset({Part.HEAP}),
    _heap,
    junit="heap_delta_bytes",
    title="live heap",
    session=True,
    bytes=True,
    grew=_heap_grew,
    drift=MiB,
    tolerance=64 << 10,
)
FDS = Measure(
    "fds",
    "file descriptors a test may leak",
    0,
    frozenset({Part.PROCESS}),
    _fds,
    junit="fds_delta",
    title="file descriptors",
    session=True,
    limits=frozenset({Lack.FD_NAMES}),
)
CHILDREN = Measure(
    "children",
    "child processes a test may leave",
    0,
    frozenset({Part.PROCESS}),
    _children,
    junit="children_delta",
    title="child processes",
    charted=False,
    limits=frozenset({Lack.SUBREAPER}),
)
THREADS = Measure(
    "threads",
    "OS threads a test may add",
    None,
    frozenset({Part.PROCESS}),
    _threads,
    junit="threads_delta",
    title="OS threads",
)
TMPFILES = Measure(
    "tmpfiles",
    "files and directories a test may leave in the service's TMPDIR",
    0,
    frozenset({Part.TMPDIR}),
    _tmpfiles,
    junit="tmpfiles_delta",
    title="temp files",
    charted=False,
)

OFFHEAP = Measure(
    "offheap",
    "resident memory outside the Go runtime's heap, stacks and metadata a test may add (cgo, mmap), e.g. 8MiB",
    8 * MiB,
    frozenset({Part.MEMSTATS, Part.PROCESS, Part.MAPPINGS}),  # the maps only name what grew, in a failure
    _offheap,
    junit="offheap_delta_bytes",
    title="off-heap memory",
    session=True,
    bytes=True,
    label="off-heap memory",
    grew=_offheap_grew,
    drift=4 * MiB,
    tolerance=512 << 10,
    from_first=True,
    limits=frozenset({Lack.RESIDENT_SPLIT, Lack.MAPPINGS}),
)

MEASURES: tuple[Measure, ...] = (GOROUTINES, HEAP, FDS, CHILDREN, THREADS, TMPFILES, OFFHEAP)
BY_NAME: Mapping[str, Measure] = {measure.name: measure for measure in MEASURES}
CHARTED = tuple(measure for measure in MEASURES if measure.charted)
SESSION = tuple(measure for measure in MEASURES if measure.session)


def values(snapshot: Snapshot, ignores: Ignores = NOTHING_IGNORED) -> dict[str, int | None]:
    """Every measure's value in ``snapshot``, by name; None for a part the reading does not hold."""
    return {
        measure.name: measure.read(snapshot, ignores) if measure.measured(snapshot.lacks) else None
        for measure in MEASURES
    }


def not_measured(lacks: frozenset[Lack], measures: Sequence[Measure] = MEASURES) -> tuple[Measure, ...]:
    """The measures a backend lacking ``lacks`` cannot read at all."""
    return tuple(measure for measure in measures if not measure.measured(lacks))
