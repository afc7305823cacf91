"""HTTP clients for talking to the service: bounded, proxy-free, and cheap to create.

``httpx.Client()`` loads the CA bundle into a new SSL context every time,
about 20 ms; the plugin creates clients per test, so they share one context.
"""

from __future__ import annotations

import functools
import ssl

import httpcore  # noqa: F401  (see below)
import httpx

# httpx imports httpcore on its first request. If that first request happens
# inside an in-process pytester run (a plugin's own test suite), pytester
# drops the module afterwards and httpx stops recognising httpcore's
# exceptions. Loading it with the plugin keeps it loaded.


@functools.cache
def ssl_context() -> ssl.SSLContext:
    return httpx.create_ssl_context()  # httpx's own default: the certifi bundle


def client(timeout: float | httpx.Timeout, **options: object) -> httpx.Client:
    """An ``httpx.Client`` that ignores proxy settings (loopback traffic must never reach a proxy)."""
    return httpx.Client(timeout=timeout, trust_env=False, verify=ssl_context(), **options)  # type: ignore[arg-type]
