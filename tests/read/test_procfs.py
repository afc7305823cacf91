"""Tests for pytest_goleak.read.procfs against real processes (Linux, loopback only)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from hypothesis import given
from hypothesis import strategies as st
from prochelper import TIMEOUT, Helper, wait_for

from pytest_goleak.errors import GoleakError, ProcessGone
from pytest_goleak.read import procfs
from pytest_goleak.read.procfs import (
    ChildInfo,
    ProcessState,
    describe_fds,
    format_child,
    new_children,
    new_fds,
    read_process,
)


def test_read_process_finds_every_kind_of_fd(helper: Helper) -> None:
    info = helper.info
    state = read_process(helper.pid)
    fds = state.fds

    assert state.pid == helper.pid
    assert fds[info["log"]] == info["log_path"]
    assert fds[info["deleted"]] == info["deleted_path"] + " (deleted)"
    assert fds[info["pipe_r"]].startswith("pipe:[")
    assert fds[info["pipe_r"]] == fds[info["pipe_w"]]
    assert fds[info["event"]] == "anon_inode:[eventfd]"
    for key in ("srv", "cli", "acc", "udp", "unix", "pair"):
        assert fds[info[key]].startswith("socket:["), key
    assert {0, 1, 2} <= set(fds)


def test_read_process_counts_threads(helper: Helper) -> None:
    assert read_process(helper.pid).threads == 4  # main + 3
    helper.command("thread")
    assert read_process(helper.pid).threads == 5


def test_start_time_identifies_the_process(helper: Helper) -> None:
    first = read_process(helper.pid)
    assert read_process(helper.pid).start_time == first.start_time
    ticks = os.sysconf("SC_CLK_TCK")
    boot = psutil.boot_time()
    assert abs(boot + first.start_time / ticks - psutil.Process(helper.pid).create_time()) < 0.1


def test_describe_fds_gives_addresses_and_states(helper: Helper) -> None:
    info = helper.info
    state = read_process(helper.pid)
    described = describe_fds(helper.pid, state.fds)

    port, cli_port = info["srv_port"], info["cli_port"]
    assert described[info["srv"]] == f"tcp 127.0.0.1:{port} LISTEN"
    assert described[info["cli"]] == f"tcp 127.0.0.1:{cli_port} -> 127.0.0.1:{port} ESTABLISHED"
    assert described[info["acc"]] == f"tcp 127.0.0.1:{port} -> 127.0.0.1:{cli_port} ESTABLISHED"
    assert described[info["udp"]] == f"udp 127.0.0.1:{info['udp_port']}"
    assert described[info["unix"]] == f"unix {info['unix_path']}"
    assert described[info["pair"]] == "unix (unnamed)"
    assert described[info["log"]] == info["log_path"]
    assert described[info["deleted"]] == info["deleted_path"] + " (deleted)"
    assert described[info["pipe_w"]] == state.fds[info["pipe_w"]]
    assert described[info["event"]] == "anon_inode:[eventfd]"
    if info["netlink"] is not None:
        # psutil does not know netlink: the raw target is kept.
        assert described[info["netlink"]] == state.fds[info["netlink"]]
    if info["srv6"] is not None:
        assert described[info["srv6"]] == f"tcp6 [::1]:{info['srv6_port']} LISTEN"
    assert set(described) == set(state.fds)


def test_describe_fds_keeps_raw_target_when_fd_was_reused(helper: Helper) -> None:
    cli = helper.info["cli"]
    old_target = read_process(helper.pid).fds[cli]
    helper.command("swap")
    assert read_process(helper.pid).fds[cli] != old_target

    assert describe_fds(helper.pid, {cli: old_target}) == {cli: old_target}


def test_describe_fds_of_a_gone_process_returns_raw_targets(helper: Helper) -> None:
    state = read_process(helper.pid)
    os.killpg(helper.pid, signal.SIGKILL)
    helper.proc.wait(timeout=TIMEOUT)

    assert describe_fds(helper.pid, state.fds) == dict(state.fds)


def test_children_are_found_recursively_with_status(helper: Helper) -> None:
    info = helper.info
    # Wait until the grandchild has exec'd sleep and gone to sleep: on a busy
    # machine it can still be "running" for a moment after it appears.
    state = wait_for(
        lambda: read_process(helper.pid),
        lambda s: any(c.ppid == info["shell"] and c.name == "sleep" and c.status == "sleeping" for c in s.children),
    )
    by_pid = {child.pid: child for child in state.children}

    zombie = by_pid.pop(info["zombie"])
    assert (zombie.ppid, zombie.status, zombie.name, zombie.cmdline) == (helper.pid, "zombie", "true", "")
    assert format_child(zombie) == f"pid {zombie.pid} [zombie] true"

    shell = by_pid.pop(info["shell"])
    assert (shell.ppid, shell.cmdline) == (helper.pid, "sh -c sleep 30; :")
    assert shell.status in ("sleeping", "running")

    (sleep,) = by_pid.values()
    assert (sleep.ppid, sleep.name, sleep.cmdline) == (shell.pid, "sleep", "sleep 30")
    assert format_child(sleep) == f"pid {sleep.pid} [sleeping] sleep 30"
    assert [c.pid for c in state.children] == sorted([zombie.pid, shell.pid, sleep.pid])


def test_odd_comm_is_parsed_and_own_process_is_readable(helper: Helper, tmp_path: Path) -> None:
    # The helper's comm is "h) Z 1 (x": a naive parse would call it a zombie.
    assert read_process(helper.pid).pid == helper.pid

    with (tmp_path / "mine.txt").open("w") as f:
        own = read_process(os.getpid())
        assert own.fds[f.fileno()] == str(tmp_path / "mine.txt")
    assert own.threads == psutil.Process().num_threads()
    child = next(c for c in own.children if c.pid == helper.pid)
    assert (child.ppid, child.name) == (os.getpid(), "h) Z 1 (x")
    assert child.status in ("sleeping", "running")  # not misread as a zombie; a busy machine may catch it running
    # The helper's own children are our grandchildren.
    assert helper.info["zombie"] in {c.pid for c in own.children}


def test_new_fds_finds_exactly_the_fds_opened_between_readings(helper: Helper) -> None:
    before = read_process(helper.pid)
    churn = helper.command("churn")
    after = read_process(helper.pid)

    found = new_fds(before, after)
    assert set(found) == set(churn["new"])
    assert found == {fd: after.fds[fd] for fd in churn["new"]}
    assert helper.info["log"] in found  # same number, new target
    for fd in churn["closed"]:
        assert fd not in after.fds
    assert new_fds(after, after) == {}


def test_new_children_finds_the_spawned_child(helper: Helper) -> None:
    before = read_process(helper.pid)
    pid = helper.command("spawn")["pid"]
    after = read_process(helper.pid)

    assert [c.pid for c in new_children(before, after)] == [pid]
    assert new_children(after, before) == ()


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the files read through a held /proc/PID from now on, in order."""
    names: list[str] = []
    read = procfs._Held.read

    def counted(held: procfs._Held, name: str, limit: int = 4096) -> bytes:
        names.append(name)
        return read(held, name, limit)

    monkeypatch.setattr(procfs._Held, "read", counted)
    return names


