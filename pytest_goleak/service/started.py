"""The Go process under test: start, stop, restart, its logs, and what to say when it fails.

Only this module runs the service. A :class:`GoService` runs one binary in
its own process group, with its output in a log file (never an undrained
pipe), and is stopped with SIGTERM, then SIGKILL for the whole group. Every
wait here has a deadline.
"""

from __future__ import annotations

import contextlib
import os
import select
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

from pytest_goleak.errors import (
    GoleakError,
    PprofNotServed,
    ReadyRefused,
    ServiceError,
    ServiceMisconfigured,
    ServiceUnresponsive,
)
from pytest_goleak.read.tmpdir import remove_tmpdir
from pytest_goleak.service.config import Placeholders, Ports, ServiceConfig, with_memprofilerate
from pytest_goleak.service.lifeline import MARKER, Lifeline, kill_marked, signal_group
from pytest_goleak.service.listening import (
    ListensElsewhere,
    addresses,
    elsewhere_note,
    port_of,
    until_listening,
    untold_note_for,
)
from pytest_goleak.service.protocol import unreadable
from pytest_goleak.service.readiness import NotReady, Probe, accepts, probes, wait_ready
from pytest_goleak.service.toolchain import binary_go_version, running_go_binary
from pytest_goleak.text import block

# Starts a service through the Linux process attributes it needs (see prctl_exec.py).
_PRCTL_EXEC = Path(__file__).with_name("prctl_exec.py")

MAX_UNIX_PATH = 107  # sun_path holds 108 bytes, the last one a NUL


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"was killed by {name}"
    return f"exited with code {returncode}"


def _with_prctl(command: list[str], errors: int) -> list[str]:
    """``command`` as prctl_exec.py runs it: a failed exec's errno is written to the pipe ``errors``."""
    return [sys.executable, "-S", "-I", str(_PRCTL_EXEC), str(errors), str(os.getpid()), *command]


def _exec_failure(errors: int, timeout: float) -> OSError | None:
    """The exec prctl_exec.py failed, as ``subprocess`` raises it; None once the exec closed the pipe ``errors``.

    Also None if neither came within ``timeout``: waiting for the service to be ready then decides.
    """
    deadline, told = time.monotonic() + timeout, b""
    while (left := deadline - time.monotonic()) > 0 and select.select([errors], [], [], left)[0]:
        chunk = os.read(errors, 32)
        if not chunk:
            break
        told += chunk
    if not told.isdigit():
        return None
    code = int(told)
    return OSError(code, os.strerror(code))


@dataclass
class _Run:
    """One start of the service."""

    proc: subprocess.Popen[bytes]
    placeholders: Placeholders
    command: list[str]
    log_offset: int
    tmpdir: Path | None  # the private TMPDIR the plugin gave it; None if the user set TMPDIR
    token: str  # its mark, PYTEST_GOLEAK_RUN in its environment (see lifeline.py)
    started: float = field(default_factory=time.monotonic)


