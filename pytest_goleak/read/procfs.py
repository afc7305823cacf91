"""File descriptors, child processes and threads of a PID (psutil, /proc): the /proc backend.

Linux only: everything here reads ``/proc`` directly (or through psutil's
Linux backend); ``portable.py`` reads the same ``ProcessState`` through psutil's
portable calls elsewhere, and ``backend.py`` chooses between them.
:func:`read_process` is the cheap snapshot taken before and after every test;
:func:`describe_fds` turns the fds a test leaked into report text and only runs when a test fails, so it may be slower.

A process that no longer exists, or has exited and is a zombie waiting to be
reaped, is "gone": a zombie has already closed its fds and lost its threads,
so a reading of it would only produce bogus "everything was closed" diffs.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from fnmatch import fnmatchcase
from types import MappingProxyType
from typing import TYPE_CHECKING, TypeVar

import psutil

from pytest_goleak.errors import GoleakError, ProcessGone
from pytest_goleak.units import format_size

if TYPE_CHECKING:
    from psutil._ntuples import pconn

__all__ = [
    "ChildInfo",
    "ProcessState",
    "describe_fds",
    "format_child",
    "format_connection",
    "new_children",
    "new_fds",
    "read_process",
]

# The kernel's one-letter states mapped to the words psutil uses (its own
# table is private and not every word has a public constant).
_STATUSES: Mapping[str, str] = {
    "R": "running",
    "S": "sleeping",
    "D": "disk-sleep",
    "T": "stopped",
    "t": "tracing-stop",
    "Z": "zombie",
    "X": "dead",
    "x": "dead",
    "K": "wake-kill",
    "W": "waking",
    "I": "idle",
    "P": "parked",
}
_GONE_STATES = frozenset((b"Z", b"X", b"x"))  # status's State letters of a process that has exited
_CMDLINE_MAX = 200


@dataclass(frozen=True)
class MemoryMapping:
    """One line of ``/proc/PID/maps``, with its resident size when read from ``smaps``."""

    start: int
    end: int
    perms: str
    path: str  # a file, ``[heap]``, ``[stack]``, or "" for anonymous memory
    rss: int = 0

    @property
    def size(self) -> int:
        return self.end - self.start

    @property
    def label(self) -> str:
        return self.path or "[anonymous]"


@dataclass(frozen=True)
class ChildInfo:
    """One descendant (child, grandchild, ...) of the inspected process."""

    pid: int
    ppid: int
    name: str
    """The kernel's ``comm`` (at most 15 characters), e.g. ``sleep``."""
    cmdline: str
    """Arguments joined by spaces, shortened; empty for zombies and kernel
    threads, whose command line the kernel no longer exposes."""
    status: str
    """psutil's status word, e.g. ``sleeping`` or ``zombie``."""
    start_time: int
    """Start time in clock ticks since boot; with ``pid`` it identifies the
    process even if its pid is reused."""