def test_the_maps_are_read_again_when_a_mapping_is_made_or_made_writable(helper: Helper, reads: list[str]) -> None:
    def starts() -> dict[int, str]:
        mappings = read_process(helper.pid, mappings=True).mappings
        assert mappings is not None
        return {m.start: m.perms for m in mappings}

    first = starts()
    assert starts() == first and reads.count("maps") == 1  # nothing mapped since: the text read before stands
    mapped = helper.command("map")["start"]
    assert mapped not in first and starts()[mapped].startswith("rw")
    # Made writable in place (an arena grown): the total mapped is the same, the private writable count is not.
    reserved = helper.command("protect")["start"]
    assert first[reserved].startswith("---") and starts()[reserved].startswith("rw")
    assert reads.count("maps") == 3


def test_stat_is_read_once_per_process_and_the_thread_count_still_follows(helper: Helper, reads: list[str]) -> None:
    # stat is the dearest small file (the kernel sums every thread's times for it), and the start time it gives
    # never changes: the threads are counted from status, which every reading reads anyway.
    first = read_process(helper.pid)
    helper.command("thread")
    second = read_process(helper.pid)
    assert second.threads == first.threads + 1 and second.start_time == first.start_time
    assert reads.count("status") == 2 and reads.count("stat") <= 1


def _child(pid: int, start_time: int, status: str = "sleeping") -> ChildInfo:
    return ChildInfo(pid=pid, ppid=1, name="x", cmdline="", status=status, start_time=start_time)


def _state(fds: dict[int, str], children: tuple[ChildInfo, ...] = ()) -> ProcessState:
    return ProcessState(pid=1, start_time=1, fds=fds, children=children, threads=1)


def test_new_children_matches_on_pid_and_start_time() -> None:
    before = _state({}, (_child(10, 100), _child(11, 100)))
    after = _state({}, (_child(10, 100, status="zombie"), _child(11, 200)))

    # A status change is not new; a reused pid is.
    assert new_children(before, after) == (_child(11, 200),)


@given(
    st.dictionaries(st.integers(0, 30), st.sampled_from(["a", "b", "pipe:[1]"])),
    st.dictionaries(st.integers(0, 30), st.sampled_from(["a", "b", "pipe:[1]"])),
)
def test_new_fds_is_the_set_difference_of_pairs(before: dict[int, str], after: dict[int, str]) -> None:
    found = new_fds(_state(before), _state(after))
    assert set(found.items()) == set(after.items()) - set(before.items())


