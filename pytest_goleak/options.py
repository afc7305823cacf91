"""Every ini option, its ``--goleak-*`` flag, and how the two combine.

Each ini option ``goleak_NAME`` has a flag ``--goleak-NAME`` whose default is
None, so that a flag given wins and a flag not given leaves the ini value in
force (pytest-memray's ini options never applied because its flags had
non-None defaults).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest

from pytest_goleak.attach import AttachedService
from pytest_goleak.budget import BUDGET_FIELDS, Budget, parse_size
from pytest_goleak.errors import ConfigError
from pytest_goleak.service_config import DEFAULT_PPROF_URL, ServiceConfig
from pytest_goleak.session import SessionBudget

IniType = Literal["string", "linelist", "bool"]


@dataclass(frozen=True)
class Option:
    name: str  # without the goleak_ prefix
    help: str
    default: str = ""
    kind: IniType = "string"

    @property
    def ini(self) -> str:
        return f"goleak_{self.name}"

    @property
    def flag(self) -> str:
        return "--goleak-" + self.name.replace("_", "-")


OPTIONS = (
    Option("package", "Go package to build once per session (a directory or import path)"),
    Option("binary", "prebuilt Go binary to run instead of building goleak_package"),
    Option("build_flags", "flags for go build of goleak_package, e.g. '-race -tags=integration'"),
    Option("args", "arguments; placeholders {port} {addr} {port_NAME} {tmp}", "-addr {addr}"),
    Option("env", "KEY=VALUE lines for the service's environment (same placeholders)", kind="linelist"),
    Option("pprof_url", "where net/http/pprof is served", DEFAULT_PPROF_URL),
    Option("ready_url", "URL that answers 2xx once the service has finished starting, e.g. http://{addr}/healthz"),
    Option("start_timeout", "seconds to wait for the service to be ready", "10"),
    Option("request_timeout", "seconds any one request to the service may take", "5"),
    Option(
        "memprofilerate",
        "bytes per sampled allocation in the services started, e.g. 64KiB (GODEBUG memprofilerate); go: Go's 512KiB",
        "go",
    ),
    Option("allow_remote", "allow a pprof URL that is not loopback (it exposes memory)", "false", "bool"),
    Option("goroutines", "goroutines a test may leak (none: unchecked)", "0"),
    Option("heap", "live heap growth a test may leave, e.g. 1MiB (none: unchecked)", "1MiB"),
    Option("fds", "file descriptors a test may leak (none: unchecked)", "0"),
    Option("children", "child processes a test may leave (none: unchecked)", "0"),
    Option("threads", "OS threads a test may add (default: reported, unchecked)", "none"),
    Option("tmpfiles", "files and directories a test may leave in the service's TMPDIR (none: unchecked)", "0"),
    Option("settle", "seconds to wait for growth to wind down before failing", "2.0"),
    Option("ignore", "function-name patterns of goroutines to ignore, one per line", kind="linelist"),
    Option(
        "ignore_fds",
        "fd patterns never counted, one per line, e.g. '*.log' or 'tcp * -> 127.0.0.1:5432 *'",
        kind="linelist",
    ),
    Option("repeat", "steady-state mode for every test: N measured re-runs, a leak only if every run grows", "0"),
    Option("warmup", "unmeasured runs before the measured ones, in steady-state mode", "1"),
    Option("session_goroutines", "goroutines the service may gain across the whole session (none: unchecked)", "none"),
    Option("session_heap", "live heap the service may gain across the whole session, e.g. 64MiB", "none"),
    Option("session_fds", "file descriptors the service may gain across the whole session", "none"),
    Option("timeline", "write a self-contained HTML timeline of the session's readings to this file"),
    Option(
        "reuse_readings",
        "one reading per test: reuse the previous test's after-reading (same module or class) as the before-reading",
        "false",
        "bool",
    ),
    Option("artifacts", "directory for each failing test's profiles, dump and log (go tool pprof opens them)"),
    Option("attach_url", "check an already running service at this URL instead of starting one"),
    Option("attach_pid", "local PID of the attached service, so fds, children and threads are measured too"),
)


def register(parser: pytest.Parser) -> None:
    group = parser.getgroup("goleak", "leak checks for Go services (pytest-goleak)")
    parser.addini("goleak", "run the leak checks (false: only run the service)", type="bool", default=True)
    group.addoption("--no-goleak", action="store_true", default=False, help="run the tests, but skip every leak check")
    parser.addini("goleak_summary", "show the goleak section in the terminal summary", type="bool", default=True)
    group.addoption(
        "--no-goleak-summary", action="store_true", default=False, help="hide the goleak terminal summary section"
    )
    for option in OPTIONS:
        if option.kind == "bool":
            parser.addini(option.ini, option.help, type="bool", default=option.default == "true")
            group.addoption(option.flag, action="store_true", default=None, help=option.help)
        elif option.kind == "linelist":
            parser.addini(option.ini, option.help, type="linelist", default=[])
            group.addoption(option.flag, action="append", default=None, metavar="VALUE", help=option.help)
        else:
            parser.addini(option.ini, option.help, default=option.default)
            group.addoption(option.flag, default=None, metavar="VALUE", help=option.help)


def value(config: pytest.Config, name: str) -> object:
    """The flag's value if given, else the ini value (or its default)."""
    option = f"goleak_{name}"
    given = config.getoption(option.replace("-", "_"), default=None)
    return given if given is not None else config.getini(option)


