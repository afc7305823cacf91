"""Every ini option and ``--goleak-*`` flag, resolved once at configure time into :class:`Settings`.

Each ini option ``goleak_NAME`` has a flag ``--goleak-NAME`` whose default is
None, so that a flag given wins and a flag not given leaves the ini value in
force (pytest-memray's ini options never applied because its flags had
non-None defaults). Each default is written once: a measure's in
:mod:`pytest_goleak.judge.measures`, a knob's on :class:`~pytest_goleak.judge.budget.Budget`,
a service setting's on :class:`~pytest_goleak.service.config.ServiceConfig`,
the rest in :data:`OPTIONS`. The rest of the plugin reads typed values only.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest

from pytest_goleak.errors import ConfigError
from pytest_goleak.judge.budget import KNOB_DEFAULTS, KNOBS, Budget
from pytest_goleak.judge.measures import MEASURES, SESSION, Measure
from pytest_goleak.judge.startup import DEFAULT_QUIET
from pytest_goleak.read.backend import ENV, Backend, Lack, choose
from pytest_goleak.report.compare import Threshold, parse_fail
from pytest_goleak.report.session import SessionBudget
from pytest_goleak.service.config import ServiceConfig, Where
from pytest_goleak.units import (
    format_size,
    is_unchecked,
    parse_bool,
    parse_lines,
    parse_patterns,
    parse_seconds,
    parse_size,
    parse_text,
)

IniType = Literal["string", "linelist", "bool"]


def _service_default(name: str) -> Any:
    return next(f.default for f in dataclasses.fields(ServiceConfig) if f.name == name)


def _timeout(value: object, where: str) -> float:
    return parse_seconds(value, where, positive=True)


def parse_memprofilerate(value: object, where: str) -> int | None:
    """Bytes per sampled allocation; ``go`` (or ``default``) keeps Go's own 512 KiB."""
    if isinstance(value, str) and value.strip().lower() in ("go", "default"):
        return None
    return parse_size(value, where)


Annotations = Literal["auto", "github", "off"]


def parse_annotations(value: object, where: str) -> Annotations:
    """``auto`` (GitHub's when ``GITHUB_ACTIONS=true``), ``github`` (always) or ``off``."""
    said = value.strip().lower() if isinstance(value, str) else value
    if said in ("auto", "github", "off"):
        return said
    if said in (False, "false", "no", "0", "none"):
        return "off"
    raise ConfigError(f"{where}: {value!r} is not auto, github or off; e.g. --goleak-annotations=off")


def _shown(value: object) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):
        return ", ".join(str(v) for v in value) or "none"
    return str(value)


@dataclass(frozen=True)
class Option:
    name: str  # without the goleak_ prefix
    help: str
    parse: Callable[[object, str], Any] = parse_text
    default: object = ""
    kind: IniType = "string"
    shown: str = ""  # the default as the user writes it, where that differs from its value
    env: str = ""  # an environment variable that sets it too: below the flag, above the ini

    @property
    def ini(self) -> str:
        return f"goleak_{self.name}"

    @property
    def flag(self) -> str:
        return "--goleak-" + self.name.replace("_", "-")

    @property
    def dest(self) -> str:
        return self.ini

    @property
    def described(self) -> str:
        if self.default in ("", ()):
            return self.help
        return f"{self.help} (default: {self.shown or _shown(self.default)})"


def _ini_kind(parse: Callable[[object, str], Any]) -> IniType:
    return "linelist" if parse is parse_patterns else "string"


def _limit_option(name: str, help: str, parse: Callable[[object, str], int], default: int | None) -> Option:
    def limit(value: object, where: str) -> int | None:
        return None if is_unchecked(value) else parse(value, where)

    return Option(name, f"{help} (none: unchecked)", limit, default)


