"""Hand-built readings for unit tests of the pure core (diff, check, report): no Go, no service.

Profiles are built from their dataclasses; a heap profile is parsed from the
``heap?debug=1`` text a Go service would serve, so that its allocation sites
are read the way the plugin reads real ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import cast

from pytest_goleak.errors import GoleakError
from pytest_goleak.read.backend import PROC, Backend
from pytest_goleak.read.pprof import Frame, GoroutineGroup, GoroutineProfile, HeapProfile, Stack, parse_heap_profile
from pytest_goleak.read.procfs import ChildInfo, ProcessState
from pytest_goleak.read.snapshot import Part, Snapshot, Snapshotter

PID = 4242


def stack(*functions: str) -> Stack:
    """A stack from innermost to outermost function, as profiles list it; every frame gets a file and line."""
    return tuple(Frame(function, "/src/main.go", 10 + i) for i, function in enumerate(functions))


def goroutine(*functions: str) -> Stack:
    """A goroutine's profile stack: ``functions`` innermost first, then ``runtime.goexit`` as the runtime shows it."""
    return stack(*functions, "runtime.goexit")


def profile(*groups: tuple[int, Stack]) -> GoroutineProfile:
    """A goroutine profile of (count, stack) samples."""
    return GoroutineProfile(tuple(GoroutineGroup(count, frames) for count, frames in groups))


# The goroutines any service shows: its main goroutine and the one serving the profile request.
MAIN = goroutine("internal/poll.runtime_pollWait", "net/http.(*Server).Serve", "main.main", "runtime.main")
PPROF_HANDLER = goroutine("runtime/pprof.writeGoroutine", "net/http/pprof.handler.ServeHTTP", "net/http.(*conn).serve")
IDLE = profile((1, MAIN), (1, PPROF_HANDLER))


@dataclass(frozen=True)
class Site:
    """One record of a ``heap?debug=1`` profile: live objects and bytes at an allocation stack."""

    objects: int
    bytes: int
    functions: tuple[str, ...]


def heap(live: int, *sites: Site, rate: int = 1) -> HeapProfile:
    """A heap profile parsed from the text Go serves at ``heap?gc=1&debug=1``.

    ``rate`` is ``runtime.MemProfileRate``; at 1 every allocation is sampled,
    so a site's bytes are exact rather than unsampled estimates.
    """
    lines = [f"heap profile: 0: 0 [0: 0] @ heap/{2 * rate}"]
    address = 0x4A0000
    for site in sites:
        addresses = [address + 0x100 * i for i in range(len(site.functions))]
        address += 0x10000
        lines.append(
            f"{site.objects}: {site.bytes} [{site.objects}: {site.bytes}] @" + "".join(f" 0x{a:x}" for a in addresses)
        )
        for i, (a, function) in enumerate(zip(addresses, site.functions, strict=True)):
            lines.append(f"#\t0x{a:x}\t{function}+0x1f\t/src/main.go:{100 + i}")
        lines.append("")
    lines += ["", "# runtime.MemStats", f"# HeapAlloc = {live}", "# HeapSys = 0"]
    return parse_heap_profile("\n".join(lines).encode())


def child(pid: int, cmdline: str = "sleep 60", status: str = "sleeping", start_time: int = 1000) -> ChildInfo:
    return ChildInfo(pid, PID, cmdline.split()[0] if cmdline else "sh", cmdline, status, start_time)


def process(
    fds: Mapping[int, str] | None = None,
    children: Iterable[ChildInfo] = (),
    threads: int = 6,
    sockets: Mapping[int, str] | None = None,
) -> ProcessState:
    """A /proc reading of the service; by default stdio and its listening socket."""
    if fds is None:
        fds = {0: "/dev/null", 1: "pipe:[11]", 2: "pipe:[12]", 3: "socket:[100]"}
    return ProcessState(PID, 5000, dict(fds), tuple(children), threads, sockets)


def snapshot(
    goroutines: GoroutineProfile = IDLE,
    heap: HeapProfile | None = None,
    process: ProcessState | None = None,
    tmpfiles: Mapping[str, int] | None = None,
) -> Snapshot:
    return Snapshot(goroutines, heap, process, tmpfiles, taken_at=0.0)


class FakeTime:
    """A clock that only moves when slept on (or when a reading is said to take time)."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@dataclass
class FakePprof:
    """What ``gather_evidence`` asks of a service's pprof: the text dump and the runtime's leak proof."""

    dump: str = ""
    proving: bool = False  # the dump comes from the goroutineleak profile: proven goroutines are marked
    error: GoleakError | None = None  # raised by goroutine_dump, as a service that stopped answering would
    dumps_read: int = 0

    def goroutine_dump(self) -> str:
        self.dumps_read += 1
        if self.error is not None:
            raise self.error
        return self.dump

    def proving_dump(self) -> tuple[str, bool]:
        return self.goroutine_dump(), self.proving

    # The pprof index, as the check of a kept reading asks it: its answer is the scripted count.
    index_count: int | None = None
    indexes_asked: int = 0

    def send(self, profile: str) -> str:
        assert profile == "", f"only the index is asked this way here, not {profile!r}"
        self.indexes_asked += 1
        return profile

    def goroutine_count(self, index: str) -> int | None:
        return self.index_count

    def close(self) -> None:
        pass


@dataclass
class FakeSnapshotter:
    """Hands out a scripted sequence of readings and records what each ``take`` was asked for."""

    readings: Sequence[Snapshot]
    pprof: FakePprof = field(default_factory=FakePprof)
    pid: int | None = None
    time: FakeTime | None = None
    reading_takes: float = 0.0  # seconds of the fake clock each reading costs
    asked: list[tuple[frozenset[Part], bool]] = field(default_factory=list)

    tmpdir: str | None = None
    backend: Backend = PROC
    kept_goroutines: list[GoroutineProfile | None] = field(default_factory=list)  # what each take was given

    def serves(self, part: Part) -> bool:
        if part in (Part.PROCESS, Part.MAPPINGS):
            return self.pid is not None
        return part is not Part.TMPDIR or self.tmpdir is not None

    def take(
        self,
        parts: frozenset[Part],
        sockets: bool = False,
        goroutines: GoroutineProfile | None = None,
        late_process: bool = False,
    ) -> Snapshot:
        if len(self.asked) >= len(self.readings):
            raise AssertionError(f"reading {len(self.asked) + 1} asked for; only {len(self.readings)} scripted")
        reading = self.readings[len(self.asked)]
        self.asked.append((parts, sockets))
        self.kept_goroutines.append(goroutines)
        if self.time is not None:
            self.time.now += self.reading_takes
        return reading

    def as_snapshotter(self) -> Snapshotter:
        """This fake, typed as what LeakCheck and gather_evidence take (they use take, serves, pprof and pid)."""
        return cast(Snapshotter, self)