class GoService:
    """One running Go binary. Session-scoped: restarted in place if it dies."""

    def __init__(
        self,
        config: ServiceConfig,
        binary: Path,
        workdir: Path,
        lifeline: Lifeline | None = None,
        linux_calls: bool = True,
    ) -> None:
        self.config = config
        # prctl where it exists; off with the portable backend, whose lifecycle rests on the lifeline alone.
        self.linux_calls = linux_calls
        self.binary = binary
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / f"{config.display_name}.log"
        self._lifeline = lifeline
        self._run: _Run | None = None
        self._exit_reported = False  # a test's report told of this run's end: no warning needed
        self._was_ready = False  # some start got as far as ready: a failure now is not the configuration's
        self._wrapper = binary_go_version(binary) is None  # a script that runs the Go binary: see ``ran``
        self.ran: tuple[str, str] | None = None  # a wrapper's first run: the Go binary it ran, and its Go version

    # -- what tests see -------------------------------------------------

    @property
    def name(self) -> str:
        return self.config.display_name

    @property
    def request_timeout(self) -> float:
        return self.config.request_timeout

    @property
    def running(self) -> _Run:
        if self._run is None:
            raise ServiceError(f"{self.config.display_name} is not running")
        return self._run

    @property
    def pid(self) -> int:
        return self.running.proc.pid

    @property
    def port(self) -> int:
        return int(self.running.placeholders["port"])

    @property
    def ports(self) -> Ports:
        """Every port picked for this start, by placeholder name (``port_debug``, or ``debug`` alone)."""
        return self.running.placeholders.ports

    @property
    def url(self) -> str:
        return "http://localhost" if self.config.unix_socket else f"http://127.0.0.1:{self.port}"

    @property
    def unix_socket(self) -> str | None:
        return self.config.unix_socket.format_map(self.running.placeholders) if self.config.unix_socket else None

    @property
    def pprof_url(self) -> str:
        return self.config.pprof_url.format_map(self.running.placeholders)

    @property
    def grpc_target(self) -> str:
        return self.config.grpc_target(self.running.placeholders)

    @property
    def tmp(self) -> Path:
        return Path(self.running.placeholders["tmp"])

    @property
    def tmpdir(self) -> Path | None:
        """The service's private ``TMPDIR`` (``os.TempDir()``), or None if goleak_env set its own."""
        return self.running.tmpdir

    @property
    def command(self) -> list[str]:
        return self.running.command

    @property
    def started_at(self) -> float:
        return self.running.started

    @property
    def start_timeout(self) -> float:
        return self.config.start_timeout

    def alive(self) -> bool:
        return self._run is not None and self._run.proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self._run is None else self._run.proc.poll()

    def log_tail(self, lines: int = 50) -> str:
        """The last ``lines`` lines this run of the service wrote (stdout and stderr)."""
        return "\n".join(self.output_since_start(256 << 10).splitlines()[-lines:])

    # -- lifecycle ------------------------------------------------------

    def start(self) -> None:
        if self.alive():
            return
        tmp = Path(tempfile.mkdtemp(prefix=f"{self.config.display_name}-", dir=self.workdir))
        placeholders = Placeholders(tmp, self.config.filled_rootdir)
        command = self.config.command(self.binary, placeholders)
        pprof_url = self.config.pprof_url.format_map(placeholders)
        pprof_host, pprof_port = urlsplit(pprof_url).hostname or "127.0.0.1", port_of(pprof_url)
        unix_socket = self.config.unix_socket.format_map(placeholders)
        if len(os.fsencode(unix_socket)) > MAX_UNIX_PATH:
            raise self._start_error(
                f"{self.config.where('unix_socket')} {unix_socket} is longer than a unix socket path may be"
                f" ({MAX_UNIX_PATH} bytes); put it in a shorter directory, e.g. --basetemp=/tmp/t"
            )
        if not unix_socket and pprof_port not in placeholders.ports.values() and accepts(pprof_host, pprof_port):
            raise self._start_error(
                f"port {pprof_port} of {self.config.where('pprof_url')} is already in use by another process; "
                "stop it, or use {port} / {port_NAME} so the plugin picks a free port"
            )
        try:
            self.config.render_files(placeholders)
        except OSError as exc:
            raise self._start_error(f"cannot write {self.config.where('files')}: {exc}") from None
        env, tmpdir = self._environment(placeholders)
        token = env[MARKER] = uuid.uuid4().hex  # what its descendants keep, wherever they go (see lifeline.py)
        with self.log_path.open("ab") as log:
            offset = log.tell()
            log.write(f"--- pytest-goleak: starting {shlex.join(command)}\n".encode())
            log.flush()
            try:
                proc = self._spawn(command, log, env, tmp)
            except OSError as exc:
                if tmpdir is not None:
                    remove_tmpdir(tmpdir)
                raise self._start_error(
                    f"cannot run {command[0]}: {exc.strerror}; check {self.config.where('binary')}"
                ) from None
        if self._lifeline is not None:
            self._lifeline.guard(proc.pid, token, tmpdir)
        self._run = _Run(proc, placeholders, command, offset, tmpdir, token)
        self._exit_reported = False
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        self._was_ready = True
        if self.ran is None and self._wrapper:
            self.ran = running_go_binary(proc.pid)

    def _spawn(self, command: list[str], log: IO[bytes], env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
        """Start ``command`` in a process group of its own; OSError, as ``subprocess`` raises it, if it cannot run.

        Never with a ``preexec_fn``, which would fork pytest and run Python in the child (see prctl_exec.py).
        """

        def popen(args: list[str], pass_fds: tuple[int, ...] = ()) -> subprocess.Popen[bytes]:
            return subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=cwd,
                start_new_session=True,  # its own process group, stopped as one
                pass_fds=pass_fds,
            )

        if not self.linux_calls:
            return popen(command)
        errors, told = os.pipe()
        try:
            proc = popen(_with_prctl(command, told), pass_fds=(told,))
        finally:
            os.close(told)
        try:
            failure = _exec_failure(errors, self.config.start_timeout)
            if failure is not None:
                raise failure
        except BaseException:
            signal_group(proc.pid)  # a failed exec, or Ctrl-C before the service is anyone's to stop
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(self.config.stop_timeout)
            raise
        finally:
            os.close(errors)
        return proc

    def _environment(self, placeholders: Placeholders) -> tuple[dict[str, str], Path | None]:
        """The service's environment, and the private TMPDIR in it whose contents are counted (if any)."""
        overrides = self.config.env_overrides(placeholders)
        env = {**os.environ, **overrides}
        tmpdir = None  # a TMPDIR the user chose may be shared with others: not counted
        if "TMPDIR" not in overrides:
            # A private TMPDIR, so that temp files the service leaves behind can be
            # counted. Short, in the system's temp dir: a unix socket path in it must
            # fit the kernel's 108 bytes, which pytest's deep basetemp could exceed.
            tmpdir = Path(tempfile.mkdtemp(prefix="goleak-"))
            env["TMPDIR"] = str(tmpdir)
        if self.config.memprofilerate is not None:
            env["GODEBUG"] = with_memprofilerate(env.get("GODEBUG", ""), self.config.memprofilerate)
        return env, tmpdir

    @property
    def ready_url(self) -> str | None:
        return self.config.ready_url.format_map(self.running.placeholders) if self.config.ready_url else None

    def _wait_ready(self) -> None:
        """Wait until ``{port}`` accepts, pprof answers and, if configured, the ready URL answers 2xx.

        The wait ends before the start timeout only when waiting cannot help:
        the service exited; pprof answers 404 or the ready URL a lasting 4xx;
        or a URL waits on a port the plugin picked that neither goleak_args
        nor goleak_env passes to the service (it cannot know that port) while
        the service already listens elsewhere, its set of listeners unchanged
        for LISTENERS_SETTLE seconds (see :mod:`pytest_goleak.service.listening`; it will not
        move). A service told its port that listens elsewhere may still be
        binding the right one: that wait runs to the timeout, and its error
        names where the service listens.
        """
        run, args = self.running, self.config.args
        port = int(run.placeholders["port"]) if "{port}" in args or "{addr}" in args else None
        deadline = run.started + self.config.start_timeout
        untold = dict(self.config.untold_ports())  # URL field -> the placeholder the service was never told
        found = [
            Probe(probe.waits_for, until_listening(probe.check, self.pid))
            if f"{probe.waits_for}_url" in untold
            else probe
            for probe in probes(self.pprof_url, self.ready_url, port, self.unix_socket)
        ]
        untold_note = untold_note_for(self.config, run.placeholders, *next(iter(untold.items()))) if untold else ""
        try:
            wait_ready(found, deadline, self.alive)
        except PprofNotServed as exc:  # pprof is not mounted: no use waiting
            raise self._start_error(self._failure(f"answers but serves no pprof at {exc}", tail=False)) from None
        except ReadyRefused as exc:  # nor will a 404 turn into a 2xx
            raise self._start_error(self._failure(f"answers, but {exc}", tail=False)) from None
        except ListensElsewhere as exc:
            what = f"listens on {addresses(exc.listeners)}, but {untold_note}"
            raise self._start_error(self._failure(what)) from None
        except NotReady as exc:
            if exc.exited:
                where = self.config.where
                checked = [where("args"), where("env"), *([where("files")] if self.config.files else [])]
                fix = f"; its output says why: check {', '.join(checked[:-1])} and {checked[-1]}"
                raise self._start_error(self._failure("exited during start-up", note=untold_note, fix=fix)) from None
            what = f"was not ready within {self.config.start_timeout:g}s ({exc.problem})"
            if untold_note:
                what += f"; {untold_note}"
            else:
                what += elsewhere_note(self.config, run.placeholders, self.pid, exc.waits_for)
            # A lasting 5xx, like a wrong configuration, would fail every later start the same way.
            raise self._start_error(self._failure(what), config=bool(untold_note) or exc.answering) from None

    def _start_error(self, message: str, config: bool = True) -> ServiceError:
        """The error of a start that failed; the configuration's (the session stops) until a start got to ready."""
        return ServiceMisconfigured(message) if config and not self._was_ready else ServiceError(message)

    def _failure(self, what: str, tail: bool = True, note: str = "", fix: str = "") -> str:
        run = self.running
        code = run.proc.poll()
        status = "" if code is None else f" ({describe_exit(code)})"
        message = f"{self.config.display_name} {what}{status}{fix}\n  command: {shlex.join(run.command)}"
        if note:
            message += f"\n  {note}"
        log = self.log_tail(30)
        if "address already in use" in log:
            message += "\n  a port it needs is already in use: let the plugin pick ports with {port} or {port_NAME}"
        if tail and log:
            message += f"\n  last lines of its output ({self.log_path}):\n" + block(log)
        return message

    def stop(self) -> int | None:
        """SIGTERM the process group, wait, then SIGKILL it. Returns the exit code."""
        run = self._run
        if run is None:
            return None
        proc = run.proc
        try:
            if proc.poll() is None:
                signal_group(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(self.config.stop_timeout)
                except subprocess.TimeoutExpired:
                    pass
        finally:
            # Also when a second Ctrl-C lands in the wait above: nothing here waits, and the watchdog lets go
            # of the group only once it is killed. Whatever the service spawned goes too, even if the service
            # is gone: its group, and the daemons that left the group, by their mark.
            signal_group(proc.pid, signal.SIGKILL)
            kill_marked(run.token, portable=not self.linux_calls)
            if self._lifeline is not None:
                self._lifeline.release(proc.pid)
            if run.tmpdir is not None:
                remove_tmpdir(run.tmpdir)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(self.config.stop_timeout)
        return proc.returncode

    def output_since_start(self, limit: int = 1 << 20) -> str:
        """Everything this run of the service wrote, up to ``limit`` bytes from its end."""
        run = self._run
        try:
            with self.log_path.open("rb") as log:
                size = log.seek(0, os.SEEK_END)
                log.seek(max(run.log_offset if run else 0, size - limit))
                return log.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def crash_output(self, lines: int = 60) -> str:
        """The end of the log, widened to start at a Go panic or fatal error if one is there.

        A panic's stack trace is the one thing a user needs in full.
        """
        text = self.output_since_start().splitlines()
        for index in range(len(text) - 1, -1, -1):
            if text[index].startswith(("panic: ", "fatal error: ", "SIGQUIT: quit")):
                return "\n".join(text[index:][:2000])
        return "\n".join(text[-lines:])

    def wait_exit(self, timeout: float) -> int | None:
        """Wait up to ``timeout`` seconds for the service to exit; its exit code, or None."""
        run = self._run
        if run is None:
            return None
        try:
            return run.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill_with_dump(self, timeout: float = 3.0) -> str:
        """Stop a service that no longer answers, after asking Go for every goroutine's stack.

        SIGQUIT makes the Go runtime print all stacks to stderr (our log) and
        exit. SIGCONT follows so that a stopped (SIGSTOP) process handles it.
        Returns what the service printed from the SIGQUIT on.
        """
        run = self._run
        if run is None or run.proc.poll() is not None:
            return ""
        with self.log_path.open("rb") as log:
            before = log.seek(0, os.SEEK_END)
        os.kill(run.proc.pid, signal.SIGQUIT)
        os.kill(run.proc.pid, signal.SIGCONT)
        self.wait_exit(timeout)
        self.stop()
        with self.log_path.open("rb") as log:
            log.seek(before)
            return log.read(8 << 20).decode("utf-8", "replace")

    def restart(self) -> None:
        self.stop()
        self._run = None
        self.start()

    # -- what to say when it fails --------------------------------------

    def _ended(self) -> str:
        code = self.returncode
        return describe_exit(code) if code is not None else "stopped"

    def describe_crash(self) -> str:
        self._exit_reported = True
        output = block(self.crash_output(), max_lines=2000)
        return f"{self.name} {self._ended()} during this test\nits output ({self.log_path}):\n{output}"

    def unreported_exit(self) -> str | None:
        return None if self.alive() or self._exit_reported else f"{self.name} {self._ended()}"

    def diagnose_unreadable(self, error: GoleakError, when: str) -> str:
        """It crashed; or, if it stopped answering, it is wedged and is killed after a goroutine dump."""
        if self.wait_exit(0.5) is not None:
            return self.describe_crash()
        text = unreadable(error, when)
        if isinstance(error, ServiceUnresponsive) and self.alive():
            lines = self.kill_with_dump().splitlines()
            self._exit_reported = True
            shown = block("\n".join(lines[:120])) + (f"\n... {len(lines) - 120} more lines" if len(lines) > 120 else "")
            text += (
                f"\n{self.name} was killed after a SIGQUIT goroutine dump "
                f"(in full in {self.log_path}); the next test gets a fresh service.\n{shown}"
            )
        return text
