"""How to get and run one Go service: :class:`ServiceConfig`, its templates and the ports they pick.

A config is checked whole when it is made, so a bad one fails before
anything is built or started. Its errors name where each field came from
through ``where``: an ini option, or a ``goleak_service_factory`` keyword.
"""

from __future__ import annotations

import re
import shlex
import socket
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from pytest_goleak.errors import ConfigError, ServiceError
from pytest_goleak.service.loopback import require_loopback

DEFAULT_PPROF_URL = "http://{addr}/debug/pprof/"
# The placeholders every template takes, besides one {port_NAME} per NAME.
PLACEHOLDERS = ("port", "addr", "tmp", "rootdir")

# Attach mode shares these defaults; the settings take theirs from ServiceConfig's fields.
START_TIMEOUT = 10.0
REQUEST_TIMEOUT = 5.0

Where = Callable[[str], str]
"""Maps a field's name to the phrase that names its source in an error, e.g. ``goleak_args``."""


def factory_where(name: str) -> str:
    """Where a field comes from when nobody said otherwise: a keyword of ``goleak_service_factory``."""
    return f"goleak_service_factory({name}=...)"


@dataclass(frozen=True)
class ServiceConfig:
    """How to get and run one Go service; placeholders are filled per start.

    Placeholders in ``args``, ``env``, ``pprof_url``, ``ready_url`` and
    ``files``: ``{port}``, ``{addr}`` (``127.0.0.1:{port}``), ``{port_NAME}``
    (one more free port per NAME), ``{tmp}`` (a fresh private directory for
    each start) and ``{rootdir}`` (``rootdir``: pytest's rootdir, absolute; the
    current directory when the config is made outside the plugin).

    ``grpc_port`` says which port ``pytest_goleak.grpc_channel`` dials: a
    NAME (the ``{port_NAME}`` passed to the service), a port number, or ""
    for the main port.
    """

    binary: Path | None = None
    package: str | None = None
    build_flags: str = ""  # for `go build`, shell-style: "-race -tags=integration"
    args: str = "-addr {addr}"
    env: tuple[str, ...] = ()
    # "SOURCE -> {tmp}/DEST" lines: a config file rendered with the placeholders into each start's {tmp}.
    files: tuple[str, ...] = ()
    pprof_url: str = DEFAULT_PPROF_URL
    # A service reached only over a unix socket: every request goes there, the URLs' hosts are Host headers.
    unix_socket: str = ""
    # Answers 2xx once the service has finished initialising; tests wait for
    # it, so growth during start-up is not charged to the first test.
    ready_url: str = ""
    start_timeout: float = START_TIMEOUT
    stop_timeout: float = 5.0
    request_timeout: float = REQUEST_TIMEOUT
    allow_remote_pprof: bool = False
    # runtime.MemProfileRate, set through GODEBUG; None keeps Go's 512 KiB.
    # Lower rates name the sites of smaller leaks but make every heap reading dearer.
    memprofilerate: int | None = None
    grpc_port: str = ""
    name: str = ""
    base_dir: Path = Path(".")  # where relative binary and package paths start
    rootdir: Path | None = None  # what {rootdir} stands for; None: the current directory
    where: Where = field(default=factory_where, compare=False, repr=False)
    templates: tuple[FileTemplate, ...] = field(default=(), init=False, compare=False, repr=False)  # files, read

    def __post_init__(self) -> None:
        if isinstance(self.binary, str):  # accept a plain path from the factory fixture too
            object.__setattr__(self, "binary", Path(self.binary))
        if isinstance(self.rootdir, str):
            object.__setattr__(self, "rootdir", Path(self.rootdir))
        for name in ("env", "files"):  # lines, from the factory as a list or one string
            value = getattr(self, name)
            object.__setattr__(self, name, tuple(value.splitlines() if isinstance(value, str) else value))
        where = self.where
        if self.binary is None and not self.package:
            raise ConfigError(
                f"no Go service configured; set {where('package')} (a Go package to build) "
                f"or {where('binary')} (a built binary)"
            )
        if self.binary is not None and self.package:
            raise ConfigError(f"both {where('binary')} and {where('package')} are set; keep one of them")
        rate = self.memprofilerate
        if rate is not None and (isinstance(rate, bool) or not isinstance(rate, int) or rate < 0):
            raise ConfigError(
                f"{where('memprofilerate')} = {rate!r} is not a byte count; use e.g. 64KiB, or 'go' for Go's default"
            )
        for name in ("start_timeout", "stop_timeout", "request_timeout"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{where(name)} = {getattr(self, name)!r} must be a positive number of seconds")
        for name in ("args", "build_flags"):
            line = getattr(self, name)
            try:
                shlex.split(line)
            except ValueError as exc:
                raise ConfigError(
                    f"{where(name)} {line!r} cannot be split like a shell line ({exc}); fix its quoting"
                ) from None
        if self.build_flags and self.binary is not None:
            raise ConfigError(f"{where('build_flags')} needs {where('package')}; {where('binary')} is already built")
        for line in self.env:
            if "=" not in line or not line.split("=", 1)[0].strip():
                raise ConfigError(f"{where('env')} line {line!r} is not KEY=VALUE; write one KEY=VALUE per line")
        object.__setattr__(self, "templates", tuple(_file_template(line, self.base_dir, where) for line in self.files))
        check_placeholders(self.args, where("args"))
        check_placeholders(self.unix_socket, where("unix_socket"))
        for line in self.env:
            check_placeholders(line, where("env"))
        self._check_url("pprof_url", DEFAULT_PPROF_URL, "pprof exposes memory contents")
        self._check_grpc_port()
        if self.ready_url:
            self._check_url("ready_url", "http://{addr}/healthz", "tests talk to loopback only")

    def _check_url(self, name: str, example: str, why: str) -> None:
        template, source = getattr(self, name), self.where(name)
        check_placeholders(template, source)
        url = urlsplit(template.replace("{", "").replace("}", ""))
        if self.unix_socket:
            # Over a unix socket the host is only the Host header, and may be empty (http:///debug/pprof/):
            # Caddy's admin socket answers only a request with an empty one.
            if url.scheme != "http":
                raise ConfigError(f"{source} {template!r} is not an http:// URL; e.g. http://localhost/debug/pprof/")
            return
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ConfigError(f"{source} {template!r} is not an http URL; e.g. {example}")
        host = urlsplit(template.format_map(_Dummies())).hostname or ""
        require_loopback(host, source, why, self.allow_remote_pprof, self.where("allow_remote_pprof"))

    def _told(self) -> set[str | None]:
        """The ports the service is told of: named in ``args``, ``env`` or a file ``files`` renders."""
        told = {_port_of(name) for text in (self.args, *self.env) for name in _names(text)}
        return told | {_port_of(name) for template in self.templates for name in template.names}

    def _check_grpc_port(self) -> None:
        placeholder = grpc_placeholder(self.grpc_port, self.where("grpc_port"))
        if placeholder is not None and placeholder not in self._told():
            raise ConfigError(
                f"{self.where('grpc_port')} = {self.grpc_port} names {{{placeholder}}}, which neither "
                f"{self.where('args')}, {self.where('env')} nor {self.where('files')} passes to the service; add it"
                " there (e.g. "
                f"-grpc-addr 127.0.0.1:{{{placeholder}}}), or leave {self.where('grpc_port')} unset for the main port"
            )

    def grpc_target(self, placeholders: Placeholders) -> str:
        """The address ``pytest_goleak.grpc_channel`` dials for one start: ``127.0.0.1:PORT``."""
        placeholder = grpc_placeholder(self.grpc_port, self.where("grpc_port"))
        number = self.grpc_port.strip().strip("{}")
        if placeholder is None and number.isdigit():
            return f"127.0.0.1:{number}"
        return f"127.0.0.1:{placeholders[placeholder or 'port']}"

    @property
    def display_name(self) -> str:
        if self.name:
            return self.name
        if self.binary is not None:
            return self.binary.name
        return Path(str(self.package).rstrip("/")).name or "service"

    @property
    def filled_rootdir(self) -> str:
        """What ``{rootdir}`` stands for: an absolute path."""
        return str((self.rootdir or Path.cwd()).absolute())

    def untold_ports(self) -> list[tuple[str, str]]:
        """The ports the pprof and ready URLs wait on that neither ``args`` nor ``env`` passes to the service.

        As (URL field, placeholder) pairs, e.g. ``("pprof_url", "addr")``;
        ``{addr}`` and ``{port}`` are one port. The plugin picks these ports
        afresh for each start, so a service never told one cannot listen on it.
        """
        if self.unix_socket:
            return []  # the URLs' ports are never connected to
        told = self._told()
        untold = []
        for field_name in ("pprof_url", "ready_url"):
            for name in _names(getattr(self, field_name)):
                port = _port_of(name)
                if port is not None and port not in told:
                    untold.append((field_name, name))
        return untold

    def render_files(self, placeholders: Placeholders) -> None:
        """Write each of ``files`` for one start, its placeholders filled in."""
        for template in self.templates:
            template.render(placeholders)

    def command(self, binary: Path, placeholders: Placeholders) -> list[str]:
        """The command line of one start: ``binary`` and the filled-in ``args``."""
        return [str(binary), *(arg.format_map(placeholders) for arg in shlex.split(self.args))]

    def env_overrides(self, placeholders: Placeholders) -> dict[str, str]:
        """The ``env`` lines of one start, filled in, by variable."""
        overrides = {}
        for line in self.env:
            key, value = line.format_map(placeholders).split("=", 1)
            overrides[key.strip()] = value
        return overrides


# In a file, only the plugin's own placeholders are filled and everything else is left as written: config
# formats are full of braces (TOML tables, JSON, Go templates, Caddy's own {placeholders}). {{port}} writes {port}.
_FILE_PLACEHOLDER = re.compile(r"(\{?)\{(" + "|".join(PLACEHOLDERS) + r"|port_[A-Za-z0-9_]+)\}(\}?)")
MAX_FILE_TEMPLATE = 1 << 20


@dataclass(frozen=True)
class FileTemplate:
    """One ``files`` line: a file read once, written with the placeholders filled into each start's ``{tmp}``."""

    source: Path
    target: str  # a path template under {tmp}
    text: str

    @property
    def names(self) -> list[str]:
        """The placeholders it fills (a port named only in a file is still picked and passed)."""
        found = [m[2] for m in _FILE_PLACEHOLDER.finditer(self.text) if not (m[1] and m[3])]
        return [*_names(self.target), *found]

    def fill(self, placeholders: Placeholders) -> str:
        def one(match: re.Match[str]) -> str:
            opened, name, closed = match.groups()
            if opened and closed:
                return "{" + name + "}"
            return opened + placeholders[name] + closed

        return _FILE_PLACEHOLDER.sub(one, self.text)

    def render(self, placeholders: Placeholders) -> Path:
        path = Path(self.target.format_map(placeholders))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.fill(placeholders), encoding="utf-8")
        return path


