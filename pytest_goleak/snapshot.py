"""``Snapshot``: one reading of a service's goroutines, heap and process state."""

from __future__ import annotations

import enum
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pytest_goleak.pprof import GoroutineProfile, HeapProfile, PprofClient
from pytest_goleak.procfs import ProcessState, bytes_read, read_process, resident_anon
from pytest_goleak.tmpdir import read_tmpdir


class Part(enum.Enum):
    """A part of a reading, read from one source; a measure is read from one part."""

    GOROUTINES = "goroutine profile"
    HEAP = "heap profile after a forced GC"
    MEMSTATS = "the runtime's MemStats (a heap profile, with no GC unless HEAP is read too)"
    PROCESS = "/proc"
    MAPPINGS = "/proc/PID/maps"
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
    # Resident anonymous memory read just before the heap profile; ``process`` holds the figure read just
    # after. The profile's MemStats fall between the two, and the scavenger may return pages meanwhile.
    resident_before_heap: int | None = None
    # Bytes the service had read when the reading ended, after its last answer (see reuse.py).
    read_bytes: int | None = None
    taken_at: float = field(default_factory=time.time)

    def has(self, part: Part) -> bool:
        """Whether this reading holds ``part``."""
        process = self.process
        held = {
            Part.GOROUTINES: True,
            Part.HEAP: self.heap is not None and self.heap.collected,
            Part.MEMSTATS: self.heap is not None,
            Part.PROCESS: process is not None,
            Part.MAPPINGS: process is not None and process.mappings is not None,
            Part.TMPDIR: self.tmpfiles is not None,
        }
        return held[part]


ALL_PARTS = frozenset(Part)


def bounding(parts: frozenset[Part]) -> frozenset[Part]:
    """``parts`` with the heap read without a forced GC: live bytes plus garbage, an upper bound (see check.py)."""
    return parts - {Part.HEAP} | {Part.MEMSTATS} if Part.HEAP in parts else parts


# Always read: cheap, and what an unchecked measure (threads) still reports.
# The heap (a forced GC) and the TMPDIR walk are read only when checked.
CHEAP_PARTS = frozenset({Part.GOROUTINES, Part.PROCESS})


class Snapshotter:
    """Takes snapshots of one service through pprof and, given a PID, /proc."""

    def __init__(self, pprof: PprofClient, pid: int | None, tmpdir: Path | None = None) -> None:
        self.pprof = pprof
        self.pid = pid
        self.tmpdir = tmpdir

    def serves(self, part: Part) -> bool:
        """Whether this service can be read for ``part`` at all."""
        if part in (Part.PROCESS, Part.MAPPINGS):
            return self.pid is not None
        return part is not Part.TMPDIR or self.tmpdir is not None

    def take(
        self, parts: frozenset[Part] = ALL_PARTS, sockets: bool = False, goroutines: GoroutineProfile | None = None
    ) -> Snapshot:
        """One reading of ``parts``; ``sockets`` describes socket fds too (fd ignore patterns match on it).

        The goroutine profile is always read, unless ``goroutines`` is given
        (a kept reading's, still current: see reuse.py). The heap (a forced GC)
        and the TMPDIR walk are left out when no checked measure needs them.
        """
        # Goroutines first: the forced GC of the heap read would otherwise
        # finish off goroutines a test left winding down, between the two.
        if goroutines is None:
            goroutines = self.pprof.goroutines()
        heap_profile, resident = None, None
        if Part.HEAP in parts or Part.MEMSTATS in parts:
            if Part.PROCESS in parts and self.pid is not None:
                resident = resident_anon(self.pid)
            heap_profile = self.pprof.heap(collect=Part.HEAP in parts)
        process = None
        if (Part.PROCESS in parts or Part.MAPPINGS in parts) and self.pid is not None:
            process = read_process(self.pid, describe_sockets=sockets, mappings=Part.MAPPINGS in parts)
        entries = read_tmpdir(self.tmpdir) if Part.TMPDIR in parts and self.tmpdir is not None else None
        read = bytes_read(self.pid) if self.pid is not None else None
        return Snapshot(goroutines, heap_profile, process, entries, resident_before_heap=resident, read_bytes=read)