SERVICE_OPTIONS = (
    Option("package", "Go package to build once per session (a directory or import path)"),
    Option(
        "binary",
        "prebuilt Go binary to run instead of building goleak_package: a path, or a command name found beside the ini "
        "file or on PATH",
    ),
    Option("build_flags", "flags for go build of goleak_package, e.g. '-race -tags=integration'"),
    Option(
        "args",
        "arguments; placeholders {port} {addr} {port_NAME} {tmp} {rootdir} (on the command line: --goleak-args=...)",
        default=_service_default("args"),
    ),
    Option("env", "KEY=VALUE lines for the service's environment (same placeholders)", parse_lines, (), "linelist"),
    Option(
        "files",
        "SOURCE -> {tmp}/DEST lines: config files written for each start with the placeholders filled in",
        parse_lines,
        (),
        "linelist",
    ),
    Option("pprof_url", "where net/http/pprof is served", default=_service_default("pprof_url")),
    Option(
        "unix_socket",
        "a unix socket every request to the service goes over (then the URLs' hosts are only Host headers), "
        "e.g. {tmp}/api.sock",
    ),
    Option("ready_url", "URL that answers 2xx once the service has finished starting, e.g. http://{addr}/healthz"),
    Option("start_timeout", "seconds to wait for the service to be ready", _timeout, _service_default("start_timeout")),
    Option(
        "request_timeout", "seconds one request to the service may take", _timeout, _service_default("request_timeout")
    ),
    Option(
        "memprofilerate",
        "bytes per sampled allocation in the services started, e.g. 64KiB (GODEBUG memprofilerate); go: Go's 512KiB",
        parse_memprofilerate,
        None,
        shown="go",
    ),
    Option("allow_remote", "allow a pprof URL that is not loopback (it exposes memory)", parse_bool, False, "bool"),
    Option(
        "grpc_port",
        "the port pytest_goleak.grpc_channel dials: NAME for the {port_NAME} passed to the service, or a number; "
        "unset: the main port {port}",
    ),
)
# After each start, before the first test: see judge/startup.py for the rule.
STARTUP_OPTIONS = (
    Option(
        "startup_quiet",
        "seconds the service's goroutines and fds must stay unchanged after a start before the first test (0: no wait)",
        parse_seconds,
        DEFAULT_QUIET,
    ),
)
# goleak_NAME for each measure and knob: they resolve into the default Budget.
BUDGET_OPTIONS = (
    *(_limit_option(m.name, m.help, m.parse, m.default) for m in MEASURES),
    *(
        Option(knob.name, knob.help, knob.parse, KNOB_DEFAULTS[knob.name], _ini_kind(knob.parse))
        for knob in KNOBS
        if knob.name != "check"
    ),
)
SESSION_OPTIONS = tuple(
    _limit_option(f"session_{m.name}", f"{m.name} the service may gain across the whole session", m.parse, None)
    for m in SESSION
)
OTHER_OPTIONS = (
    Option("timeline", "write a self-contained HTML timeline of the session's readings to this file"),
    Option(
        "fresh_readings",
        "take a fresh before-reading for every test, even where the previous test's after-reading is still current",
        parse_bool,
        False,
        "bool",
    ),
    Option("artifacts", "directory for each failing test's profiles, dump and log (go tool pprof opens them)"),
    Option("json", "write the session's readings and verdicts to this JSON file (merged across xdist workers)"),
    Option("baseline", "JSON file of known leaks per test (relative to the rootdir): only new leaks fail"),
    Option(
        "update_baseline",
        "record this run's leaks into goleak_baseline instead of failing tests for them",
        parse_bool,
        False,
        "bool",
    ),
    Option(
        "baseline_strict",
        "fail the run when goleak_baseline knows of a leak that did not happen (a stale entry), naming the entries",
        parse_bool,
        False,
        "bool",
    ),
    Option(
        "md",
        "write the session's summary as Markdown to this file; github: append it to $GITHUB_STEP_SUMMARY "
        "(the job summary)",
    ),
    Option(
        "annotations",
        "GitHub Actions error annotations at each leaking test's file and line: auto (when GITHUB_ACTIONS=true), "
        "github (always) or off",
        parse_annotations,
        "auto",
    ),
    Option(
        "compare",
        "compare each test's growth with another run's goleak_json file (main's, say); several files (shards) are "
        "one run",
        parse_lines,
        (),
        "linelist",
    ),
    Option(
        "compare_fail",
        "fail the run when a test grew more than in the compared run by more than this, e.g. "
        "heap:+256KiB,goroutines:+0 (session_heap:+4MiB for the whole session)",
        parse_fail,
        (),
        shown="none",
    ),
    Option("attach_url", "check an already running service at this URL instead of starting one"),
    Option("attach_pid", "local PID of the attached service, so fds, children and threads are measured too"),
    Option(
        "backend",
        "how a process is read: auto (/proc where it exists, else psutil's portable calls), proc or portable "
        f"(also {ENV} in the environment, which wins over the ini)",
        default="auto",
        env=ENV,
    ),
)
OPTIONS = (*SERVICE_OPTIONS, *STARTUP_OPTIONS, *BUDGET_OPTIONS, *SESSION_OPTIONS, *OTHER_OPTIONS)
_BY_NAME = {option.name: option for option in OPTIONS}
# ServiceConfig and AttachedService field -> the option that sets it, where the names differ.
_FIELD_OPTION = {"allow_remote_pprof": "allow_remote", "url": "attach_url", "pid": "attach_pid"}


