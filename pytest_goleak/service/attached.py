"""Attach mode: check a service the plugin did not start (docker compose, a port-forward).

Goroutines and heap are read through pprof as usual. File descriptors,
children and threads need the service's local PID (``goleak_attach_pid``);
without it they are not measured, and the report header says so. An attached
service is never stopped, restarted or signalled: it is not ours.
"""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import urlsplit

import psutil

from pytest_goleak.errors import (
    ConfigError,
    GoleakError,
    PprofNotServed,
    ReadyRefused,
    ServiceError,
    ServiceMisconfigured,
)
from pytest_goleak.service.config import DEFAULT_PPROF_URL, REQUEST_TIMEOUT, START_TIMEOUT, Where, grpc_placeholder
from pytest_goleak.service.loopback import require_loopback
from pytest_goleak.service.protocol import unreadable
from pytest_goleak.service.readiness import NotReady, probes, wait_ready

# What /proc gives, and a service with no local PID cannot.


def _keyword(name: str) -> str:
    return f"AttachedService({name}=...)"


class AttachedService:
    """A running service reached by URL, with an optional local PID.

    ``where`` maps a parameter's name to the phrase naming its source in an
    error (the ini options, when attach mode is configured there).
    """

    binary: Path | None = None  # not ours: profiles are kept without it
    tmpdir: Path | None = None  # its TMPDIR is not ours to know: temp files are not counted
    unix_socket: str | None = None  # reached by its URL

    def __init__(
        self,
        url: str,
        pprof_url: str = DEFAULT_PPROF_URL,
        pid: int | None = None,
        request_timeout: float = REQUEST_TIMEOUT,
        allow_remote: bool = False,
        ready_url: str = "",
        start_timeout: float = START_TIMEOUT,
        grpc_port: str = "",
        where: Where = _keyword,
    ) -> None:
        self.where = where
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"{where('url')} {url!r} is not an http URL; e.g. http://127.0.0.1:8080")
        opt_in = where("allow_remote")
        require_loopback(parts.hostname, where("url"), "pprof exposes memory contents", allow_remote, opt_in)
        if pid is not None and not psutil.pid_exists(pid):
            raise ConfigError(f"{where('pid')} {pid} is not a running process; give the service's local PID")
        self.url = url.rstrip("/")
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.pid = pid
        self.pprof_url = self._fill(pprof_url, "pprof_url", parts.netloc)
        self.ready_url = self._fill(ready_url, "ready_url", parts.netloc) if ready_url else None
        if self.ready_url:
            ready_host = urlsplit(self.ready_url).hostname or ""
            require_loopback(ready_host, where("ready_url"), "tests talk to loopback only", allow_remote, opt_in)
        self.start_timeout = start_timeout
        self.started_at = time.monotonic()
        self.request_timeout = request_timeout
        self.name = f"service at {parts.netloc}"
        if grpc_placeholder(grpc_port, where("grpc_port")) is not None:
            raise ConfigError(
                f"{where('grpc_port')} = {grpc_port} names a port the plugin picks, and it starts no attached service;"
                " give the attached service's gRPC port number"
            )
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        self.grpc_target = f"{host}:{grpc_port.strip() or self.port}"

    def _fill(self, template: str, name: str, netloc: str) -> str:
        try:
            return template.format(addr=netloc, port=self.port)
        except (KeyError, IndexError, ValueError) as exc:
            raise ConfigError(
                f"{self.where(name)} {template!r} uses {exc}, which attach mode cannot fill; "
                "write the attached service's URL in full"
            ) from None

    def start(self) -> None:
        """Wait until pprof answers and, if configured, the ready URL answers 2xx; there is nothing to start."""
        self.started_at = time.monotonic()
        deadline = self.started_at + self.start_timeout
        try:
            wait_ready(probes(self.pprof_url, self.ready_url), deadline, self.alive, min(self.start_timeout, 2.0))
        except PprofNotServed as exc:  # pprof is not mounted there: waiting will not help
            raise self._no_pprof(str(exc), ServiceMisconfigured) from None
        except ReadyRefused as exc:  # nor will a 404 turn into a 2xx
            raise ServiceMisconfigured(f"attached {self.name} answers, but {exc}") from None
        except NotReady as exc:
            if exc.exited:
                raise ServiceError(f"attached {self.name} (pid {self.pid}) exited before it was ready") from None
            if exc.waits_for == "pprof":
                raise self._no_pprof(exc.problem) from None
            raise ServiceError(
                f"attached {self.name} was not ready within {self.start_timeout:g}s ({exc.problem})"
            ) from None

    def _no_pprof(self, problem: str, kind: type[ServiceError] = ServiceError) -> ServiceError:
        return kind(
            f"attached {self.name} serves no pprof: {problem}; check {self.where('url')} and {self.where('pprof_url')}"
        )

    def alive(self) -> bool:
        if self.pid is None:
            return True
        try:
            return psutil.Process(self.pid).status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    def stop(self) -> None:
        """Never stops what it did not start."""

    def restart(self) -> None:
        raise ServiceError(f"attached {self.name} is gone and was not started by pytest-goleak; restart it yourself")

    # -- what to say when it fails: it is never signalled ---------------

    def output_since_start(self, limit: int = 1 << 20) -> str:
        return ""  # its output goes wherever its owner sent it

    def describe_crash(self) -> str:
        return f"attached {self.name} (pid {self.pid}) exited during this test"

    def diagnose_unreadable(self, error: GoleakError, when: str) -> str:
        return unreadable(error, when)

    def unreported_exit(self) -> str | None:
        return None  # it is never restarted, so there is nothing to warn of
