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

from pytest_goleak.errors import ConfigError, PprofNotServed, ServiceError
from pytest_goleak.http import client
from pytest_goleak.service import DEFAULT_PPROF_URL, probe_pprof, probe_ready, require_loopback

UNMEASURED_WITHOUT_PID = ("fds", "children", "threads")


class AttachedService:
    """A running service reached by URL, with an optional local PID."""

    def __init__(
        self,
        url: str,
        pprof_url: str = DEFAULT_PPROF_URL,
        pid: int | None = None,
        request_timeout: float = 5.0,
        allow_remote: bool = False,
        ready_url: str = "",
        start_timeout: float = 10.0,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"goleak_attach_url {url!r} is not an http URL; e.g. http://127.0.0.1:8080")
        require_loopback(parts.hostname, "goleak_attach_url", "pprof exposes memory contents", allow_remote)
        if pid is not None and not psutil.pid_exists(pid):
            raise ConfigError(f"goleak_attach_pid {pid} is not a running process; give the service's local PID")
        self.url = url.rstrip("/")
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.pid = pid
        self.pprof_url = self._fill(pprof_url, "goleak_pprof_url", parts.netloc)
        self.ready_url = self._fill(ready_url, "goleak_ready_url", parts.netloc) if ready_url else None
        if self.ready_url:
            ready_host = urlsplit(self.ready_url).hostname or ""
            require_loopback(ready_host, "goleak_ready_url", "tests talk to loopback only", allow_remote)
        self.start_timeout = start_timeout
        self.request_timeout = request_timeout
        self.name = f"service at {parts.netloc}"
        self.tmpdir: Path | None = None  # its TMPDIR is not ours to know: temp files are not counted
        self.exit_reported = False

    @property
    def unmeasured(self) -> tuple[str, ...]:
        return UNMEASURED_WITHOUT_PID if self.pid is None else ()

    def _fill(self, template: str, option: str, netloc: str) -> str:
        try:
            return template.format(addr=netloc, port=self.port)
        except (KeyError, IndexError, ValueError) as exc:
            raise ConfigError(
                f"{option} {template!r} uses {exc}, which attach mode cannot fill; "
                "write the attached service's URL in full"
            ) from None

    def start(self) -> None:
        """Wait until pprof answers and, if configured, the ready URL answers 2xx; there is nothing to start."""
        deadline = time.monotonic() + self.start_timeout
        with client(min(self.start_timeout, 2.0)) as http:
            while True:
                try:
                    problem = probe_pprof(http, self.pprof_url)
                except PprofNotServed as exc:
                    problem = str(exc)
                    break  # pprof is not mounted there: waiting will not help
                if problem is None:
                    problem = probe_ready(http, self.ready_url)
                    if problem is None:
                        return
                    if time.monotonic() >= deadline:
                        raise ServiceError(
                            f"attached {self.name} was not ready within {self.start_timeout:g}s ({problem})"
                        )
                if time.monotonic() >= deadline:
                    break
                time.sleep(0.1)
        raise ServiceError(
            f"attached {self.name} serves no pprof: {problem}; check goleak_attach_url and goleak_pprof_url"
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