def checks_enabled(config: pytest.Config) -> bool:
    return bool(config.getini("goleak")) and not config.getoption("no_goleak")


def default_budget(config: pytest.Config) -> Budget:
    values = {name: value(config, name) for name in BUDGET_FIELDS if name != "check"}
    return Budget().updated(values, "goleak ini/CLI option")


def _seconds(config: pytest.Config, name: str) -> float:
    raw = value(config, name)
    try:
        seconds = float(str(raw))
    except ValueError:
        raise ConfigError(f"goleak_{name} = {raw!r} is not a number of seconds; use e.g. 10") from None
    if not seconds > 0:
        raise ConfigError(f"goleak_{name} = {raw!r} must be more than 0 seconds")
    return seconds


def service_config(config: pytest.Config) -> ServiceConfig:
    """The configured service; relative paths are relative to the ini file's directory."""
    base = _ini_dir(config)
    binary = str(value(config, "binary") or "")
    package = str(value(config, "package") or "")
    return ServiceConfig(
        binary=(base / Path(binary).expanduser()) if binary else None,
        package=package or None,
        build_flags=str(value(config, "build_flags") or ""),
        base_dir=base,
        args=str(value(config, "args")),
        env=tuple(str(line) for line in value(config, "env")),  # type: ignore[attr-defined]
        pprof_url=str(value(config, "pprof_url")),
        ready_url=str(value(config, "ready_url") or ""),
        start_timeout=_seconds(config, "start_timeout"),
        request_timeout=_seconds(config, "request_timeout"),
        allow_remote_pprof=bool(value(config, "allow_remote")),
        memprofilerate=memprofilerate(config),
        where=lambda field: "goleak_" + {"allow_remote_pprof": "allow_remote"}.get(field, field),
    )


def memprofilerate(config: pytest.Config) -> int | None:
    raw = str(value(config, "memprofilerate")).strip()
    if raw.lower() in ("go", "default"):
        return None
    return parse_size(raw, "goleak_memprofilerate")


def configured(config: pytest.Config) -> bool:
    return bool(value(config, "binary") or value(config, "package"))


def session_budget(config: pytest.Config) -> SessionBudget:
    return SessionBudget.parse(
        value(config, "session_goroutines"), value(config, "session_heap"), value(config, "session_fds")
    )


def output_path(config: pytest.Config, name: str) -> Path | None:
    """A path option: relative to where pytest was run when given as a flag, else to the ini file."""
    raw = str(value(config, name) or "")
    if not raw:
        return None
    base = config.invocation_params.dir if config.getoption(f"goleak_{name}") else _ini_dir(config)
    return base / Path(raw).expanduser()


def summary_enabled(config: pytest.Config) -> bool:
    return bool(config.getini("goleak_summary")) and not config.getoption("no_goleak_summary")


def _ini_dir(config: pytest.Config) -> Path:
    return config.inipath.parent if config.inipath else config.rootpath


def attached(config: pytest.Config) -> AttachedService | None:
    """The service to attach to, if goleak_attach_url is set."""
    url = str(value(config, "attach_url") or "")
    raw_pid = str(value(config, "attach_pid") or "").strip()
    if not url:
        if raw_pid:
            raise ConfigError("goleak_attach_pid is set without goleak_attach_url; set both, or neither")
        return None
    if configured(config):
        raise ConfigError("goleak_attach_url is set along with goleak_binary/goleak_package; keep one of them")
    if raw_pid and not raw_pid.isdigit():
        raise ConfigError(f"goleak_attach_pid = {raw_pid!r} is not a process id; give the service's local PID")
    return AttachedService(
        url,
        pprof_url=str(value(config, "pprof_url")),
        pid=int(raw_pid) if raw_pid else None,
        request_timeout=_seconds(config, "request_timeout"),
        allow_remote=bool(value(config, "allow_remote")),
        ready_url=str(value(config, "ready_url") or ""),
        start_timeout=_seconds(config, "start_timeout"),
        where=lambda name: "goleak_" + {"url": "attach_url", "pid": "attach_pid"}.get(name, name),
    )
