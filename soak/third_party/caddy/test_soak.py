"""Clean traffic against a real Caddy: pages, files (gzip), reverse proxy, admin API.

Site requests go over a client the test opens and closes itself; admin requests
use ``pytest_goleak.client`` (the admin endpoint, closed by the plugin before
its after-reading). Any leak verdict here is a false positive, or a real leak
in Caddy, to be told apart.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest


def site_client(handle) -> httpx.Client:  # type: ignore[no-untyped-def]
    """A client for the site, to be closed *inside* the test body.

    Not a fixture: the plugin judges the test at the end of its call phase,
    before fixture teardown, so a keep-alive client held by a fixture would
    still hold its connection (an fd and a server goroutine) at the after-reading.
    """
    url = f"http://127.0.0.1:{handle.service.ports['port_site']}"
    return httpx.Client(base_url=url, timeout=10, trust_env=False)


@pytest.mark.parametrize("n", range(40))
def test_static_pages(pytest_goleak, n: int) -> None:
    with site_client(pytest_goleak) as site:
        for path in ["/", "/index.html", "/healthz"][: 1 + n % 3]:
            response = site.get(path)
            assert response.status_code == 200
            assert "hello" in response.text or response.text == "ok"


@pytest.mark.parametrize("n", range(30))
def test_file_server_gzip(pytest_goleak, n: int) -> None:
    with site_client(pytest_goleak) as site:
        path = ["/assets/big.txt", "/assets/data.json"][n % 2]
        response = site.get(path, headers={"Accept-Encoding": "gzip"})
        assert response.status_code == 200
        if path.endswith("big.txt"):
            assert response.headers.get("content-encoding") == "gzip"
            assert len(response.content) == 200000


@pytest.mark.parametrize("n", range(15))
def test_file_server_range_and_conditional(pytest_goleak, n: int) -> None:
    with site_client(pytest_goleak) as site:
        first = site.get(
            "/assets/big.txt", headers={"Range": f"bytes={n * 100}-{n * 100 + 999}", "Accept-Encoding": "identity"}
        )
        assert first.status_code == 206
        assert len(first.content) == 1000
        etag = site.get("/assets/data.json").headers["etag"]
        assert site.get("/assets/data.json", headers={"If-None-Match": etag}).status_code == 304


@pytest.mark.parametrize("n", range(10))
def test_not_found(pytest_goleak, n: int) -> None:
    with site_client(pytest_goleak) as site:
        assert site.get(f"/missing/{n}.html").status_code == 404


@pytest.mark.parametrize("n", range(40))
def test_reverse_proxy(pytest_goleak, n: int) -> None:
    with site_client(pytest_goleak) as site:
        response = site.get(f"/api/items/{n}", params={"page": n % 4})
        assert response.status_code == 200, response.text
        assert response.json() == {"path": f"/api/items/{n}", "soak": "1"}


@pytest.mark.parametrize("n", range(10))
def test_reverse_proxy_post_body(pytest_goleak, n: int) -> None:
    with site_client(pytest_goleak) as site:
        body = b"x" * (1000 * (n + 1))
        response = site.post("/api/upload", content=body)
        assert response.status_code == 200


@pytest.mark.parametrize("n", range(12))
def test_concurrent_page_views(pytest_goleak, n: int) -> None:
    url = f"http://127.0.0.1:{pytest_goleak.service.ports['port_site']}"
    paths = ["/", "/assets/data.json", "/api/a", "/api/b", "/healthz", "/assets/big.txt"]
    with httpx.Client(base_url=url, timeout=10, trust_env=False, limits=httpx.Limits(max_connections=6)) as client:
        with ThreadPoolExecutor(max_workers=6) as pool:
            codes = list(pool.map(lambda p: client.get(p).status_code, paths * 3))
    assert codes == [200] * 18


@pytest.mark.parametrize("n", range(25))
def test_admin_api_reads(pytest_goleak, n: int) -> None:
    client = pytest_goleak.client
    path = [
        "/config/",
        "/config/apps/http/servers/site/listen",
        "/reverse_proxy/upstreams",
        "/config/admin",
        "/id/missing",
    ][n % 5]
    response = client.get(path)
    assert response.status_code in (200, 404) if path.startswith("/id/") else response.status_code == 200


@pytest.mark.xfail(
    strict=False,
    reason=(
        "diagnosed server-side retention, not a leak of the test: a config reload under traffic can leave "
        "an idle upstream keep-alive connection of the replaced reverse_proxy (3 goroutines, 2 fds; Caddy's "
        "Handler.Cleanup does not close them, they expire after the 2 min idle timeout), and with keep-alive "
        "clients the old server's Shutdown goroutine waiting on a connection; both outlive the 2 s settle. "
        "See README.md"
    ),
)
@pytest.mark.parametrize("n", range(10))
def test_admin_config_change(pytest_goleak, n: int) -> None:
    # Change the health check's body through the admin API (a graceful reload of the
    # http app, as an operator or a config agent does), then see the new body served.
    with site_client(pytest_goleak) as site:
        client = pytest_goleak.client
        path = "/config/apps/http/servers/site/routes/0/handle/0/body"
        response = client.patch(path, json=f"ok-{n}")
        assert response.status_code == 200, response.text
        assert site.get("/healthz").text == f"ok-{n}"