def _file_template(line: str, base_dir: Path, where: Where) -> FileTemplate:
    """A ``files`` line, checked and its source read: every mistake in it is found before anything starts."""
    source_text, arrow, target = (part.strip() for part in line.partition("->"))
    example = "config.toml.in -> {tmp}/config.toml"
    if not arrow or not source_text or not target:
        raise ConfigError(f"{where('files')} line {line!r} is not SOURCE -> DEST; e.g. {example}")
    if "->" in target or " ;" in target or " #" in target:
        raise ConfigError(
            f"{where('files')} line {line!r} is not one SOURCE -> DEST; pytest's ini files keep an inline ; or #"
            " comment as part of the value, so put comments on their own line"
        )
    check_placeholders(target, where("files"))
    if not target.startswith("{tmp}/") or ".." in Path(target).parts:
        raise ConfigError(
            f"{where('files')} line {line!r}: DEST must be under {{tmp}} (each start has its own); e.g. {example}"
        )
    source = Path(source_text).expanduser()
    source = source if source.is_absolute() else base_dir / source
    try:
        if source.stat().st_size > MAX_FILE_TEMPLATE:
            raise ConfigError(f"{where('files')} source {source} is over 1 MiB; is it the config file?")
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"{where('files')} source {source} cannot be read ({exc.strerror}); paths start at the ini file's directory"
        ) from None
    except UnicodeDecodeError:
        raise ConfigError(
            f"{where('files')} source {source} is not UTF-8 text; it must be a text config file"
        ) from None
    return FileTemplate(source, target, text)


