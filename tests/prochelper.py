"""A helper process holding one fd of every kind, children and threads, for the readers' tests (tests/read/)."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_goleak.read.procfs import ProcessState

TIMEOUT = 10.0

# The helper opens one fd of every kind, starts children and threads, prints
# one JSON line describing them and then obeys one-word commands on stdin.
HELPER = r"""
import ctypes, json, mmap, os, socket, sys, threading

tmp = sys.argv[1]
# ") Z 1 (" in comm trips parsers that split /proc/PID/stat at the first ")".
with open("/proc/self/comm", "w") as f:
    f.write("h) Z 1 (x")

zombie = os.posix_spawnp("true", ["true"], os.environ)
os.waitid(os.P_PID, zombie, os.WEXITED | os.WNOWAIT)  # exited, not reaped
shell = os.posix_spawnp("sh", ["sh", "-c", "sleep 30; :"], os.environ)

log = open(os.path.join(tmp, "leak.log"), "w")
deleted = open(os.path.join(tmp, "gone.log"), "w")
os.unlink(deleted.name)
pipe_r, pipe_w = os.pipe()
srv = socket.create_server(("127.0.0.1", 0))
cli = socket.create_connection(srv.getsockname(), timeout=5)
acc, _ = srv.accept()
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.bind(("127.0.0.1", 0))
unix = socket.socket(socket.AF_UNIX)
unix.bind(os.path.join(tmp, "s.sock"))
unix.listen()
pair = socket.socketpair()
event = os.eventfd(0)
try:
    netlink = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
except OSError:
    netlink = None
try:
    srv6 = socket.create_server(("::1", 0), family=socket.AF_INET6)
except OSError:
    srv6 = None

stop = threading.Event()
def start_thread():
    threading.Thread(target=stop.wait, daemon=True).start()
for _ in range(3):
    start_thread()

keep = []
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
# 4 MiB reserved, not accessible (PROT_NONE, 0), as an allocator reserves an arena; "protect" makes its start writable.
reserved = libc.mmap(None, 4 << 20, 0, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, -1, 0)
def reply(obj):
    print(json.dumps(obj), flush=True)

reply({
    "zombie": zombie, "shell": shell,
    "log": log.fileno(), "log_path": log.name,
    "deleted": deleted.fileno(), "deleted_path": deleted.name,
    "pipe_r": pipe_r, "pipe_w": pipe_w,
    "srv": srv.fileno(), "srv_port": srv.getsockname()[1],
    "cli": cli.fileno(), "cli_port": cli.getsockname()[1], "acc": acc.fileno(),
    "udp": udp.fileno(), "udp_port": udp.getsockname()[1],
    "unix": unix.fileno(), "unix_path": unix.getsockname(),
    "pair": pair[0].fileno(), "event": event,
    "netlink": netlink.fileno() if netlink else None,
    "srv6": srv6.fileno() if srv6 else None,
    "srv6_port": srv6.getsockname()[1] if srv6 else None,
})

for line in sys.stdin:
    cmd = line.strip()
    if cmd == "churn":
        # Frees two fds, then opens new ones; the new file reuses log's number.
        closed = {log.fileno(), udp.fileno()}
        log.close()
        udp.close()
        new_file = open(os.path.join(tmp, "new.log"), "w")
        r, w = os.pipe()
        c = socket.create_connection(srv.getsockname(), timeout=5)
        a, _ = srv.accept()
        keep += [new_file, c, a]
        new = [new_file.fileno(), r, w, c.fileno(), a.fileno()]
        reply({"new": new, "closed": sorted(closed - set(new))})
    elif cmd == "swap":
        # Points cli's fd number at another connection.
        c = socket.create_connection(srv.getsockname(), timeout=5)
        a, _ = srv.accept()
        keep += [c, a]
        os.dup2(c.fileno(), cli.fileno())
        reply({})
    elif cmd == "thread":
        start_thread()
        reply({})
    elif cmd == "map":
        m = mmap.mmap(-1, 1 << 20)
        keep.append(m)
        reply({"start": ctypes.addressof(ctypes.c_char.from_buffer(m))})
    elif cmd == "protect":
        assert libc.mprotect(reserved, 1 << 20, mmap.PROT_READ | mmap.PROT_WRITE) == 0
        reply({"start": reserved})
    elif cmd == "spawn":
        reply({"pid": os.posix_spawnp("sleep", ["sleep", "30"], os.environ)})
"""


class Helper:
    def __init__(self, proc: subprocess.Popen[bytes], stderr: Path) -> None:
        self.proc = proc
        self.pid = proc.pid
        self._stderr = stderr
        self._buffer = b""
        self.info: dict[str, Any] = self._read_json()

    def _read_json(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + TIMEOUT
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            ready, _, _ = select.select([fd], [], [], max(remaining, 0))
            chunk = os.read(fd, 65536) if ready else b""
            if not chunk:
                pytest.fail(f"helper gave no answer; stderr:\n{self._stderr.read_text()}")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        result: dict[str, Any] = json.loads(line)
        return result

    def command(self, cmd: str) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(cmd.encode() + b"\n")
        self.proc.stdin.flush()
        return self._read_json()


def start_helper() -> Iterator[Helper]:
    """The helper, running until the generator is closed (the ``helper`` fixture of tests/read/conftest.py)."""
    # A short directory: AF_UNIX paths are limited to 108 bytes.
    with tempfile.TemporaryDirectory(prefix="goleak-") as tmp:
        stderr = Path(tmp, "stderr")
        with stderr.open("wb") as err:
            proc = subprocess.Popen(
                [sys.executable, "-c", HELPER, tmp],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                start_new_session=True,  # its own process group, killed whole below
            )
        try:
            yield Helper(proc, stderr)
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=TIMEOUT)
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    stream.close()


def wait_for(read: Callable[[], ProcessState], ok: Callable[[ProcessState], bool]) -> ProcessState:
    deadline = time.monotonic() + TIMEOUT
    while True:
        state = read()
        if ok(state) or time.monotonic() > deadline:
            return state
        time.sleep(0.005)
