"""A watchdog that kills the services' process groups once pytest is gone.

pytest's fixture teardown never runs when pytest is killed (SIGKILL, or
``os._exit`` from pytest-timeout), and a parent-death signal reaches only the
service itself, not the processes it spawned. So each pytest process starts
one lifeline: ``python -m pytest_goleak.service.lifeline``. pytest writes ``+PGID``
(or ``+PGID TMPDIR``, the service's private temp directory) when a service
starts and ``-PGID`` when it has stopped it, on the lifeline's stdin. When
that pipe closes, however pytest ended, the lifeline SIGKILLs every group
still listed, removes their temp directories and exits.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterable
from pathlib import Path

from pytest_goleak.read.tmpdir import remove_tmpdir


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def watch(stream: Iterable[str] | None = None) -> None:
    """Run the watchdog loop over ``stream`` (stdin by default)."""
    # Ctrl-C reaches the whole foreground process group; the lifeline must
    # outlive pytest's own handling of it to clean up after it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    lines = sys.stdin if stream is None else stream
    groups: dict[int, str] = {}  # pgid -> its temp directory, or ""
    for line in lines:
        line = line.rstrip("\n")
        sign = line[:1]
        pgid, _, tmpdir = line[1:].partition(" ")
        if sign not in ("+", "-") or not pgid.isdigit():
            continue
        if sign == "+":
            groups[int(pgid)] = tmpdir
        else:
            groups.pop(int(pgid), None)
    for pgid in groups:
        _kill_group(pgid)
    for tmpdir in groups.values():
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

    def guard(self, pgid: int, tmpdir: Path | None = None) -> None:
        self._send(f"+{pgid} {tmpdir}" if tmpdir is not None else f"+{pgid}")

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