class _Dummies(dict[str, str]):
    """Fills every placeholder with a dummy, to validate a template's shape."""

    def __missing__(self, key: str) -> str:
        return "127.0.0.1:1" if key == "addr" else "1"


def _names(template: str) -> list[str]:
    """The placeholder names in a template already checked by :func:`check_placeholders`."""
    return [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]


def _port_of(name: str) -> str | None:
    """The port a placeholder stands for (``addr`` and ``port`` are the same one), or None for a path."""
    if name in ("port", "addr"):
        return "port"
    return name if name.startswith("port_") else None


def grpc_placeholder(grpc_port: str, source: str) -> str | None:
    """The placeholder a ``grpc_port`` setting names (``port_grpc`` for ``grpc``); None for a number or the main port.

    Refuses what is neither a port number nor a name a ``{port_NAME}`` placeholder can have.
    """
    value = grpc_port.strip().strip("{}")
    if not value or value in ("port", "addr"):
        return None
    if value.isdigit():
        if not 0 < int(value) < 65536:
            raise ConfigError(f"{source} = {grpc_port} is not a port number (1-65535)")
        return None
    name = value if value.startswith("port_") else f"port_{value}"
    if not name[5:] or not name[5:].replace("_", "").isalnum():
        raise ConfigError(
            f"{source} = {grpc_port!r} is neither a port number nor a port's name; e.g. grpc, for {{port_grpc}}"
        )
    return name