def register(parser: pytest.Parser) -> None:
    group = parser.getgroup("goleak", "leak checks for Go services (pytest-goleak)")
    parser.addini("goleak", "run the leak checks (false: only run the service)", type="bool", default=True)
    group.addoption("--no-goleak", action="store_true", default=False, help="run the tests, but skip every leak check")
    parser.addini("goleak_summary", "show the goleak section in the terminal summary", type="bool", default=True)
    group.addoption(
        "--no-goleak-summary", action="store_true", default=False, help="hide the goleak terminal summary section"
    )
    for option in OPTIONS:
        # Ini defaults are empty, so that "not set" can be told from a value; the real default is option.default.
        if option.kind == "bool":
            parser.addini(option.ini, option.described, type="bool", default=bool(option.default))
            group.addoption(option.flag, action="store_true", dest=option.dest, default=None, help=option.described)
        elif option.kind == "linelist":
            parser.addini(option.ini, option.described, type="linelist", default=[])
            group.addoption(
                option.flag, action="append", dest=option.dest, default=None, metavar="VALUE", help=option.described
            )
        else:
            parser.addini(option.ini, option.described, default="")
            group.addoption(option.flag, dest=option.dest, default=None, metavar="VALUE", help=option.described)


def marker_help() -> str:
    """The ``goleak`` marker's line in ``pytest --markers``, from the defaults."""

    def shown(value: object, size: bool = False) -> str:
        if isinstance(value, int) and not isinstance(value, bool) and size:
            return repr(format_size(value).replace(".0 ", "").replace(" ", ""))
        return "[]" if value == () else repr(value)

    limits = [f"{m.name}={shown(m.default, m.bytes)}" for m in MEASURES]
    knobs = [f"{knob.name}={shown(KNOB_DEFAULTS[knob.name])}" for knob in KNOBS]
    return (
        f"goleak({', '.join(limits + knobs)}): leak budget for this test (pytest-goleak); "
        "None leaves a measure unchecked"
    )


class _Sources:
    """The raw values given for options, and the phrase naming where each came from."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.ini_name = config.inipath.name if config.inipath else "the ini file"
        self.given: dict[str, tuple[object, str]] = {}
        for option in OPTIONS:
            flag = config.getoption(option.dest, default=None)
            if flag is not None:
                self.given[option.name] = (flag, option.flag)
                continue
            if option.env and os.environ.get(option.env):
                self.given[option.name] = (os.environ[option.env], f"{option.env} in the environment")
                continue
            raw = config.getini(option.ini)
            # An empty string or list is pytest's "not set" (the ini defaults are empty); a bool is always given.
            if option.kind == "bool" or raw not in ("", []):
                self.given[option.name] = (raw, f"{option.ini} in {self.ini_name}")

    def where(self, name: str) -> str:
        return self.given[name][1] if name in self.given else f"goleak_{name}"

    def field_where(self, field: str) -> str:
        """A service field's setting as the user wrote it: ``--goleak-args``, or ``goleak_args``.

        Service errors use it in their fix too ("set goleak_allow_remote = true"), so it names no file.
        """
        option = _BY_NAME[_FIELD_OPTION.get(field, field)]
        return option.flag if self.flagged(option.name) else option.ini

    def flagged(self, name: str) -> bool:
        return name in self.given and self.given[name][1].startswith("--")

    def value(self, name: str) -> Any:
        """The option's typed value: parsed from where it was given, else its default."""
        option = _BY_NAME[name]
        if name not in self.given:
            return option.default
        raw, where = self.given[name]
        return option.parse(raw, where)


