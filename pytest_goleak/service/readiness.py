"""Is the service ready? The probes, and the one bounded wait that started and attached services share.

A service is ready once, in order, its port accepts connections (if the
plugin picked it), pprof answers and the ready URL (if any) answers 2xx.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pytest_goleak.errors import PprofNotServed, ReadyRefused, ServiceError, ServiceUnresponsive
from pytest_goleak.read.keepalive import get_once

PPROF_MISSING = 'add import _ "net/http/pprof" to the service, or point goleak_pprof_url at it'


def accepts(host: str, port: int, timeout: float = 0.2) -> bool:
    """Whether something listens on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class Answered(str):
    """A probe's problem that is an HTTP answer: the service is up and answering, just not yet with 2xx."""

    __slots__ = ()


def probe_pprof(url: str, timeout: float, unix_socket: str | None = None) -> str | None:
    """None once pprof answers at ``url``; else what went wrong. Raises :class:`PprofNotServed` on a 404."""
    try:
        status, _ = get_once(url, timeout, unix_socket=unix_socket)
    except ServiceUnresponsive as exc:
        return f"{url} did not answer ({exc.reason})"
    if status == 404:
        raise PprofNotServed(f"{url} (HTTP 404); {PPROF_MISSING}")
    return None if status == 200 else Answered(f"{url} answered HTTP {status}")


# 4xx answers that can change while a service starts: the rest say the URL or the request is wrong.
TRANSIENT_4XX = frozenset({408, 425, 429})  # Request Timeout, Too Early, Too Many Requests


def probe_ready(url: str | None, timeout: float, unix_socket: str | None = None) -> str | None:
    """None once the ready URL (if any) answers 2xx; else what it answered.

    Raises :class:`ReadyRefused` on a 4xx other than :data:`TRANSIENT_4XX`:
    no such path (404), or a plain GET refused (401, 403, 405). Waiting will
    not change those. A 5xx or no answer is a service still starting.
    """
    if url is None:
        return None
    try:
        code, _ = get_once(url, timeout, unix_socket=unix_socket)
    except ServiceUnresponsive as exc:
        return f"goleak_ready_url {url} did not answer ({exc.reason})"
    if 200 <= code < 300:
        return None
    if 400 <= code < 500 and code not in TRANSIENT_4XX:
        raise ReadyRefused(
            f"goleak_ready_url {url} answered HTTP {code}, which waiting will not change; "
            "point goleak_ready_url at a path that answers a plain GET with 2xx once the service is ready"
        )
    return Answered(f"goleak_ready_url {url} answered HTTP {code}")


@dataclass(frozen=True)
class Probe:
    """One condition of readiness: ``check`` gives None once it holds, else what is wrong."""

    waits_for: str  # "port", "pprof" or "ready"
    check: Callable[[float], str | None]  # given the time it may take


def probes(
    pprof_url: str, ready_url: str | None, port: int | None = None, unix_socket: str | None = None
) -> list[Probe]:
    """The probes of a service, in the order they must pass; ``port`` is one to see accept first.

    With ``unix_socket``, every request goes over it (the URLs' hosts are only Host headers).
    """
    found = [] if port is None else [Probe("port", lambda _: _port_problem(port))]
    found.append(Probe("pprof", lambda timeout: probe_pprof(pprof_url, timeout, unix_socket)))
    if ready_url is not None:
        found.append(Probe("ready", lambda timeout: probe_ready(ready_url, timeout, unix_socket)))
    return found


def _port_problem(port: int) -> str | None:
    return None if accepts("127.0.0.1", port) else f"port {port} is not accepting connections"


class NotReady(ServiceError):
    """The wait ended before every probe passed: the service exited, or time ran out."""

    def __init__(self, problem: str, waits_for: str, exited: bool) -> None:
        super().__init__(problem)
        self.problem = problem  # the last thing a probe found wrong
        self.waits_for = waits_for  # the probe that had not passed yet
        self.exited = exited
        # It answered, but never with 2xx (a 5xx to the end): a start of the same service will not do better.
        self.answering = isinstance(problem, Answered)


def wait_ready(
    probes: Sequence[Probe], deadline: float, alive: Callable[[], bool], request_timeout: float = 1.0
) -> None:
    """Return once every probe has passed, in order (a passed one is not asked again), before ``deadline``.

    Raises :class:`NotReady` with the last problem once ``alive()`` is false
    or the deadline (a ``time.monotonic()`` value) has passed, and lets a
    probe's :class:`PprofNotServed` or :class:`ReadyRefused` through at once:
    waiting will not mount pprof or change a 404.
    """
    problem, passed, delay = "nothing answered yet", 0, 0.01
    while passed < len(probes):
        if not alive():
            raise NotReady(problem, probes[passed].waits_for, exited=True)
        # A probe may take its request timeout, but never past the deadline (a service that drips its answer).
        found = probes[passed].check(max(0.05, min(request_timeout, deadline - time.monotonic())))
        if found is None:
            passed += 1
            continue
        problem = found
        if time.monotonic() >= deadline:
            raise NotReady(problem, probes[passed].waits_for, exited=False)
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 2, 0.1)


# Where servers commonly say they have finished starting; the first test's failure report names one that answers.
COMMON_READY_PATHS = ("/-/ready", "/readyz", "/healthz", "/ready")
_NO_SUCH_PATH = "/goleak-no-such-path"


def answering_ready_path(
    base_url: str, timeout: float, paths: Sequence[str] = COMMON_READY_PATHS, unix_socket: str | None = None
) -> str | None:
    """The first of ``paths`` that answers 2xx on ``base_url``, all asked within ``timeout`` seconds together.

    None also when a path that cannot exist answers 2xx: a catch-all
    handler (a web UI) says nothing about readiness.
    """
    deadline = time.monotonic() + timeout

    def success(path: str) -> bool:
        left = deadline - time.monotonic()
        try:
            url = base_url.rstrip("/") + path
            return left > 0 and 200 <= get_once(url, left, limit=0, unix_socket=unix_socket)[0] < 300
        except ServiceUnresponsive:
            return False

    found = next((path for path in paths if success(path)), None)
    return None if found is None or success(_NO_SUCH_PATH) else found
