"""The portable backend (psutil's portable calls) against real processes, beside the /proc backend's reading."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest
from prochelper import TIMEOUT, Helper, wait_for

from pytest_goleak.errors import ProcessGone
from pytest_goleak.read import portable, procfs
from pytest_goleak.read.procfs import new_children, new_fds


def test_it_counts_every_fd_and_names_files_and_sockets(helper: Helper) -> None:
    info = helper.info
    proc, state = procfs.read_process(helper.pid), portable.read_process(helper.pid)
    assert state.fd_count() == proc.fd_count() == len(proc.fds)
    assert state.fds[info["log"]] == info["log_path"]
    tcp = state.sockets and state.sockets[info["cli"]]
    assert tcp == f"tcp 127.0.0.1:{info['cli_port']} -> 127.0.0.1:{info['srv_port']} ESTABLISHED"
    assert state.fds[info["srv"]] == f"socket:tcp 127.0.0.1:{info['srv_port']}"  # its target leaves out the state
    # What it cannot name is counted: the pipe's two ends and the eventfd, at least.
    for unnamed in ("pipe_r", "pipe_w", "event"):
        assert info[unnamed] not in state.fds
    assert state.unnamed_fds >= 3
    assert state.unnamed_fds == len(proc.fds) - len(state.fds)


def test_threads_children_and_memory_agree_with_proc(helper: Helper) -> None:
    info = helper.info
    proc = wait_for(lambda: procfs.read_process(helper.pid), lambda s: len(s.children) >= 3)
    state = wait_for(lambda: portable.read_process(helper.pid), lambda s: len(s.children) == len(proc.children))
    assert state.threads == proc.threads == 4
    # The same processes; their state and name may change between the readings (sh forks, then execs sleep).
    assert [(c.pid, c.ppid) for c in state.children] == [(c.pid, c.ppid) for c in proc.children]
    zombie = next(c for c in state.children if c.pid == info["zombie"])
    assert (zombie.status, zombie.cmdline) == ("zombie", "")
    assert next(c for c in state.children if c.pid == info["shell"]).cmdline == "sh -c sleep 30; :"
    # rss: anonymous memory and the pages of mapped files (the interpreter's own), so more than /proc's figure.
    assert state.resident_anon > proc.resident_anon > 0
    assert portable.bytes_read(helper.pid) is None
    assert portable.read_mappings(helper.pid) == ()


def test_growth_between_readings_is_counted_named_or_not(helper: Helper) -> None:
    before = portable.read_process(helper.pid)
    churn = helper.command("churn")  # closes a file and a udp socket; opens a file, a pipe and a connection
    pid = helper.command("spawn")["pid"]
    after = wait_for(lambda: portable.read_process(helper.pid), lambda s: any(c.pid == pid for c in s.children))
    assert after.fd_count() - before.fd_count() == len(churn["new"]) - 2
    assert after.unnamed_fds - before.unnamed_fds == 2  # the pipe's ends
    named = new_fds(before, after)
    assert named[helper.info["log"]].endswith("new.log")  # the same number, a new file
    assert len(named) == 3  # the file and both ends of the connection
    assert [c.pid for c in new_children(before, after)] == [pid]


def test_sockets_are_described_while_the_fd_is_the_same_socket(helper: Helper) -> None:
    cli = helper.info["cli"]
    old = portable.read_process(helper.pid).fds[cli]
    assert portable.describe_fds(helper.pid, {cli: old})[cli].endswith("ESTABLISHED")
    helper.command("swap")  # cli's number now points at another connection
    assert portable.describe_fds(helper.pid, {cli: old}) == {cli: old.removeprefix("socket:")}


def test_a_gone_or_zombie_process_is_gone() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + TIMEOUT
    while psutil.Process(proc.pid).status() != psutil.STATUS_ZOMBIE:  # exited, not reaped
        assert time.monotonic() < deadline
        time.sleep(0.02)
    with pytest.raises(ProcessGone, match="zombie"):
        portable.read_process(proc.pid)
    proc.wait()
    with pytest.raises(ProcessGone):
        portable.read_process(proc.pid)
    with pytest.raises(ProcessGone):
        portable.resident(proc.pid)


def test_describing_a_gone_process_keeps_what_was_read(helper: Helper) -> None:
    state = portable.read_process(helper.pid)
    os.killpg(helper.pid, signal.SIGKILL)
    helper.proc.wait(timeout=TIMEOUT)
    cli = helper.info["cli"]
    assert portable.describe_fds(helper.pid, {cli: state.fds[cli]})[cli].startswith("tcp 127.0.0.1:")
