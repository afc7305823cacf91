"""The portable backend: a process read through psutil's calls that macOS has too, never ``/proc``.

It gives the same :class:`~pytest_goleak.read.procfs.ProcessState` as procfs.py, with what psutil can
say on every platform: the fd count (``num_fds``), regular files (``open_files``) and sockets
(``net_connections``) by fd, descendants (from ppids), threads and resident memory. What it cannot
say is listed once, in backend.py's ``Lack``: fds that are neither a file nor a socket are counted
(``unnamed_fds``) but not named; there is no bytes-read counter and no memory mappings.

On Linux it still goes through psutil, only through these calls: that is how the portable path
is run and tested where macOS is not at hand (``GOLEAK_BACKEND=portable``).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import psutil

from pytest_goleak.errors import GoleakError, ProcessGone
from pytest_goleak.read.procfs import ChildInfo, MemoryMapping, ProcessState, format_connection, short_cmdline

__all__ = ["bytes_read", "describe_fds", "read_mappings", "read_process", "resident"]

# Its start time in hundredths of a second: like /proc's clock ticks, it tells a reused pid apart.
_TICKS = 100


def _start(process: psutil.Process) -> int:
    return round(process.create_time() * _TICKS)


def _gone(pid: int, why: str = "no longer exists") -> ProcessGone:
    return ProcessGone(f"process {pid} {why}")


def _target(pid: int) -> tuple[psutil.Process, int]:
    """The process and its start time; ProcessGone for a process that is gone or a zombie."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            raise _gone(pid, "has exited (zombie, not yet reaped)")
        return process, _start(process)
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        raise _gone(pid) from None


def _denied(pid: int, what: str) -> GoleakError:
    return GoleakError(f"cannot read the {what} of process {pid}: permission denied (run the tests as its owner)")


def _fds(process: psutil.Process) -> tuple[dict[int, str], dict[int, str], int]:
    """Named fds (fd -> target), sockets (fd -> description) and how many fds there are in all."""
    count = process.num_fds()
    fds = {f.fd: f.path for f in process.open_files() if f.fd >= 0}
    sockets: dict[int, str] = {}
    for conn in process.net_connections(kind="all"):
        described = format_connection(conn)
        if conn.fd < 0 or described is None:
            continue
        # The target leaves the state out: a connection going from ESTABLISHED to CLOSE_WAIT is the same fd.
        fds[conn.fd] = f"socket:{format_connection(conn, status=False)}"
        sockets[conn.fd] = described
    return fds, sockets, count


def _child(process: psutil.Process) -> ChildInfo | None:
    try:
        with process.oneshot():
            return ChildInfo(
                pid=process.pid,
                ppid=process.ppid(),
                name=process.name(),
                cmdline=short_cmdline(" ".join(process.cmdline())),
                status=process.status(),
                start_time=_start(process),
            )
    except psutil.ZombieProcess:
        # A zombie's command line is gone, as in /proc; what is left still names it.
        try:
            return ChildInfo(process.pid, process.ppid(), process.name(), "", psutil.STATUS_ZOMBIE, _start(process))
        except psutil.Error:
            return None
    except psutil.Error:
        return None  # exited meanwhile, or not ours


def resident(pid: int) -> int:
    """Resident memory as the platform gives it: macOS's ``phys_footprint`` where psutil has it, else ``rss``.

    ``rss`` counts the pages of mapped files too (the binary's text, among them), which /proc's
    ``RssAnon + RssShmem`` leaves out; ``phys_footprint`` (psutil 8, macOS) leaves them out as well.
    """
    try:
        info = psutil.Process(pid).memory_info()
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        raise _gone(pid) from None
    except psutil.AccessDenied:
        raise _denied(pid, "memory") from None
    footprint = getattr(info, "phys_footprint", None)
    return int(footprint) if footprint is not None else int(info.rss)


def bytes_read(pid: int) -> int | None:
    """Never known here: psutil's ``io_counters`` is not on macOS (see judge/reuse.py for what that costs)."""
    return None


def read_mappings(pid: int, resident: bool = False) -> tuple[MemoryMapping, ...]:
    """None to give: macOS has no readable map of another process's memory without a privileged call."""
    return ()


def read_process(pid: int, describe_sockets: bool = False, mappings: bool = False) -> ProcessState:
    """One reading of ``pid``, as :func:`pytest_goleak.read.procfs.read_process` takes it, through psutil.

    Sockets are always described (naming them is how their fds are known). ``mappings`` is
    ignored: there are none to read. Raises ProcessGone if the process is gone, a zombie, or
    was replaced mid-read by another with the same pid.
    """
    process, started = _target(pid)
    try:
        with process.oneshot():
            threads = process.num_threads()
        fds, sockets, count = _fds(process)
        children = tuple(
            sorted(
                (child for child in map(_child, process.children(recursive=True)) if child is not None),
                key=lambda child: child.pid,
            )
        )
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        raise _gone(pid) from None
    except psutil.AccessDenied:
        raise _denied(pid, "fds") from None
    memory = resident(pid)
    # Checked again at the end, as procfs does: a process exiting mid-read looks like real closes.
    if _target(pid)[1] != started:
        raise _gone(pid, "exited and its pid was reused")
    return ProcessState(
        pid=pid,
        start_time=started,
        fds=MappingProxyType(fds),
        children=children,
        threads=threads,
        sockets=MappingProxyType(sockets),
        resident_anon=memory,
        # An fd opened or closed between num_fds and the named ones is at worst one off, never below zero.
        unnamed_fds=max(0, count - len(fds)),
    )


def describe_fds(pid: int, fds: Mapping[int, str]) -> dict[int, str]:
    """Report text for each of ``fds``: a socket by its addresses and state now, a file by its path."""
    targets: dict[int, str] = {}
    sockets: dict[int, str] = {}
    try:
        targets, sockets, _ = _fds(psutil.Process(pid))
    except (psutil.Error, OSError):
        pass  # report text: the targets read before still name them
    # psutil maps fds as they are now: only a socket still at the same addresses is the one read before.
    return {
        fd: sockets[fd] if fd in sockets and targets.get(fd) == target else target.removeprefix("socket:")
        for fd, target in sorted(fds.items())
    }