@dataclass(frozen=True)
class ProcessState:
    """One reading of a process: its fds, descendants and thread count."""

    pid: int
    start_time: int
    """Clock ticks since boot; a different value means a different process
    (e.g. the service was restarted) behind the same pid."""
    fds: Mapping[int, str]
    """fd number -> raw ``readlink`` target, e.g. ``socket:[12345]``."""
    children: tuple[ChildInfo, ...]
    """All descendants, sorted by pid."""
    threads: int
    sockets: Mapping[int, str] | None = None
    """fd -> e.g. ``tcp 127.0.0.1:40312 -> 127.0.0.1:5432 ESTABLISHED``, when
    the reading was asked to describe sockets (fd ignore patterns need it)."""
    resident_anon: int = 0
    """Resident anonymous and shared-memory bytes (``RssAnon + RssShmem``): every byte
    of memory the process holds that is not a page of a file it maps. The portable
    backend, which has no such split, puts here what the platform gives (see portable.py)."""
    unnamed_fds: int = 0
    """Open fds counted but not in ``fds``: the portable backend names only files and sockets."""
    maps: str | None = None
    """The text of ``/proc/PID/maps``, when the reading was asked for it; parsed only for a failure's evidence."""

    def fd_count(self, ignore: Sequence[str] = ()) -> int:
        """The fds an fd budget counts: the named ones no ignore pattern matches, and every unnamed one."""
        return len(self.counted_fds(ignore)) + self.unnamed_fds

    @property
    def mappings(self) -> tuple[MemoryMapping, ...] | None:
        """Its memory mappings, when the reading holds them."""
        return None if self.maps is None else parse_mappings(self.maps)

    def counted_fds(self, ignore: Sequence[str] = ()) -> Mapping[int, str]:
        """The fds an fd budget counts: all but those an ignore pattern matches.

        A pattern (shell-style) is matched against the raw target (a path,
        ``pipe:[...]``, ``socket:[...]``) and, for a socket, its description.
        """
        if not ignore:
            return self.fds
        sockets = self.sockets or {}
        return {
            fd: target
            for fd, target in self.fds.items()
            if not any(fnmatchcase(text, pattern) for text in (target, sockets.get(fd, "")) for pattern in ignore)
        }


@dataclass(frozen=True)
class _Stat:
    pid: int
    ppid: int
    comm: str
    state: str
    start_time: int


# What one read of a small /proc file takes: all of stat, status and io, the start of cmdline.
_SMALL_FILE = 4096


def _read(path: str) -> bytes:
    """The first 4 KiB of a /proc file: all of the small ones (stat, status, cmdline's start)."""
    # os.open/os.read skip the io stack: this runs hundreds of times per test.
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return os.read(fd, _SMALL_FILE)
    finally:
        os.close(fd)


