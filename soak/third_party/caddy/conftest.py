"""Caddy soak: background traffic every 250 ms, bookkeeping (see ../soaklib.py)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import soaklib


def site(service) -> str:  # type: ignore[no-untyped-def]
    return f"http://127.0.0.1:{service.ports['port_site']}"


def background(service):  # type: ignore[no-untyped-def]
    # A load balancer's health check and a trickle of page views. The admin API is
    # the plugin's base URL; the site is on its own port, so use absolute URLs.
    url = site(service)
    requests = [
        ("GET", f"{url}/healthz", None),
        ("GET", f"{url}/", None),
        ("GET", f"{url}/api/ping", None),
        ("GET", f"{url}/assets/data.json", None),
        ("GET", "/config/admin", None),
    ]
    return lambda n: requests[n % len(requests)]


PROXY_POOL = 8  # more than any test (6 concurrent proxied requests) plus the background thread (1)


def _slow_body():  # type: ignore[no-untyped-def]
    # Streamed slowly, so each proxied request holds its upstream connection for ~0.6 s.
    for _ in range(3):
        yield b"w" * 1024
        time.sleep(0.3)


def warm_up(service) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """Wait until the site answers, then fill the reverse proxy's connection pool.

    Caddy applies its config just after the admin API is up. Its reverse proxy
    keeps idle keep-alive connections to the upstream (2 min idle timeout): each
    is an fd pair and three goroutines (persistConn readLoop/writeLoop, the
    upstream's conn.serve) in this same process. The pool grows to the highest
    number of proxied requests ever in flight at once; without priming, the test
    in which a new high-water mark happens is judged for the pool's growth.
    """
    from concurrent.futures import ThreadPoolExecutor

    deadline = time.monotonic() + 30
    url = site(service)
    with httpx.Client(timeout=5, trust_env=False) as client:
        while time.monotonic() < deadline:
            try:
                if client.get(f"{url}/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        else:
            raise RuntimeError("Caddy's site did not answer within 30 s")
    # PROXY_POOL proxied requests in flight at once, over separate client connections.
    clients = [httpx.Client(base_url=url, timeout=10, trust_env=False) for _ in range(PROXY_POOL)]
    try:
        with ThreadPoolExecutor(PROXY_POOL) as pool:
            codes = list(pool.map(lambda c: c.post("/api/warm", content=_slow_body()).status_code, clients))
        assert codes == [200] * PROXY_POOL, codes
    finally:
        for c in clients:
            c.close()
    return {"site": url, "proxy_pool_primed": PROXY_POOL}


soaklib.install(globals(), "caddy", background, warm_up=warm_up)
