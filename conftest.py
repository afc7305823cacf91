"""The repository's own suite: build the Go programs it runs, once per session.

The ``goleak_*`` ini options in pyproject.toml point the plugin at
``example_service``; the fixtures here hand built binaries to the tests that
run pytest inside pytest (``pytester``), so those runs do not rebuild them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import google.protobuf.message  # noqa: F401  (see below)
import httpcore  # noqa: F401
import httpx  # noqa: F401
import pytest

from pytest_goleak import build_package
from pytest_goleak.service.config import ServiceConfig
from pytest_goleak.service.started import GoService

# The plugin imports httpx, httpcore and protobuf on first use. A nested in-process run
# (pytester.runpytest, inline_run) drops from sys.modules what it imported, so a later import in this
# process makes second copies whose exception classes the first ones' handlers no longer know (a
# ReadTimeout escaped as httpcore.ReadTimeout, not httpx.ReadTimeout). Imported here, they outlive every
# nested run.

ROOT = Path(__file__).resolve().parent
pytest_plugins = ["pytester"]


def pytest_configure(config: pytest.Config) -> None:
    # pytester points HOME at a temporary directory, and Go keeps its build
    # cache under HOME: every nested run that builds a package would compile
    # the standard library again (30 s for a -race build). Pin the caches.
    go = shutil.which("go")
    if go is None:
        return
    done = subprocess.run([go, "env", "GOCACHE", "GOMODCACHE"], capture_output=True, text=True, timeout=30)
    if done.returncode == 0:
        for name, value in zip(("GOCACHE", "GOMODCACHE"), done.stdout.splitlines(), strict=False):
            os.environ.setdefault(name, value)


@pytest.fixture(scope="session")
def go_build(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Build a Go package of this repository (e.g. ``tests/goapps/debugport``) once per session."""
    out = tmp_path_factory.mktemp("gobin")
    built: dict[str, Path] = {}

    def build(package: str) -> Path:
        if package not in built:
            built[package] = build_package(package, ROOT, out / package.replace("/", "_"))
        return built[package]

    return build


@pytest.fixture(scope="session")
def go_minor() -> int:
    """The minor version of the Go on PATH: 26 for go1.26.8."""
    out = subprocess.run(["go", "env", "GOVERSION"], capture_output=True, text=True, check=True).stdout
    match = re.match(r"go1\.(\d+)", out.strip())
    assert match, out
    return int(match.group(1))


@pytest.fixture(scope="session")
def example_binary(go_build: Callable[[str], Path]) -> Path:
    return go_build("example_service")


@pytest.fixture
def write_ini(pytester: pytest.Pytester, example_binary: Path) -> Callable[..., None]:
    """Write a nested suite's ini: the example service (or ``binary``), short settling, and ``extra`` lines.

    The start-up wait is short too: the example service is quiet once it answers, and every nested run starts it.
    """

    def write(extra: str = "", binary: Path | None = None, args: str = "-addr {addr} -data-dir {tmp}") -> None:
        pytester.makeini(
            f"[pytest]\ngoleak_binary = {binary or example_binary}\ngoleak_args = {args}\ngoleak_settle = 0.3\n"
            "goleak_startup_quiet = 0.1\n" + textwrap.dedent(extra)
        )

    return write


@pytest.fixture
def run_service(tmp_path: Path) -> Iterator[Callable[..., GoService]]:
    """Start ``binary`` as a service with these ``ServiceConfig`` fields; all are stopped after the test."""
    started: list[GoService] = []

    def run(binary: Path, **config: object) -> GoService:
        service = GoService(ServiceConfig(binary=binary, **config), binary, tmp_path / f"svc{len(started)}")  # type: ignore[arg-type]
        started.append(service)
        service.start()
        return service

    yield run
    for service in started:
        service.stop()
