"""``Snapshot``: one reading of a service's goroutines, heap and process state."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pytest_goleak.pprof import GoroutineProfile, HeapProfile, PprofClient
from pytest_goleak.procfs import ProcessState, read_process
from pytest_goleak.tmpdir import read_tmpdir


@dataclass(frozen=True)
class Snapshot:
    """What the service held at one moment.

    ``heap`` is None when the heap is not checked (a forced GC is the dearest
    part of a reading), ``process`` when there is no local PID to read.
    """

    goroutines: GoroutineProfile
    heap: HeapProfile | None = None
    process: ProcessState | None = None
    tmpfiles: Mapping[str, int] | None = None  # the service's TMPDIR, when the plugin gave it one
    taken_at: float = field(default_factory=time.time)

    @property
    def goroutine_count(self) -> int:
        return self.goroutines.total

    @property
    def heap_bytes(self) -> int | None:
        return None if self.heap is None else self.heap.live_bytes

    @property
    def fd_count(self) -> int | None:
        return None if self.process is None else len(self.process.fds)

    @property
    def child_count(self) -> int | None:
        return None if self.process is None else len(self.process.children)

    @property
    def tmpfile_count(self) -> int | None:
        return None if self.tmpfiles is None else len(self.tmpfiles)

    @property
    def thread_count(self) -> int | None:
        return None if self.process is None else self.process.threads


class Snapshotter:
    """Takes snapshots of one service through pprof and, given a PID, /proc."""

    def __init__(self, pprof: PprofClient, pid: int | None, tmpdir: Path | None = None) -> None:
        self.pprof = pprof
        self.pid = pid
        self.tmpdir = tmpdir

    def take(self, heap: bool = True, sockets: bool = False, tmpfiles: bool = True) -> Snapshot:
        """One reading; ``sockets`` describes socket fds too (fd ignore patterns match on it).

        ``heap`` and ``tmpfiles`` can be left out when unchecked: a forced GC,
        and a walk of the service's TMPDIR.
        """
        # Goroutines first: the forced GC of the heap read would otherwise
        # finish off goroutines a test left winding down, between the two.
        goroutines = self.pprof.goroutines()
        heap_profile = self.pprof.heap() if heap else None
        process = read_process(self.pid, describe_sockets=sockets) if self.pid is not None else None
        entries = read_tmpdir(self.tmpdir) if tmpfiles and self.tmpdir is not None else None
        return Snapshot(goroutines, heap_profile, process, entries)
