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
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterable
from pathlib import Path

from pytest_goleak.read.tmpdir import remove_tmpdir

MARKER = "PYTEST_GOLEAK_RUN"


def signal_group(pgid: int, signum: int = signal.SIGKILL) -> None:
    """Send ``signum`` to process group ``pgid``, if it still exists and is ours."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def marked(token: str) -> list[int]:
    """The processes whose environment carries ``PYTEST_GOLEAK_RUN=token``: one service run's, wherever they went."""
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


def kill_marked(token: str, rounds: int = 3) -> None:
    """SIGKILL every process marked with ``token``; again, for a bounded few rounds, while one forks."""
    for _ in range(rounds):
        pids = marked(token)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


def watch(stream: Iterable[str] | None = None) -> None:
    """Run the watchdog loop over ``stream`` (stdin by default)."""
    # Ctrl-C reaches the whole foreground process group; the lifeline must
    # outlive pytest's own handling of it to clean up after it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    lines = sys.stdin if stream is None else stream
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
    for pgid in groups:
        signal_group(pgid)
    for token, tmpdir in groups.values():
        if token:
            kill_marked(token)
        if tmpdir:
            remove_tmpdir(Path(tmpdir))


class Lifeline:
    """pytest's end of the watchdog: start it once, then register groups."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "pytest_goleak.service.lifeline"],
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
    watch()
