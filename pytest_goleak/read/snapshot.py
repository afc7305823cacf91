"""``Snapshot``: one reading of a service's goroutines, heap and process state."""

from __future__ import annotations

import enum
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from pytest_goleak.read.backend import PROC, Backend, Lack
from pytest_goleak.read.pprof import (
    GoroutineProfile,
    HeapProfile,
    PprofClient,
)
from pytest_goleak.read.procfs import ProcessState
from pytest_goleak.read.tmpdir import read_tmpdir


class Part(enum.Enum):
    """A part of a reading, read from one source; a measure is read from one part."""

    GOROUTINES = "goroutine profile"
    HEAP = "heap profile after a forced GC"
    MEMSTATS = "the runtime's MemStats (a heap profile, with no GC unless HEAP is read too)"
    PROCESS = "the process (/proc, or psutil's portable calls)"
    MAPPINGS = "/proc/PID/maps (not on the portable backend)"
    TMPDIR = "the service's TMPDIR"


@dataclass(frozen=True)
class Snapshot:
    """What the service held at one moment.

    ``heap`` is None when the heap was not read (a forced GC is the dearest
    part of a reading), ``process`` when there is no local PID to read,
    ``tmpfiles`` when the service has no private TMPDIR or it was not walked.
    """

    goroutines: GoroutineProfile
    heap: HeapProfile | None = None
    process: ProcessState | None = None
    tmpfiles: Mapping[str, int] | None = None  # the service's TMPDIR, when the plugin gave it one
    # Resident anonymous memory read before the heap profile; ``process`` holds the figure read just
    # after. The profile's MemStats fall between the two, and the scavenger may return pages meanwhile.
    resident_before_heap: int | None = None
    # Bytes the service had read when the reading ended, after its last answer (see judge/reuse.py).
    read_bytes: int | None = None
    lacks: frozenset[Lack] = frozenset()  # what the backend that took it cannot read (see backend.py)
    taken_at: float = field(default_factory=time.time)

    def has(self, part: Part) -> bool:
        """Whether this reading holds ``part`` (asked per part of a budget, before every test: nothing is parsed)."""
        process = self.process
        if part is Part.GOROUTINES:
            return True
        if part is Part.HEAP:
            return self.heap is not None and self.heap.collected
        if part is Part.MEMSTATS:
            return self.heap is not None
        if part is Part.PROCESS:
            return process is not None
        if part is Part.MAPPINGS:
            return process is not None and process.maps is not None
        return self.tmpfiles is not None


ALL_PARTS = frozenset(Part)


def bounding(parts: frozenset[Part]) -> frozenset[Part]:
    """``parts`` with the heap read without a forced GC: live bytes plus garbage, a bound (see judge/settle.py)."""
    return parts - {Part.HEAP} | {Part.MEMSTATS} if Part.HEAP in parts else parts


# Always read: cheap, and what an unchecked measure (threads) still reports.
# The heap (a forced GC) and the TMPDIR walk are read only when checked.
CHEAP_PARTS = frozenset({Part.GOROUTINES, Part.PROCESS})


class Snapshotter:
    """Takes snapshots of one service through pprof and, given a PID, its ``backend`` (/proc by default)."""

    def __init__(
        self, pprof: PprofClient, pid: int | None, tmpdir: Path | None = None, backend: Backend = PROC
    ) -> None:
        self.pprof = pprof
        self.pid = pid
        self.tmpdir = tmpdir
        self.backend = backend

    def serves(self, part: Part) -> bool:
        """Whether this service can be read for ``part`` at all."""
        if part is Part.MAPPINGS:
            return self.pid is not None and Lack.MAPPINGS not in self.backend.lacks
        if part is Part.PROCESS:
            return self.pid is not None
        return part is not Part.TMPDIR or self.tmpdir is not None

    def take(
        self,
        parts: frozenset[Part] = ALL_PARTS,
        sockets: bool = False,
        goroutines: GoroutineProfile | None = None,
        late_process: bool = False,
    ) -> Snapshot:
        """One reading of ``parts``; ``sockets`` describes socket fds too (fd ignore patterns match on it).

        The goroutine profile is always read, unless ``goroutines`` is given
        (a kept reading's, still current: see judge/reuse.py). The heap (a forced GC)
        and the TMPDIR walk are left out when no checked measure needs them.
        ``late_process`` reads /proc last rather than while the service answers:
        a before-reading's fds must not count a connection that is still closing,
        or the leak of one fd during the test would read as no growth.
        """
        try:
            return self._read(parts, sockets, goroutines, late_process)
        except BaseException:
            self.pprof.close()  # a request may be pending: its answer must not be read as the next one's
            raise

    def _read(
        self, parts: frozenset[Part], sockets: bool, goroutines: GoroutineProfile | None, late_process: bool
    ) -> Snapshot:
        pprof, pid, backend = self.pprof, self.pid, self.backend
        proc = (Part.PROCESS in parts or Part.MAPPINGS in parts) and pid is not None
        collect = Part.HEAP in parts
        heap_wanted = collect or Part.MEMSTATS in parts
        resident_before = backend.resident(pid) if proc and late_process and heap_wanted and pid is not None else None
        # Every request at once: the service answers them in order while this reads the TMPDIR and /proc and
        # parses. The goroutines go before a forced GC, which would otherwise finish off goroutines a test left
        # winding down between the two; without a GC the heap goes first, so that the goroutine profile's own
        # garbage does not count in the heap's bound (see judge/settle.py).
        heap_first = pprof.send_heap(collect=False) if heap_wanted and not collect else None
        answer = pprof.send_goroutines() if goroutines is None else None
        heap_after = pprof.send_heap(collect=True) if collect else None
        entries = read_tmpdir(self.tmpdir) if Part.TMPDIR in parts and self.tmpdir is not None else None
        # Resident memory is read before and after the heap profile's MemStats: the true figure lies between.
        process = self._read_proc(parts, sockets) if proc and not late_process else None
        heap_profile = pprof.heap_of(heap_first, collected=False) if heap_first is not None else None
        if answer is not None:
            goroutines = pprof.goroutines_of(answer)  # read and parsed during the forced GC
        if heap_after is not None:
            heap_profile = pprof.heap_of(heap_after, collected=True)
        if process is not None and pid is not None and heap_wanted:
            resident_before = process.resident_anon
            process = replace(process, resident_anon=backend.resident(pid))
        assert goroutines is not None
        # A profile that may have cut a stack is counted from the dump (see goroutines.counted). Read after
        # the GC, it can only have lost goroutines that were ending: a leaked one is still there.
        if answer is not None:
            goroutines = pprof.with_dump(goroutines)
        if proc and process is None:
            process = self._read_proc(parts, sockets)
        read = backend.bytes_read(pid) if pid is not None else None  # last: after the service's last answer
        return Snapshot(
            goroutines,
            heap_profile,
            process,
            entries,
            resident_before_heap=resident_before,
            read_bytes=read,
            lacks=backend.lacks,
        )

    def _read_proc(self, parts: frozenset[Part], sockets: bool) -> ProcessState:
        assert self.pid is not None
        return self.backend.read_process(self.pid, describe_sockets=sockets, mappings=self._maps(parts))

    def _maps(self, parts: frozenset[Part]) -> bool:
        return Part.MAPPINGS in parts and self.serves(Part.MAPPINGS)
