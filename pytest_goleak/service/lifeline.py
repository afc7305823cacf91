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

Portable (``--portable``, the portable backend): no ``/proc``, only what macOS has too. The
marked processes are found through psutil's ``environ()``, and the lifeline also polls its
parent: a pipe end that a process forked from pytest still holds would otherwise keep it
waiting after pytest is gone. Without PR_SET_PDEATHSIG the service does not die with pytest
by itself: the lifeline is what kills it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
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


def watch(stream: Iterable[str] | None = None, portable: bool = False) -> None:
    """Run the watchdog loop over ``stream`` (stdin by default); ``portable``: no /proc, and poll the parent."""
    # Ctrl-C reaches the whole foreground process group; the lifeline must
    # outlive pytest's own handling of it to clean up after it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    lines = sys.stdin if stream is None else stream
    groups: dict[int, tuple[str, str]] = {}  # pgid -> its token, and its temp directory or ""
    lock = threading.Lock()
    if portable:
        parent = os.getppid()

        def poll() -> None:
            while os.getppid() == parent:  # reparented: pytest is gone, whoever still holds the pipe
                time.sleep(_POLL)
            with lock:
                _end(groups, portable)
                os._exit(0)

        threading.Thread(target=poll, daemon=True).start()
    for line in lines:
        line = line.rstrip("\n")
        sign = line[:1]
        pgid, _, rest = line[1:].partition(" ")
        if sign not in ("+", "-") or not pgid.isdigit():
            continue
        with lock:
            if sign == "+":
                token, _, tmpdir = rest.partition(" ")
                groups[int(pgid)] = token, tmpdir
            else:
                groups.pop(int(pgid), None)
    with lock:
        _end(groups, portable)


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
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "pytest_goleak.service.lifeline", *(() if linux_calls else (PORTABLE,))],
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
    watch(portable=PORTABLE in sys.argv[1:])