def port_placeholder(template: str) -> str | None:
    """The placeholder that gives a URL template its port (``addr``, ``port`` or ``port_NAME``), or None."""
    return next((name for name in _names(template) if _port_of(name) is not None), None)


def check_placeholders(template: str, source: str) -> None:
    """Refuse a template (named by ``source``) with a placeholder no start can fill, or a stray brace."""
    try:
        names = _names(template)
    except ValueError as exc:
        raise ConfigError(f"{source} {template!r}: {exc}; write a literal brace as {{{{ or }}}}") from None
    for name in names:
        if name not in PLACEHOLDERS and not (name.startswith("port_") and len(name) > 5):
            raise ConfigError(
                f"{source} uses unknown placeholder {{{name}}}; "
                "use {port}, {addr}, {port_NAME}, {tmp} or {rootdir}"
            )


def with_memprofilerate(godebug: str, rate: int) -> str:
    """``GODEBUG`` with ``memprofilerate`` added, unless the user's own setting already names it."""
    settings = [item for item in godebug.split(",") if item.strip()]
    if any(item.split("=", 1)[0].strip() == "memprofilerate" for item in settings):
        return godebug
    return ",".join([*settings, f"memprofilerate={rate}"])


def _free_port(taken: set[int]) -> int:
    """A loopback port nobody listens on now, and not in ``taken`` (to which it is added)."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in taken:
            taken.add(port)
            return port
    raise ServiceError("could not find a free loopback port")


class Placeholders(dict[str, str]):
    """Values for templates; ``{port_NAME}`` ports are picked on first use."""

    def __init__(self, tmp: Path, rootdir: str) -> None:
        super().__init__()
        self._taken: set[int] = set()
        port = _free_port(self._taken)
        self.update(port=str(port), addr=f"127.0.0.1:{port}", tmp=str(tmp), rootdir=rootdir)

    def __missing__(self, key: str) -> str:
        value = str(_free_port(self._taken))
        self[key] = value
        return value

    @property
    def ports(self) -> Ports:
        return Ports({k: int(v) for k, v in self.items() if k == "port" or k.startswith("port_")})


class Ports(dict[str, int]):
    """The ports picked for one start, by placeholder: ``ports["port_debug"]``, or by NAME alone, ``ports["debug"]``."""

    def __missing__(self, key: str) -> int:
        if f"port_{key}" in self:
            return self[f"port_{key}"]
        names = ", ".join(repr(name) for name in self)
        raise KeyError(f"{key!r}: no {{port_{key}}} placeholder in this service's settings; it has {names}")
