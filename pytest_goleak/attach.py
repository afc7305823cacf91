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

import httpx
import psutil

from pytest_goleak.errors import ConfigError, ServiceError
from pytest_goleak.http import client
from pytest_goleak.service import DEFAULT_PPROF_URL, is_loopback

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
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"goleak_attach_url {url!r} is not an http URL; e.g. http://127.0.0.1:8080")
        if not allow_remote and not is_loopback(parts.hostname):
            raise ConfigError(
                f"goleak_attach_url points at {parts.hostname}, not loopback; pprof exposes memory contents, "
                "so opt in with goleak_allow_remote = true if you mean it"
            )
        if pid is not None and not psutil.pid_exists(pid):
            raise ConfigError(f"goleak_attach_pid {pid} is not a running process; give the service's local PID")
        self.url = url.rstrip("/")
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.pid = pid
        try:
            self.pprof_url = pprof_url.format(addr=parts.netloc, port=self.port)
        except (KeyError, IndexError, ValueError) as exc:
            raise ConfigError(
                f"goleak_pprof_url {pprof_url!r} uses {exc}, which attach mode cannot fill; "
                "write the attached service's pprof URL in full"
            ) from None
        self.request_timeout = request_timeout
        self.name = f"service at {parts.netloc}"
        self.tmpdir: Path | None = None  # its TMPDIR is not ours to know: temp files are not counted
        self.exit_reported = False

    @property
    def unmeasured(self) -> tuple[str, ...]:
        return UNMEASURED_WITHOUT_PID if self.pid is None else ()

    def start(self, timeout: float = 5.0) -> None:
        """Check that pprof answers; there is nothing to start."""
        deadline = time.monotonic() + timeout
        problem = ""
        with client(min(timeout, 2.0)) as http:
            while time.monotonic() < deadline:
                try:
                    response = http.get(self.pprof_url)
                except httpx.HTTPError as exc:
                    problem = f"it did not answer ({type(exc).__name__})"
                else:
                    if response.status_code == 200:
                        return
                    problem = f"it answered HTTP {response.status_code}"
                    if response.status_code == 404:
                        break
                time.sleep(0.1)
        raise ServiceError(
            f"attached {self.name} serves no pprof at {self.pprof_url}: {problem}; "
            'check goleak_attach_url and goleak_pprof_url, and that it imports _ "net/http/pprof"'
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
