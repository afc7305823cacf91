"""The portable lifeline: it notices pytest is gone even while a process forked from pytest still holds its pipe."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

# Stands for pytest: starts the lifeline, has it guard a group (a `sleep` in a session of its own) and a temp
# directory, forks a child that keeps the lifeline's pipe open (as a test's own fork would), and is then killed.
PYTEST_STAND_IN = textwrap.dedent(
    """
    import os, subprocess, sys, time
    from pytest_goleak.service.lifeline import Lifeline

    tmpdir, linux_calls = sys.argv[1], sys.argv[2] == "proc"
    lifeline = Lifeline(linux_calls)
    guarded = subprocess.Popen(["sleep", "600"], start_new_session=True)
    lifeline.guard(guarded.pid, "", tmpdir)
    fork = os.fork()
    if fork == 0:  # holds every fd of its parent, the lifeline's pipe too, for as long as it sleeps
        time.sleep(30)
        os._exit(0)
    print(guarded.pid, lifeline._proc.pid, fork, flush=True)
    time.sleep(600)
    """
)


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.parametrize("backend", ["portable", "proc"])
def test_the_portable_lifeline_ends_when_its_parent_does_though_its_pipe_is_held(tmp_path: Path, backend: str) -> None:
    tmpdir = tmp_path / "service-tmp"
    tmpdir.mkdir()
    stand_in = subprocess.Popen(
        [sys.executable, "-c", PYTEST_STAND_IN, str(tmpdir), backend], stdout=subprocess.PIPE, text=True
    )
    assert stand_in.stdout is not None
    guarded, lifeline, fork = (int(pid) for pid in stand_in.stdout.readline().split())
    try:
        # The forked child is in the stand-in's group; only the stand-in itself dies, as pytest would on SIGKILL.
        stand_in.kill()
        stand_in.wait()
        deadline = time.monotonic() + (5 if backend == "portable" else 1)  # /proc's: nothing to wait for
        while not (_gone(guarded) and not tmpdir.exists()) and time.monotonic() < deadline:
            time.sleep(0.05)
        if backend == "portable":
            assert _gone(guarded), "the guarded group outlived pytest while a fork held the lifeline's pipe"
            assert not tmpdir.exists()
        else:
            # /proc's lifeline waits on the pipe alone: PR_SET_PDEATHSIG ends a real service there.
            assert not _gone(guarded)
    finally:
        for pid in (fork, guarded, lifeline):
            if not _gone(pid):
                os.kill(pid, signal.SIGKILL)