def _read_whole(path: str, limit: int) -> bytes:
    """A /proc file to its end, or its first ``limit`` bytes: a seq_file answers a page per read."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return _pread_whole(fd, limit)
    finally:
        os.close(fd)


def _pread_whole(fd: int, limit: int) -> bytes:
    chunks, size = [], 0
    while size < limit and (chunk := os.pread(fd, min(1 << 16, limit - size), size)):
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


class _Held:
    """``/proc/PID`` of one process, held open, with the files of it that every reading reads.

    A file is read again in place (``pread``) rather than opened, read and closed each time: a clean test
    reads the service's ``status``, ``io`` and each of its threads' ``children`` about twenty times (its
    ``stat`` only once per process: see :meth:`start_time`). A read through it fails once the process has
    exited (``ESRCH``), even if its PID names another process by then: the callers' start-time checks then see
    the new one, read afresh.
    """

    def __init__(self, pid: int) -> None:
        self._pid = pid
        self._dir = os.open(f"/proc/{pid}", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self._files: dict[str, int] = {}  # opened on first use, by name relative to /proc/PID
        self._maps: tuple[bytes, str] | None = None  # the maps text last read, and the counts it was read at
        self._start_time: int | None = None

    def start_time(self) -> int:
        """When the held process started: read from its ``stat`` once, as it never changes.

        ``stat`` is the dearest of the small files (the kernel sums every thread's times for it), and the
        held directory already tells this process from a later one with the same PID.
        """
        if self._start_time is None:
            self._start_time = _parse_stat(self._pid, self.read("stat")).start_time
        return self._start_time

    def _opened(self, name: str) -> int:
        fd = self._files.get(name)
        if fd is None:
            fd = self._files[name] = os.open(name, os.O_RDONLY | os.O_CLOEXEC, dir_fd=self._dir)
        return fd

    def fds(self) -> dict[int, str]:
        """Where each of the process's fds points (``/proc/PID/fd``), listed and read through the held directory."""
        fd_dir = self._opened("fd")
        fds: dict[int, str] = {}
        for name in os.listdir(fd_dir):  # a listing of an fd rewinds it after (CPython's listdir)
            try:
                fds[int(name)] = os.readlink(name, dir_fd=fd_dir)
            except FileNotFoundError:
                continue  # closed between listdir and readlink: not an error
        return fds

    def names(self, name: str) -> list[str]:
        """The entries of the directory ``name`` (relative to ``/proc/PID``), e.g. ``task``."""
        return os.listdir(self._opened(name))

    def read(self, name: str, limit: int = _SMALL_FILE) -> bytes:
        """The file ``name`` (relative to ``/proc/PID``), its first ``limit`` bytes."""
        fd = self._opened(name)
        return os.pread(fd, limit, 0) if limit <= _SMALL_FILE else _pread_whole(fd, limit)

    def maps(self, status: bytes) -> str:
        """The ``maps`` text, read again only when ``status`` counts the mapped memory differently.

        The maps are kept only for a failure's evidence, and reading them is the dearest read of a clean
        test's reading. Every mapping made, unmapped, grown or made writable moves one of the kernel's
        counts in ``status``; moving a mapping without changing any count (an unmap and a map of the same
        size) is the one change missed, and it can only mislabel a mapping in a failure's evidence.
        """
        counts = b" ".join(_field(status, field) for field in _MAPPED_COUNTS)
        if self._maps is None or self._maps[0] != counts:
            self._maps = (counts, self.read("maps", _MAPS_BYTES).decode("utf-8", "replace"))
        return self._maps[1]

    def keep_threads(self, tids: Collection[str]) -> None:
        """Close the files of threads that are no longer among ``tids``."""
        for name in [name for name in self._files if name.startswith("task/")]:
            if name.split("/", 2)[1] not in tids:
                os.close(self._files.pop(name))

    def close(self) -> None:
        for fd in self._files.values():
            os.close(fd)
        self._files.clear()
        os.close(self._dir)


# The processes held, in the order first read: the service under test and a few before it (restarts, other
# watched services). Bounded, so that pytest holds a few dozen fds at most.
_HELD: dict[int, _Held] = {}
_HELD_MAX = 4


def _held(pid: int) -> _Held:
    held = _HELD.get(pid)
    if held is None:
        try:
            held = _Held(pid)
        except (FileNotFoundError, ProcessLookupError):
            raise ProcessGone(f"process {pid} no longer exists") from None
        if len(_HELD) >= _HELD_MAX:
            _HELD.pop(next(iter(_HELD))).close()  # the one held longest
        _HELD[pid] = held
    return held


def _release(pid: int) -> None:
    held = _HELD.pop(pid, None)
    if held is not None:
        held.close()


_T = TypeVar("_T")


def _through_held(pid: int, read: Callable[[_Held], _T]) -> _T:
    """``read`` of the process with ``pid``, held; a held one that has exited is replaced once.

    Raises ProcessGone once no process has ``pid``.
    """
    for _ in range(2):
        held = _held(pid)
        try:
            return read(held)
        except (FileNotFoundError, ProcessLookupError):
            _release(pid)  # the process it held has exited: read whichever has the PID now, if any
    raise ProcessGone(f"process {pid} no longer exists")


def _read_own(pid: int, name: str, limit: int = _SMALL_FILE) -> bytes:
    """``/proc/PID/name``, its first ``limit`` bytes, read through the held directory (see _through_held)."""
    return _through_held(pid, lambda held: held.read(name, limit))


def _parse_stat(pid: int, data: bytes) -> _Stat:
    # comm may itself contain ")" and spaces; it ends at the last ")".
    close = data.rindex(b")")
    comm = data[data.index(b"(") + 1 : close].decode(errors="replace")
    # fields[0] is field 3 (state) of proc(5).
    fields = data[close + 2 :].split()
    return _Stat(
        pid=pid,
        ppid=int(fields[1]),
        comm=comm,
        state=fields[0].decode(),
        start_time=int(fields[19]),
    )


def _read_cmdline(pid: int) -> str:
    try:
        raw = _read(f"/proc/{pid}/cmdline")
    except OSError:
        return ""
    return short_cmdline(raw.rstrip(b"\0").replace(b"\0", b" ").decode(errors="replace"))


def short_cmdline(text: str) -> str:
    """A child's command line as a reading keeps it: at most 200 characters, a cut one ending in ``...``."""
    return text if len(text) <= _CMDLINE_MAX else text[: _CMDLINE_MAX - 3] + "..."


def _has_children_files() -> bool:
    # CONFIG_PROC_CHILDREN: most distribution kernels have it, some VMs do not.
    return os.path.exists(f"/proc/self/task/{os.getpid()}/children")


_CHILDREN_FILES = _has_children_files()
# A thread's children file lists every child; read it whole, or a cut PID could name another process.
_CHILDREN_BYTES = 1 << 24


def _children_by_parent(pid: int) -> Callable[[int], list[tuple[int, bytes | None]]]:
    """How to list a process's direct children, as (pid, its stat if already read)."""
    if _CHILDREN_FILES:
        # Cheap: only the service's own threads and descendants are read.
        def direct(parent: int) -> list[tuple[int, bytes | None]]:
            held = _HELD.get(parent) if parent == pid else None  # the process read_process holds: not its children
            try:
                tids = held.names("task") if held is not None else os.listdir(f"/proc/{parent}/task")
            except OSError:
                return []
            found: list[tuple[int, bytes | None]] = []
            for tid in tids:
                name = f"task/{tid}/children"
                try:
                    if held is not None:
                        listed = held.read(name, _CHILDREN_BYTES).split()
                    else:
                        listed = _read_whole(f"/proc/{parent}/{name}", _CHILDREN_BYTES).split()
                    found += [(int(child), None) for child in listed]
                except OSError:
                    continue  # the thread exited
            if held is not None:
                held.keep_threads(tids)
            return found

        return direct
    # Otherwise the only way is the ppid of every process on the machine
    # (psutil does the same), so only the ppid is parsed here.
    by_parent: dict[int, list[tuple[int, bytes | None]]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            data = _read(f"/proc/{name}/stat")
            # "pid (comm) S ppid ...": the state is one letter, so the ppid
            # starts 4 bytes after the last ")".
            start = data.rindex(b")") + 4
            ppid = int(data[start : data.index(b" ", start)])
        except (OSError, ValueError):
            continue  # exited during the scan
        by_parent.setdefault(ppid, []).append((int(name), data))
    return lambda parent: by_parent.get(parent, [])


def _read_descendants(pid: int) -> tuple[ChildInfo, ...]:
    children_of = _children_by_parent(pid)
    found: list[ChildInfo] = []
    seen = {pid}  # the reading is not atomic; pid reuse could fake a cycle
    todo = [pid]
    while todo:
        for child_pid, data in children_of(todo.pop()):
            if child_pid in seen:
                continue
            seen.add(child_pid)
            try:
                stat = _parse_stat(child_pid, data if data is not None else _read(f"/proc/{child_pid}/stat"))
            except (OSError, ValueError):
                continue  # exited meanwhile
            todo.append(child_pid)
            found.append(
                ChildInfo(
                    pid=child_pid,
                    ppid=stat.ppid,
                    name=stat.comm,
                    cmdline=_read_cmdline(child_pid),
                    status=_STATUSES.get(stat.state, stat.state),
                    start_time=stat.start_time,
                )
            )
    found.sort(key=lambda child: child.pid)
    return tuple(found)


_RSS_FIELDS = (b"\nRssAnon:", b"\nRssShmem:")
# The kernel's counts of mapped memory (total, private writable, stack, executable, libraries): see _Held.maps.
_MAPPED_COUNTS = (b"\nVmSize:", b"\nVmData:", b"\nVmStk:", b"\nVmExe:", b"\nVmLib:")


def _field(text: bytes, field: bytes) -> bytes:
    """What follows ``field`` on its line of /proc/PID/status, stripped.

    Found by search: every reading reads status, and a regex scan cost more.
    """
    start = text.find(field)
    if start < 0:
        return b""
    end = text.find(b"\n", start + 1)
    return text[start + len(field) : end if end >= 0 else len(text)].strip()


def _status_kb(status: bytes, field: bytes) -> int:
    """A ``... kB`` field of /proc/PID/status."""
    value = _field(status, field).split()
    return int(value[0]) if value and value[0].isdigit() and len(value[0]) <= 20 else 0


def _resident_of(status: bytes) -> int:
    return sum(_status_kb(status, field) for field in _RSS_FIELDS) * 1024


def resident_anon(pid: int) -> int:
    """Resident anonymous and shared-memory bytes of ``pid`` now (``RssAnon + RssShmem``)."""
    return _resident_of(_read_own(pid, "status"))


_RCHAR = re.compile(rb"^rchar: (\d{1,20})$", re.MULTILINE)


def bytes_read(pid: int) -> int | None:
    """How many bytes ``pid`` has read so far, from sockets, pipes and files alike (``rchar`` of ``/proc/PID/io``).

    None where the kernel does not let this user read it. A request over any
    connection moves it; a read that finds nothing (a keep-alive connection's
    next, empty read) does not.
    """
    try:
        found = _RCHAR.search(_read_own(pid, "io"))
    except PermissionError:
        return None
    return None if found is None else int(found.group(1))


def _parse_mapping(line: str) -> MemoryMapping | None:
    fields = line.split(maxsplit=5)
    if len(fields) < 5 or "-" not in fields[0]:
        return None
    start, end = fields[0].split("-", 1)
    return MemoryMapping(int(start, 16), int(end, 16), fields[1], fields[5].strip() if len(fields) > 5 else "")


def read_mappings(pid: int, resident: bool = False) -> tuple[MemoryMapping, ...]:
    """The process's memory mappings; ``resident`` reads ``smaps`` for each one's resident size (dearer)."""
    return parse_mappings(_read_maps(pid, "smaps" if resident else "maps"))


# Far past any real process: the kernel's default vm.max_map_count (65,530 mappings) is about 10 MiB of maps.
_MAPS_BYTES = 1 << 26


def _read_maps(pid: int, name: str) -> str:
    return _read_own(pid, name, _MAPS_BYTES).decode("utf-8", "replace")


def parse_mappings(text: str) -> tuple[MemoryMapping, ...]:
    """The mappings of a ``maps`` or ``smaps`` text, with each one's resident size from ``smaps``."""
    found: list[MemoryMapping] = []
    for line in text.splitlines():
        if line.startswith("Rss:") and found:
            found[-1] = replace(found[-1], rss=int(line.split()[1]) * 1024)
        elif (mapping := _parse_mapping(line)) is not None:
            found.append(mapping)
    return tuple(found)


@dataclass(frozen=True)
class MappingGrowth:
    """A mapping that is new since the before-reading, or grew in place, with its resident size now."""

    mapping: MemoryMapping
    was: int | None  # its size before, or None if it is new

    def describe(self) -> str:
        """``+16.0 MiB resident  [anonymous]  new, 16.0 MiB``, ``[heap]  grew 132.0 KiB -> 16.1 MiB``."""
        m = self.mapping
        change = (
            f"new, {format_size(m.size)}"
            if self.was is None
            else f"grew {format_size(self.was)} -> {format_size(m.size)}"
        )
        return f"{format_size(m.rss)} resident  {m.label}  {change}  ({m.start:x}-{m.end:x} {m.perms})"


def grown_mappings(before: Sequence[MemoryMapping], after: Sequence[MemoryMapping]) -> list[MappingGrowth]:
    """Mappings of ``after`` (read from smaps) that are new or larger than in ``before``, most resident first.

    A mapping is known by its start address: ``[heap]`` (C's brk heap) grows at its end, an mmap
    is a new start. Mappings with nothing resident are left out.
    """
    old = {m.start: m for m in before}
    grown = []
    for mapping in after:
        previous = old.get(mapping.start)
        if mapping.rss and (previous is None or mapping.end > previous.end):
            grown.append(MappingGrowth(mapping, None if previous is None else previous.size))
    return sorted(grown, key=lambda g: -g.mapping.rss)


def read_process(pid: int, describe_sockets: bool = False, mappings: bool = False) -> ProcessState:
    """Take one cheap reading of *pid*'s fds, descendants and threads.

    ``describe_sockets`` adds each socket's addresses and state, at the price
    of reading the kernel's connection tables.

    Raises :class:`ProcessGone` if *pid* does not exist, is a zombie, or
    exits (or is replaced by a new process with the same pid) mid-read, and
    :class:`GoleakError` if its fds are not readable by this user.
    """
    try:
        # The process read from here on: its start time and fds, through _through_held like every other read.
        held, start_time, fds = _through_held(pid, lambda held: (held, held.start_time(), held.fds()))
        sockets = _described_sockets(pid, fds) if describe_sockets else None
        children = _read_descendants(pid)
        # Read after the fds and children, through the held directory: a process that exited mid-read fails it
        # (ESRCH), however soon its PID is reused, and one that exited but is not yet reaped says so in its
        # state. Either would otherwise yield an empty or partial fd table that looks like real closes.
        status = held.read("status")
        maps = held.maps(status) if mappings else None  # its counts say whether they changed
    except (FileNotFoundError, ProcessLookupError):
        _release(pid)
        raise ProcessGone(f"process {pid} exited while it was read") from None
    except PermissionError:
        raise GoleakError(
            f"cannot read /proc/{pid}/fd: permission denied (run the tests as the user that owns the process)"
        ) from None
    if _field(status, b"\nState:")[:1] in _GONE_STATES:
        raise ProcessGone(f"process {pid} has exited (zombie, not yet reaped)")
    threads = _field(status, b"\nThreads:")
    return ProcessState(
        pid=pid,
        start_time=start_time,
        fds=MappingProxyType(fds),
        children=children,
        threads=int(threads) if threads.isdigit() else 0,
        sockets=None if sockets is None else MappingProxyType(sockets),
        resident_anon=_resident_of(status),
        maps=maps,
    )


def new_fds(before: ProcessState, after: ProcessState, ignore: Sequence[str] = ()) -> dict[int, str]:
    """The fds of *after* whose (fd, target) pair is not in *before*, less those *ignore* matches.

    An fd number reused for another target counts as new.
    """
    old = before.counted_fds(ignore)
    return {fd: target for fd, target in sorted(after.counted_fds(ignore).items()) if old.get(fd) != target}


def new_children(before: ProcessState, after: ProcessState) -> tuple[ChildInfo, ...]:
    """The descendants of *after* that were not there in *before*.

    Matched by pid and start time, so a reused pid counts as new; a child
    that only changed status (e.g. became a zombie) does not.
    """
    old = {(child.pid, child.start_time) for child in before.children}
    return tuple(child for child in after.children if (child.pid, child.start_time) not in old)


def format_child(child: ChildInfo) -> str:
    """One report line, e.g. ``pid 1234 [zombie] true``."""
    return f"pid {child.pid} [{child.status}] {child.cmdline or child.name}"


_INET_PROTOCOLS: Mapping[tuple[int, int], str] = {
    (socket.AF_INET, socket.SOCK_STREAM): "tcp",
    (socket.AF_INET6, socket.SOCK_STREAM): "tcp6",
    (socket.AF_INET, socket.SOCK_DGRAM): "udp",
    (socket.AF_INET6, socket.SOCK_DGRAM): "udp6",
}
_UNIX_TYPES: Mapping[int, str] = {
    socket.SOCK_DGRAM: "dgram ",
    socket.SOCK_SEQPACKET: "seqpacket ",
}


def _format_addr(family: int, addr: object) -> str:
    if not isinstance(addr, tuple) or len(addr) != 2:
        return "*"  # psutil gives () for port 0, i.e. not bound/connected
    ip, port = addr
    return f"[{ip}]:{port}" if family == socket.AF_INET6 else f"{ip}:{port}"


def format_connection(conn: pconn, status: bool = True) -> str | None:
    """``tcp 127.0.0.1:40312 -> 127.0.0.1:5432 ESTABLISHED``; None for a family psutil cannot describe."""
    if conn.family == socket.AF_UNIX:
        kind = _UNIX_TYPES.get(conn.type, "")
        return f"unix {kind}{conn.laddr or '(unnamed)'}"
    protocol = _INET_PROTOCOLS.get((conn.family, conn.type))
    if protocol is None:
        return None
    text = f"{protocol} {_format_addr(conn.family, conn.laddr)}"
    if conn.raddr:
        text += f" -> {_format_addr(conn.family, conn.raddr)}"
    if status and conn.status and conn.status != psutil.CONN_NONE:
        text += f" {conn.status}"
    return text


def _connections_by_fd(pid: int) -> dict[int, str]:
    try:
        conns = psutil.Process(pid).net_connections(kind="all")
    except (psutil.Error, OSError):
        return {}  # gone, zombie or not ours: fall back to raw targets
    described: dict[int, str] = {}
    for conn in conns:
        text = format_connection(conn)
        if conn.fd >= 0 and text is not None:
            described[conn.fd] = text
    return described


def describe_fds(pid: int, fds: Mapping[int, str]) -> dict[int, str]:
    """Human text for each of *fds* (fd -> raw target) of process *pid*.

    Files keep their path (with the kernel's `` (deleted)``), pipes and anon
    inodes their raw target; TCP/UDP/UNIX sockets become e.g.
    ``tcp 127.0.0.1:40312 -> 127.0.0.1:8080 ESTABLISHED``. Sockets psutil
    cannot describe (netlink, another network namespace, or already closed)
    keep ``socket:[inode]``. Never raises for a vanished process: this is
    report text.
    """
    sockets: dict[int, str] = {}
    if any(target.startswith("socket:[") for target in fds.values()):
        sockets = _connections_by_fd(pid)
    described: dict[int, str] = {}
    for fd, target in sorted(fds.items()):
        text = sockets.get(fd)
        if text is not None and _still_points_to(pid, fd, target):
            described[fd] = text
        else:
            described[fd] = target
    return described


def _described_sockets(pid: int, fds: Mapping[int, str]) -> dict[int, str]:
    if not any(target.startswith("socket:[") for target in fds.values()):
        return {}
    return {fd: text for fd, text in _connections_by_fd(pid).items() if fds.get(fd, "").startswith("socket:[")}


def _still_points_to(pid: int, fd: int, target: str) -> bool:
    # psutil maps fds as they are now; the reading may be older and the fd
    # number reused for another socket since.
    try:
        return os.readlink(f"/proc/{pid}/fd/{fd}") == target
    except OSError:
        return False


def listening(pid: int) -> tuple[tuple[int, str], ...]:
    """The TCP ports that ``pid`` and its descendants listen on, as (port, address) sorted by port.

    E.g. ``((9093, "[::]:9093"), (41234, "127.0.0.1:41234"))``. A service the
    plugin starts leads its own process group, so these are the group's
    listeners. Report text: never raises; a process gone, or not ours,
    listens on nothing.
    """
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return ()
    found: set[tuple[int, str]] = set()
    for process in processes:
        try:
            conns = process.net_connections(kind="tcp")
        except (psutil.Error, OSError):
            continue
        for conn in conns:
            if conn.status == psutil.CONN_LISTEN and isinstance(conn.laddr, tuple) and len(conn.laddr) == 2:
                found.add((int(conn.laddr[1]), _format_addr(conn.family, conn.laddr)))
    return tuple(sorted(found))
