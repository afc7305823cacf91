"""What the plugin needs of a service, started (:class:`~pytest_goleak.service.started.GoService`) or attached.

Each kind diagnoses its own failures: a started service can be dumped and
killed, an attached one is never signalled. The plugin only renders what
they say.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from pytest_goleak.errors import GoleakError


class Service(Protocol):
    """A Go service under test, as the fixtures, the leak check and the reports see it."""

    @property
    def name(self) -> str: ...

    @property
    def url(self) -> str: ...

    @property
    def grpc_target(self) -> str:
        """``HOST:PORT`` that ``pytest_goleak.grpc_channel`` dials (``goleak_grpc_port``)."""

    @property
    def pid(self) -> int | None:
        """Its local process id; None when attached without one (fds, children and threads go unmeasured)."""

    @property
    def pprof_url(self) -> str: ...

    @property
    def unix_socket(self) -> str | None:
        """The unix socket every request to it goes over (URLs' hosts are then Host headers only); None: TCP."""

    @property
    def request_timeout(self) -> float: ...

    @property
    def tmpdir(self) -> Path | None:
        """Its private ``TMPDIR``, whose leftover files are counted; None if it is not the plugin's."""

    @property
    def binary(self) -> Path | None:
        """The binary to keep beside a failing test's profiles (pprof symbolises with it), or None."""

    @property
    def started_at(self) -> float:
        """``time.monotonic()`` when this run started (attached: when the plugin began waiting for it)."""

    @property
    def start_timeout(self) -> float:
        """Seconds from ``started_at`` the readiness and start-up waits may take together."""

    @property
    def ready_url(self) -> str | None:
        """The configured URL that answers 2xx once it has finished starting, filled in; None if none is."""

    def alive(self) -> bool: ...

    def start(self) -> None:
        """Return once it is ready; raises :class:`~pytest_goleak.errors.ServiceError` if it does not get there."""

    def stop(self) -> int | None: ...

    def restart(self) -> None: ...

    def output_since_start(self, limit: int = 1 << 20) -> str:
        """What this run of it wrote, up to ``limit`` bytes from the end ("" if that is not ours to read)."""

    def describe_crash(self) -> str:
        """How it ended during this test, with its output; the end then counts as reported."""

    def diagnose_unreadable(self, error: GoleakError, when: str) -> str:
        """Why reading it ``when`` ("before"/"after") the test failed with ``error``, after acting on it."""

    def unreported_exit(self) -> str | None:
        """How its last run ended, if it is not alive and no test's report has told of that yet."""


def unreadable(error: GoleakError, when: str) -> str:
    """The sentence every diagnosis of an unreadable service starts with."""
    return f"could not read the service {when} the test: {error}"
