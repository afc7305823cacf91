"""HTTP clients for talking to the service: bounded, proxy-free, and cheap to create.

``httpx.Client()`` loads the CA bundle into a new SSL context every time,
about 20 ms; the plugin creates clients per test, so they share one context.

httpx (with httpcore, and trio where it is installed) takes 50-100 ms to
import, so it is imported by the first client, not with the plugin: a session
that never starts a service never pays for it. httpcore is imported with it:
httpx imports httpcore on its first request, and if that happens inside an
in-process pytester run (a plugin's own test suite), pytester drops the
module afterwards and httpx stops recognising httpcore's exceptions.
"""

from __future__ import annotations

import functools
import ssl
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx


@functools.cache
def ssl_context() -> ssl.SSLContext:
    import httpx

    return httpx.create_ssl_context()  # httpx's own default: the certifi bundle


def client(timeout: float | httpx.Timeout, unix_socket: str | None = None, **options: object) -> httpx.Client:
    """An ``httpx.Client`` that ignores proxy settings (loopback traffic must never reach a proxy).

    With ``unix_socket``, every request goes over it, whatever host the URL names.
    """
    import httpcore  # noqa: F401  (see the module docstring)
    import httpx

    if unix_socket is not None:
        options["transport"] = httpx.HTTPTransport(uds=unix_socket)
    return httpx.Client(timeout=timeout, trust_env=False, verify=ssl_context(), **options)  # type: ignore[arg-type]