@dataclass(frozen=True)
class Settings:
    """Every goleak setting of this run, typed and validated."""

    enabled: bool
    summary: bool
    budget: Budget
    session_budget: SessionBudget
    base_dir: Path  # where relative paths in the ini file start
    service: ServiceConfig | None
    memprofilerate: int | None
    attach_url: str
    attach_pid: int | None
    artifacts: Path | None
    timeline: Path | None
    json: Path | None
    baseline: Path | None  # relative paths start at the rootdir, from the ini file or a flag alike
    update_baseline: bool
    baseline_strict: bool
    md: Path | None
    md_append: bool  # the job summary: appended to, as other steps' tools write there too
    annotations: bool
    compare: tuple[Path, ...]
    compare_fail: tuple[Threshold, ...]
    backend: Backend  # how the services' processes are read: /proc, or psutil's portable calls
    fresh_readings: bool
    startup_quiet: float
    # Settings the services and attach mode are built from, for the factory fixture and AttachedService.
    pprof_url: str
    ready_url: str
    start_timeout: float
    request_timeout: float
    grpc_port: str
    allow_remote: bool
    # A service or attach setting's field name -> the phrase naming where its value came from.
    where: Where = dataclasses.field(compare=False, repr=False)

    @property
    def header_budgets(self) -> str:
        """``goroutines 0, heap 1.0 MiB, ...; settle 2s``, for the report header."""
        budget, lacks = self.budget, self.backend.lacks

        def limit(m: Measure) -> str:
            if not m.measured(lacks):
                return "not measured on this platform"
            return "unchecked" if budget.limit(m) is None else m.show(budget.limit(m) or 0)

        limits = ", ".join(f"{m.name} {limit(m)}" for m in MEASURES)
        return f"{limits}; settle {budget.settle:g}s"

    @property
    def header_backend(self) -> str:
        """``processes read by /proc``, or the portable backend with what each measure can and cannot do there."""
        backend = self.backend
        said = [f"{m.name}: {m.availability(backend.lacks)}" for m in MEASURES if m.availability(backend.lacks)]
        if Lack.BYTES_READ in backend.lacks:
            said.append(Lack.BYTES_READ.value)
        return f"processes read by {backend.source}" + (f" ({'; '.join(said)})" if said else "")


def resolve(config: pytest.Config) -> Settings:
    """Read every option once; raises :class:`ConfigError` naming the first bad value's source."""
    sources = _Sources(config)
    base = config.inipath.parent if config.inipath else config.rootpath
    given_budget = {
        option.name: sources.given[option.name][0] for option in BUDGET_OPTIONS if option.name in sources.given
    }
    budget = Budget().updated(given_budget, sources.where)
    session = SessionBudget({m.name: sources.value(f"session_{m.name}") for m in SESSION})
    attach_url, attach_pid = _attach(sources)
    baseline, update_baseline = sources.value("baseline"), sources.value("update_baseline")
    if update_baseline and not baseline:
        raise ConfigError("--goleak-update-baseline needs a file to write: set goleak_baseline or --goleak-baseline")
    if sources.value("baseline_strict") and not baseline:
        raise ConfigError("goleak_baseline_strict needs a baseline: set goleak_baseline or --goleak-baseline")
    compare, compare_fail = _compare(sources, base), sources.value("compare_fail")
    if compare_fail and not compare:
        raise ConfigError(
            f"{sources.where('compare_fail')} needs a run to compare with: add --goleak-compare=PATH (a goleak_json "
            "file)"
        )
    md, md_append = _markdown_path(sources, base)
    service = _service_config(sources, base) if (sources.value("binary") or sources.value("package")) else None
    if attach_url and service is not None:
        raise ConfigError("goleak_attach_url is set along with goleak_binary/goleak_package; keep one of them")
    return Settings(
        enabled=bool(config.getini("goleak")) and not config.getoption("no_goleak"),
        summary=bool(config.getini("goleak_summary")) and not config.getoption("no_goleak_summary"),
        budget=budget,
        session_budget=session,
        base_dir=base,
        service=service,
        memprofilerate=sources.value("memprofilerate"),
        attach_url=attach_url,
        attach_pid=attach_pid,
        artifacts=_output_path(sources, "artifacts", base),
        timeline=_output_path(sources, "timeline", base),
        json=_output_path(sources, "json", base),
        baseline=config.rootpath / Path(baseline).expanduser() if baseline else None,
        update_baseline=update_baseline,
        baseline_strict=sources.value("baseline_strict"),
        md=md,
        md_append=md_append,
        annotations=_annotations(sources.value("annotations")),
        compare=compare,
        compare_fail=compare_fail,
        backend=choose(sources.value("backend"), sources.where("backend")),
        fresh_readings=sources.value("fresh_readings"),
        startup_quiet=sources.value("startup_quiet"),
        allow_remote=sources.value("allow_remote"),
        where=sources.field_where,
        **_reach(sources),
    )


