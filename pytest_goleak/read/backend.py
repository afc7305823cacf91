"""How a process is read: the one place that chooses between /proc and psutil's portable calls.

Both backends give the same :class:`~pytest_goleak.read.procfs.ProcessState`; what the portable one
cannot give is a :class:`Lack`, listed once here, from which the measures (judge/measures.py), the
report header, the JSON, JUnit and the reuse rule follow. The choice is made once per run
(settings.py): ``auto`` is /proc where it exists, the portable calls elsewhere; ``GOLEAK_BACKEND``
or ``goleak_backend`` forces one, so that the portable path runs, and is tested, on Linux too.
"""

from __future__ import annotations

import enum
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from pytest_goleak.errors import ConfigError
from pytest_goleak.read import portable, procfs
from pytest_goleak.read.procfs import MemoryMapping, ProcessState

__all__ = ["BACKENDS", "PORTABLE", "PROC", "Backend", "Lack", "choose"]


class Lack(enum.Enum):
    """Something a backend cannot read, in the words the report header uses."""

    FD_NAMES = "fds that are neither a file nor a socket (pipes, kqueues, eventfds) are counted, not named"
    BYTES_READ = "no bytes-read counter (rchar): every test takes a fresh before-reading"
    MAPPINGS = "no memory mappings: an off-heap failure cannot name what grew"
    RESIDENT_SPLIT = "resident memory has no anonymous/file split: off-heap counts pages of mapped files too"
    SUBREAPER = "no child subreaper: a process whose parent exits leaves the service's descendants"


@dataclass(frozen=True)
class Backend:
    """One way of reading a process; both implement the same five calls."""

    name: str  # what GOLEAK_BACKEND says: proc or portable
    source: str  # where its readings come from, for the header
    read_process: Callable[..., ProcessState]  # (pid, describe_sockets=False, mappings=False)
    resident: Callable[[int], int]  # resident memory off-heap is computed from (ProcessState.resident_anon)
    bytes_read: Callable[[int], int | None]
    describe_fds: Callable[[int, Mapping[int, str]], dict[int, str]]
    read_mappings: Callable[..., tuple[MemoryMapping, ...]]  # (pid, resident=False)
    lacks: frozenset[Lack] = frozenset()
    # The lifecycle's Linux-only calls (prctl PR_SET_PDEATHSIG and PR_SET_CHILD_SUBREAPER, /proc/PID/environ):
    # off with the portable backend, so that the portable lifecycle is the one tested with it on Linux.
    linux_calls: bool = True

    def describe(self) -> str:
        """``/proc`` or ``psutil's portable calls (…; …)``, for the report header."""
        lacks = "; ".join(lack.value for lack in Lack if lack in self.lacks)
        return f"{self.source} ({lacks})" if lacks else self.source


PROC = Backend(
    "proc",
    "/proc",
    procfs.read_process,
    procfs.resident_anon,
    procfs.bytes_read,
    procfs.describe_fds,
    procfs.read_mappings,
)
PORTABLE = Backend(
    "portable",
    "psutil's portable calls",
    portable.read_process,
    portable.resident,
    portable.bytes_read,
    portable.describe_fds,
    portable.read_mappings,
    lacks=frozenset(Lack),
    linux_calls=False,
)
BACKENDS: Mapping[str, Backend] = {backend.name: backend for backend in (PROC, PORTABLE)}
SUPPORTED = ("linux", "darwin")
ENV = "GOLEAK_BACKEND"


def _has_proc() -> bool:
    return os.path.isdir(f"/proc/{os.getpid()}/fd")


def choose(
    said: str, where: str = ENV, platform: str | None = None, has_proc: Callable[[], bool] = _has_proc
) -> Backend:
    """The backend ``said`` names (``auto``, ``proc`` or ``portable``); ConfigError in one line naming the fix.

    ``platform`` is ``sys.platform`` unless given (tests give another).
    """
    name = said.strip().lower()
    platform = sys.platform if platform is None else platform
    if name not in ("auto", *BACKENDS):
        raise ConfigError(f"{where}: {said!r} is not auto, proc or portable; e.g. {ENV}=portable, or unset it")
    if not platform.startswith(SUPPORTED):
        raise ConfigError(
            f"pytest-goleak runs on Linux and macOS, not on this platform ({platform}); run the tests under WSL "
            "or in a Linux container, or turn the plugin off with -p no:goleak"
        )
    if name == "auto":
        return PROC if has_proc() else PORTABLE
    if name == "proc" and not has_proc():
        raise ConfigError(f"{where}: proc needs /proc, which this system ({platform}) has not; use auto or portable")
    return BACKENDS[name]
