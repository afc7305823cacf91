"""A watchdog that kills the services and everything they spawned once pytest is gone.

pytest's fixture teardown never runs when pytest is killed (SIGKILL, or
``os._exit`` from pytest-timeout), and a parent-death signal reaches only the
service itself, not the processes it spawned. So each pytest process starts
one lifeline: ``python -m pytest_goleak.service.lifeline``. pytest writes
``+PGID TOKEN [TMPDIR]`` when a service starts and ``-PGID`` when it has
stopped it, on the lifeline's stdin. When that pipe closes, however pytest
ended, the lifeline SIGKILLs every group still listed and every process marked
with its token, removes their temp directories and exits.

The mark: a service's process group is not enough, because a daemon leaves it
(``setsid``) and its parent may have exited. What it keeps is its environment,
so every service runs with ``PYTEST_GOLEAK_RUN=TOKEN``, and :func:`kill_marked`
finds its descendants by that, wherever they went.

Portable (``--portable PID``, the portable backend): no ``/proc``, only what macOS has too. The
marked processes are found through psutil's ``environ()``, and the lifeline also polls its
parent: a pipe end that a process forked from pytest still holds would otherwise keep it
waiting after pytest is gone. Without PR_SET_PDEATHSIG the service does not die with pytest
by itself: the lifeline is what kills it.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

from pytest_goleak.read.tmpdir import remove_tmpdir

MARKER = "PYTEST_GOLEAK_RUN"
PORTABLE = "--portable"
_POLL = 0.2  # seconds between two looks at the parent, in portable mode


def signal_group(pgid: int, signum: int = signal.SIGKILL) -> None:
    """Send ``signum`` to process group ``pgid``, if it still exists and is ours."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def marked(token: str, portable: bool = False) -> list[int]:
    """The processes whose environment carries ``PYTEST_GOLEAK_RUN=token``: one service run's, wherever they went."""
    if portable:
        return _marked_portably(token)
    needle = f"{MARKER}={token}".encode()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as environ:
                entries = environ.read(1 << 20).split(b"\0")
        except OSError:
            continue  # gone, or not ours to read
        if needle in entries:
            found.append(int(name))
    return found


def _marked_portably(token: str) -> list[int]:
    import psutil  # here only: the /proc lifeline loads nothing it does not need

    found = []
    for process in psutil.process_iter():
        if process.pid == os.getpid():
            continue
        try:
            if process.environ().get(MARKER) == token:
                found.append(process.pid)
        except (psutil.Error, OSError):
            continue  # gone, a zombie, or not ours to read
    return found


def kill_marked(token: str, rounds: int = 3, portable: bool = False) -> None:
    """SIGKILL every process marked with ``token``; again, for a bounded few rounds, while one forks."""
    for _ in range(rounds):
        pids = marked(token, portable)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


def watch(stream: Iterable[str] | None = None, parent: int | None = None) -> None:
    """Run the watchdog loop over ``stream`` (stdin by default); given pytest's pid (``parent``), portably.

    Portable: no /proc, and the lifeline ends too once ``parent`` is no longer its parent.
    """
    # Ctrl-C reaches the whole foreground process group; the lifeline must
    # outlive pytest's own handling of it to clean up after it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if stream is not None:
        lines = stream
    else:
        lines = sys.stdin if parent is None else _lines_while_parent(sys.stdin.fileno(), parent)
    groups: dict[int, tuple[str, str]] = {}  # pgid -> its token, and its temp directory or ""
    for line in lines:
        line = line.rstrip("\n")
        sign = line[:1]
        pgid, _, rest = line[1:].partition(" ")
        if sign not in ("+", "-") or not pgid.isdigit():
            continue
        if sign == "+":
            token, _, tmpdir = rest.partition(" ")
            groups[int(pgid)] = token, tmpdir
        else:
            groups.pop(int(pgid), None)
    _end(groups, portable=parent is not None)


def _lines_while_parent(fd: int, parent: int) -> Iterator[str]:
    """The lines on ``fd`` until it closes or ``parent`` is no longer this process's parent.

    pytest's pid comes from pytest: read here, it could already be init's, had pytest died meanwhile. Once
    pytest is gone, what it wrote and is still in the pipe is read before the end, so no group is missed.
    """
    pending = b""
    while True:
        gone = os.getppid() != parent
        ready, _, _ = select.select([fd], [], [], 0 if gone else _POLL)
        if not ready:
            if gone:
                return
            continue
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return
        *lines, pending = (pending + chunk).split(b"\n")
        yield from (line.decode(errors="replace") for line in lines)


def _end(groups: dict[int, tuple[str, str]], portable: bool) -> None:
    """Kill every group still listed and every process marked with its token; remove their temp directories."""
    for pgid in groups:
        signal_group(pgid)
    for token, tmpdir in groups.values():
        if token:
            kill_marked(token, portable=portable)
        if tmpdir:
            remove_tmpdir(Path(tmpdir))
    groups.clear()


class Lifeline:
    """pytest's end of the watchdog: start it once, then register groups."""

    def __init__(self, linux_calls: bool = True) -> None:
        self._lock = threading.Lock()
        portable = (PORTABLE, str(os.getpid()))  # without prctl, it watches for its parent's end itself
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "pytest_goleak.service.lifeline", *(() if linux_calls else portable)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            # Its own session: a signal sent to pytest's group must not end it.
            start_new_session=True,
            text=True,
        )

    def _send(self, line: str) -> None:
        stdin = self._proc.stdin
        if stdin is None:
            return
        with self._lock:
            try:
                stdin.write(line + "\n")
                stdin.flush()
            except (BrokenPipeError, ValueError):
                pass  # the lifeline died; teardown still stops what it can

    def guard(self, pgid: int, token: str, tmpdir: Path | None = None) -> None:
        self._send(f"+{pgid} {token} {tmpdir}" if tmpdir is not None else f"+{pgid} {token}")

    def release(self, pgid: int) -> None:
        self._send(f"-{pgid}")

    def close(self, timeout: float = 5.0) -> None:
        """End the lifeline; it kills whatever is still registered."""
        if self._proc.stdin is not None:
            try:
                self._proc.stdin.close()
            except BrokenPipeError:
                pass
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


if __name__ == "__main__":
    watch(parent=int(sys.argv[2]) if sys.argv[1:2] == [PORTABLE] else None)