def _service_config(sources: _Sources, base: Path) -> ServiceConfig:
    """The configured service; relative paths are relative to the ini file's directory.

    The binary stays as written (a command name is looked up when it is
    needed: beside the ini file, then on PATH; see toolchain.locate_binary).
    """
    binary = sources.value("binary")
    return ServiceConfig(
        binary=Path(binary).expanduser() if binary else None,
        package=sources.value("package") or None,
        build_flags=sources.value("build_flags"),
        base_dir=base,
        rootdir=sources.config.rootpath,
        args=sources.value("args"),
        env=sources.value("env"),
        files=sources.value("files"),
        unix_socket=sources.value("unix_socket"),
        allow_remote_pprof=sources.value("allow_remote"),
        memprofilerate=sources.value("memprofilerate"),
        where=sources.field_where,
        **_reach(sources),
    )


def _reach(sources: _Sources) -> dict[str, Any]:
    """How to reach a service, started or attached: the settings both kinds share, by their common names."""
    names = ("pprof_url", "ready_url", "start_timeout", "request_timeout", "grpc_port")
    return {name: sources.value(name) for name in names}


def _attach(sources: _Sources) -> tuple[str, int | None]:
    url, raw_pid = sources.value("attach_url"), sources.value("attach_pid")
    if not url and raw_pid:
        raise ConfigError("goleak_attach_pid is set without goleak_attach_url; set both, or neither")
    if raw_pid and not raw_pid.isdigit():
        raise ConfigError(
            f"{sources.where('attach_pid')}: {raw_pid!r} is not a process id; give the service's local PID"
        )
    return url, int(raw_pid) if raw_pid else None


def _output_path(sources: _Sources, name: str, base: Path) -> Path | None:
    """A path option: relative to where pytest was run when given as a flag, else to the ini file."""
    raw = sources.value(name)
    if not raw:
        return None
    start = sources.config.invocation_params.dir if sources.flagged(name) else base
    return start / Path(raw).expanduser()


def _start(sources: _Sources, name: str, base: Path) -> Path:
    return sources.config.invocation_params.dir if sources.flagged(name) else base


def _compare(sources: _Sources, base: Path) -> tuple[Path, ...]:
    """The compared run's files: relative to where pytest was run when given as flags, else to the ini file."""
    start = _start(sources, "compare", base)
    return tuple(start / Path(raw).expanduser() for raw in sources.value("compare"))


def _markdown_path(sources: _Sources, base: Path) -> tuple[Path | None, bool]:
    """The Markdown summary's file, and whether to append to it (``github``: the job summary's file)."""
    raw = sources.value("md")
    if raw.lower() != "github":
        return _output_path(sources, "md", base), False
    summary = os.environ.get("GITHUB_STEP_SUMMARY", "")
    if not summary:
        raise ConfigError(
            f"{sources.where('md')} = github appends to $GITHUB_STEP_SUMMARY, which is not set (not a GitHub "
            "Actions step); give a file instead, e.g. --goleak-md=goleak.md"
        )
    return Path(summary), True


def _annotations(said: Annotations) -> bool:
    return said == "github" or (said == "auto" and os.environ.get("GITHUB_ACTIONS") == "true")


def marker_where(nodeid: str) -> Where:
    def where(name: str) -> str:
        return f"@pytest.mark.goleak({name}=...) on {nodeid}"

    return where