def test_exited_process_is_gone() -> None:
    proc = subprocess.Popen(["true"])
    proc.wait(timeout=TIMEOUT)
    with pytest.raises(ProcessGone, match=rf"^process {proc.pid} no longer exists$"):
        read_process(proc.pid)


def test_a_process_read_before_it_exited_is_gone_and_holds_nothing() -> None:
    # Its /proc directory is held open from the first reading on: the next reading must still find it gone,
    # and pytest must not keep fds for it, nor for every other process it ever read.
    procs = [subprocess.Popen(["sleep", "30"]) for _ in range(6)]
    try:
        for proc in procs:
            read_process(proc.pid, mappings=True)
            read_process(proc.pid)
        held = [int(found.group(1)) for target in _own_fd_targets() if (found := re.match(r"/proc/(\d+)", target))]
        assert procs[-1].pid in held and procs[0].pid not in held and procs[1].pid not in held
        assert len(held) <= 4 * 8, f"{len(held)} fds held on /proc"
        last = procs[-1]
        last.kill()
        last.wait(timeout=TIMEOUT)
        with pytest.raises(ProcessGone, match=rf"^process {last.pid} no longer exists$"):
            read_process(last.pid)
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(timeout=TIMEOUT)


def _own_fd_targets() -> list[str]:
    targets = []
    for name in os.listdir("/proc/self/fd"):
        try:
            targets.append(os.readlink(f"/proc/self/fd/{name}"))
        except FileNotFoundError:
            continue  # the listing's own fd, closed by now
    return targets


def test_pid_that_never_existed_is_gone() -> None:
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    with pytest.raises(ProcessGone):
        read_process(pid_max + 1)


def test_zombie_is_gone() -> None:
    proc = subprocess.Popen(["true"])
    try:
        deadline = time.monotonic() + TIMEOUT
        # WNOWAIT: wait for the exit but leave the zombie unreaped.
        while os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
            assert time.monotonic() < deadline, "true did not exit"
            time.sleep(0.001)
        with pytest.raises(ProcessGone, match="zombie"):
            read_process(proc.pid)
        assert describe_fds(proc.pid, {3: "socket:[1]"}) == {3: "socket:[1]"}
    finally:
        proc.wait(timeout=TIMEOUT)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop to another user")
def test_unreadable_fds_raise_goleak_error_not_process_gone() -> None:
    # A forked child turned into "nobody" reads our (root's) fds.
    target = os.getpid()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        code = 3
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            try:
                read_process(target)
                code = 0
            except ProcessGone:
                code = 1
            except GoleakError as exc:
                os.write(write_end, str(exc).encode())
                code = 2
        finally:
            os._exit(code)
    os.close(write_end)
    deadline = time.monotonic() + TIMEOUT
    while (waited := os.waitpid(pid, os.WNOHANG)) == (0, 0):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("forked reader hung")
        time.sleep(0.001)
    message = os.read(read_end, 4096).decode()
    os.close(read_end)
    assert os.waitstatus_to_exitcode(waited[1]) == 2
    assert (
        message == f"cannot read /proc/{target}/fd: permission denied (run the tests as the user that owns the process)"
    )


def test_both_ways_of_finding_children_agree(helper: Helper, monkeypatch: pytest.MonkeyPatch) -> None:
    """The per-thread children files and the whole-machine ppid scan find the same descendants."""
    import pytest_goleak.read.procfs as procfs

    info = helper.info
    wait_for(lambda: read_process(helper.pid), lambda s: any(c.ppid == info["shell"] for c in s.children))
    fast = read_process(helper.pid).children
    monkeypatch.setattr(procfs, "_CHILDREN_FILES", False)
    scanned = read_process(helper.pid).children
    assert [c.pid for c in fast] == [c.pid for c in scanned]
    assert {info["zombie"], info["shell"]} <= {c.pid for c in scanned}


def test_every_child_is_counted_however_many_there_are(tmp_path: Path) -> None:
    # 2,000 zombies list about 12 KiB of PIDs in one thread's children file; a 4 KiB read counted ~1,500.
    ready = tmp_path / "ready"
    code = (
        "import os, sys, time\n"
        "for _ in range(2000):\n"
        "    if os.fork() == 0:\n"
        "        os._exit(0)\n"
        f"open({str(ready)!r}, 'w').close()\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 30
        while not ready.exists():
            assert time.monotonic() < deadline and parent.poll() is None
            time.sleep(0.05)
        children = read_process(parent.pid).children
        assert len(children) == 2000
        assert {child.ppid for child in children} == {parent.pid}
    finally:
        parent.kill()
        parent.wait()
