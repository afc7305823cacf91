"""Where a started service listens, and what to tell a user whose service listens somewhere else.

A service that was never given ``{addr}`` (or ``{port}``) listens on its own
default port while the plugin waits on the one it picked. These helpers let
the start-up wait end early in that case and name the addresses the service
does listen on, from ``/proc`` (psutil), with the fix.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import urlsplit

from pytest_goleak.errors import ServiceError
from pytest_goleak.read.procfs import listening
from pytest_goleak.service.config import Placeholders, ServiceConfig, port_placeholder

# How long the set of ports a service listens on must stay the same before a wait on a port it was never
# told ends: long enough for a server that opens its listeners one after another to have opened them all.
LISTENERS_SETTLE = 0.3
Listeners = tuple[tuple[int, str], ...]


class ListensElsewhere(ServiceError):
    """The service listens, unchanged for a while, but not on a port a URL waits on and it was never told."""

    def __init__(self, listeners: Listeners) -> None:
        super().__init__(addresses(listeners))
        self.listeners = listeners


def addresses(listeners: Listeners) -> str:
    return ", ".join(address for _, address in listeners)


def port_of(url: str) -> int:
    parts = urlsplit(url)
    return parts.port or (443 if parts.scheme == "https" else 80)


def until_listening(check: Callable[[float], str | None], pid: int) -> Callable[[float], str | None]:
    """``check``, which ends the wait once the service listens somewhere, unchanged for LISTENERS_SETTLE."""
    last: Listeners = ()
    since = time.monotonic()

    def checked(timeout: float) -> str | None:
        nonlocal last, since
        problem = check(timeout)
        if problem is None:
            return None
        now = listening(pid)
        if now != last:
            last, since = now, time.monotonic()
        elif now and time.monotonic() - since >= LISTENERS_SETTLE:
            raise ListensElsewhere(now)
        return problem

    return checked


def untold_note_for(config: ServiceConfig, placeholders: Placeholders, field_name: str, placeholder: str) -> str:
    """What is wrong with a URL whose port the service was never told, and the fix."""
    where = config.where
    url = getattr(config, field_name).format_map(placeholders)
    told = "{addr} or {port}" if placeholder in ("addr", "port") else f"{{{placeholder}}}"
    return (
        f"{where(field_name)} waits on port {port_of(url)}, and neither {where('args')} nor {where('env')} gives "
        f"the service {told}; pass {{{placeholder}}} in {where('args')} to the flag that sets its listen address"
    )


def elsewhere_note(config: ServiceConfig, placeholders: Placeholders, pid: int, waits_for: str) -> str:
    """``; it listens on ...`` when the service listens, but not on the port the wait was for; else ""."""
    listeners = listening(pid)
    template = {"port": "http://{addr}/", "pprof": config.pprof_url, "ready": config.ready_url}[waits_for]
    port = port_of(template.format_map(placeholders))
    if not listeners or port in {number for number, _ in listeners}:
        return ""
    placeholder = port_placeholder(template)
    given = f"{{{placeholder}}}" if placeholder else f"port {port}"
    return (
        f"; it listens on {addresses(listeners)}, not on port {port}: "
        f"check that {config.where('args')} gives {given} to the flag that sets its listen address"
    )
