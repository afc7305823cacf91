"""Per pytest process: the resolved options, the built binaries and the running services."""

from __future__ import annotations

import shlex
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pytest_goleak.judge.budget import Budget
from pytest_goleak.report.compare import OtherRun, load_other
from pytest_goleak.report.session import SessionRecorder
from pytest_goleak.service.config import ServiceConfig
from pytest_goleak.settings import Settings

if TYPE_CHECKING:
    # Imported when first needed: a session that never uses the plugin loads none of them.
    from pytest_goleak.judge.watch import ServiceRuns
    from pytest_goleak.report.artifacts import ArtifactWriter
    from pytest_goleak.report.baseline import Baseline
    from pytest_goleak.service.attached import AttachedService
    from pytest_goleak.service.lifeline import Lifeline
    from pytest_goleak.service.protocol import Service
    from pytest_goleak.service.started import GoService


class GoleakState:
    """Per pytest process: the resolved options, built binaries, running services."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.enabled = settings.enabled
        self.defaults = settings.budget
        self.attached = _attached(settings)
        self.service_config = settings.service
        self.artifacts = _artifacts(settings.artifacts) if settings.artifacts is not None else None
        self.timeline = settings.timeline
        self.recorder = SessionRecorder(settings.session_budget)
        self._runs: ServiceRuns | None = None
        path = settings.baseline
        self.baseline = _baseline(path, settings.update_baseline) if path is not None else None
        self.other: OtherRun | None = load_other(settings.compare) if settings.compare else None
        self._binaries: dict[tuple[str, Path, str], Path] = {}
        self._build_dir: Path | None = None
        self._services: list[GoService] = []
        self._main: Service | None = None
        self._lifeline: Lifeline | None = None
        self.setting_up: pytest.Item | None = None  # the test whose fixtures are being set up (plugin.py)

    @property
    def runs(self) -> ServiceRuns:
        """What outlives one test for each run of a service (see judge/watch.py), made by the first check."""
        if self._runs is None:
            from pytest_goleak.judge.watch import ServiceRuns

            settings = self.settings
            self._runs = ServiceRuns(settings.fresh_readings, settings.startup_quiet, settings.backend)
        return self._runs

    def budget_for(self, test: str, budget: Budget) -> Budget:
        """``budget`` with what the baseline knows of ``test``; none while the baseline is being rewritten."""
        if self.baseline is None or self.settings.update_baseline:
            return budget
        return replace(budget, known=self.baseline.known(test))

    def require_config(self) -> ServiceConfig:
        # With nothing configured this raises the one-line "set goleak_package" error.
        return self.service_config if self.service_config is not None else ServiceConfig(where=self.settings.where)

    def binary_for(self, service: ServiceConfig) -> Path:
        """The binary of ``service``: checked, or built on first use and reused for the session."""
        from pytest_goleak.service.toolchain import build_package, find_binary

        if service.binary is not None:
            return find_binary(service.binary, service.base_dir, service.where)
        assert service.package is not None
        key = (service.package, service.base_dir, service.build_flags)
        if key not in self._binaries:
            if self._build_dir is None:
                self._build_dir = Path(tempfile.mkdtemp(prefix="pytest-goleak-build-"))
            out = self._build_dir / str(len(self._binaries))
            flags = shlex.split(service.build_flags)
            self._binaries[key] = build_package(service.package, service.base_dir, out, flags, service.where)
        return self._binaries[key]

    def prepare(self) -> None:
        """Fail early on anything wrong with the main service's binary."""
        if self.attached is None:
            self.binary_for(self.require_config())

    def start(self, config: ServiceConfig, workdir: Path) -> GoService:
        from pytest_goleak.service.lifeline import Lifeline
        from pytest_goleak.service.started import GoService

        linux_calls = self.settings.backend.linux_calls
        if self._lifeline is None:
            self._lifeline = Lifeline(linux_calls)
        service = GoService(config, self.binary_for(config), workdir, self._lifeline, linux_calls)
        self._services.append(service)
        service.start()
        return service

    def main_service(self, workdir: Path) -> Service:
        if self._main is None:
            if self.attached is not None:
                self.attached.start()
                self._main = self.attached
            else:
                self._main = self.start(self.require_config(), workdir)
        return self._main

    def wrapped_lines(self) -> list[str]:
        """The Go binary a wrapper (a script) ran in its first run, and its Go version: the header could not say."""
        lines = []
        for service in self._services:
            if service.ran is not None and service.ran[0] != str(service.binary):
                lines.append(f"{service.name} ran {service.ran[0]} ({service.ran[1]}), started by {service.binary}")
        return lines

    def shutdown(self) -> None:
        if self._runs is not None:
            self._runs.close()
        for service in self._services:
            service.stop()
        if self._lifeline is not None:
            self._lifeline.close()
        if self._build_dir is not None:
            shutil.rmtree(self._build_dir, ignore_errors=True)


def _attached(settings: Settings) -> AttachedService | None:
    """The service to attach to, if goleak_attach_url is set."""
    if not settings.attach_url:
        return None
    from pytest_goleak.service.attached import AttachedService

    return AttachedService(
        settings.attach_url,
        pprof_url=settings.pprof_url,
        pid=settings.attach_pid,
        request_timeout=settings.request_timeout,
        allow_remote=settings.allow_remote,
        ready_url=settings.ready_url,
        start_timeout=settings.start_timeout,
        grpc_port=settings.grpc_port,
        where=settings.where,
    )


def _artifacts(root: Path) -> ArtifactWriter:
    from pytest_goleak.report.artifacts import ArtifactWriter

    return ArtifactWriter(root)


def _baseline(path: Path, missing_ok: bool) -> Baseline:
    from pytest_goleak.report.baseline import Baseline

    return Baseline.load(path, missing_ok=missing_ok)
