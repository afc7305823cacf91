"""Clean traffic against a real Prometheus; every test must pass the leak check.

Each test uses ``pytest_goleak.client`` (closed by the plugin before its
after-reading) or its own clients that it closes, the way a well-behaved
caller would. No test keeps anything open past its end, so any leak verdict
here is a false positive (or a real leak in Prometheus, to be told apart).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

INSTANT = [
    "up",
    "up{job='self'}",
    "sum(up)",
    "soak:up:sum",
    "rate(prometheus_http_requests_total[10s])",
    "sum by (handler) (rate(prometheus_http_requests_total[30s]))",
    "histogram_quantile(0.9, sum by (le) (rate(prometheus_http_request_duration_seconds_bucket[30s])))",
    "topk(5, count by (__name__) ({job='self'}))",
    "go_goroutines",
    "process_resident_memory_bytes / 1024 / 1024",
    "increase(prometheus_tsdb_head_samples_appended_total[20s])",
    "count(count by (__name__) ({__name__=~'.+'}))",
    "absent(nonexistent_metric)",
    "max_over_time(go_memstats_heap_alloc_bytes[30s])",
    "time() - process_start_time_seconds",
    "label_replace(up, 'host', '$1', 'instance', '(.*):.*')",
    "predict_linear(go_memstats_heap_alloc_bytes[30s], 60)",
    "ALERTS",
    "scrape_duration_seconds",
    "sum without (instance) (rate(prometheus_engine_query_duration_seconds_count[30s]))",
]

RANGE = [
    "up",
    "rate(prometheus_http_requests_total[5s])",
    "sum(go_goroutines)",
    "avg_over_time(scrape_samples_scraped[10s])",
    "deriv(process_cpu_seconds_total[10s])",
]

META = [
    "/api/v1/labels",
    "/api/v1/label/__name__/values",
    "/api/v1/label/job/values",
    "/api/v1/series?match[]=up",
    "/api/v1/series?match[]={__name__=~'prometheus_http.*'}",
    "/api/v1/metadata?limit=20",
    "/api/v1/metadata?metric=go_goroutines",
    "/api/v1/targets",
    "/api/v1/targets?state=active",
    "/api/v1/targets/metadata?match_target={job='self'}&limit=10",
    "/api/v1/rules",
    "/api/v1/rules?type=alert",
    "/api/v1/alerts",
    "/api/v1/alertmanagers",
    "/api/v1/status/config",
    "/api/v1/status/flags",
    "/api/v1/status/runtimeinfo",
    "/api/v1/status/buildinfo",
    "/api/v1/status/tsdb",
    "/api/v1/status/walreplay",
    "/api/v1/query_exemplars?query=up&start=0&end=9999999999",
]


def ok(response: httpx.Response) -> dict:
    assert response.status_code == 200, response.text[:500]
    body = response.json()
    assert body["status"] == "success", body
    return body


@pytest.mark.parametrize("n", range(60))
def test_instant_query(pytest_goleak, n: int) -> None:
    expr = INSTANT[n % len(INSTANT)]
    body = ok(pytest_goleak.client.get("/api/v1/query", params={"query": expr}))
    assert body["data"]["resultType"] in ("vector", "scalar", "matrix")


@pytest.mark.parametrize("n", range(20))
def test_instant_query_post(pytest_goleak, n: int) -> None:
    expr = INSTANT[(3 * n) % len(INSTANT)]
    ok(pytest_goleak.client.post("/api/v1/query", data={"query": expr, "time": f"{time.time():.3f}"}))


@pytest.mark.parametrize("n", range(25))
def test_range_query(pytest_goleak, n: int) -> None:
    now = time.time()
    expr = RANGE[n % len(RANGE)]
    params = {"query": expr, "start": now - 60, "end": now, "step": ["1", "2s", "5s", "15s", "30s"][n % 5]}
    body = ok(pytest_goleak.client.get("/api/v1/query_range", params=params))
    assert body["data"]["resultType"] == "matrix"


@pytest.mark.parametrize("n", range(42))
def test_metadata_and_status(pytest_goleak, n: int) -> None:
    ok(pytest_goleak.client.get(META[n % len(META)]))


@pytest.mark.parametrize("n", range(12))
def test_metrics_and_federate(pytest_goleak, n: int) -> None:
    client = pytest_goleak.client
    if n % 2:
        response = client.get("/federate", params={"match[]": ["up", "{__name__=~'go_.*'}"]})
    else:
        response = client.get("/metrics")
    assert response.status_code == 200
    assert "go_goroutines" in response.text or "up{" in response.text


@pytest.mark.parametrize("n", range(10))
def test_health_ready(pytest_goleak, n: int) -> None:
    assert pytest_goleak.client.get("/-/healthy").status_code == 200
    assert pytest_goleak.client.get("/-/ready").status_code == 200


@pytest.mark.parametrize("n", range(10))
def test_bad_queries_are_rejected(pytest_goleak, n: int) -> None:
    client = pytest_goleak.client
    bad = ["sum(", "rate(up)", "up[", "foo{", "1 +"][n % 5]
    response = client.get("/api/v1/query", params={"query": bad})
    assert response.status_code == 400
    assert response.json()["errorType"] == "bad_data"


@pytest.mark.parametrize("n", range(8))
def test_query_timeout_parameter(pytest_goleak, n: int) -> None:
    # A tiny timeout makes the engine cancel the query (the error path), or it finishes first.
    params = {"query": "count_over_time({__name__=~'.+'}[1m])", "timeout": "0.001" if n % 2 else "10s"}
    response = pytest_goleak.client.get("/api/v1/query", params=params)
    assert response.status_code in (200, 503, 422), response.text[:300]


@pytest.mark.parametrize("n", range(10))
def test_concurrent_dashboard_burst(pytest_goleak, n: int) -> None:
    # A dashboard refresh: 12 panels at once, over several connections.
    url = pytest_goleak.url
    with httpx.Client(base_url=url, timeout=10, trust_env=False, limits=httpx.Limits(max_connections=6)) as client:

        def one(i: int) -> int:
            expr = INSTANT[(i + n) % len(INSTANT)]
            return client.get("/api/v1/query", params={"query": expr}).status_code

        with ThreadPoolExecutor(max_workers=6) as pool:
            codes = list(pool.map(one, range(12)))
    assert codes == [200] * 12


@pytest.mark.parametrize("n", range(6))
def test_config_reload(pytest_goleak, n: int) -> None:
    # Reload the unchanged config (what a config-management agent does on a timer).
    response = pytest_goleak.client.post("/-/reload")
    assert response.status_code == 200, response.text
    ok(pytest_goleak.client.get("/api/v1/status/config"))


@pytest.mark.parametrize("n", range(4))
def test_admin_tsdb_snapshot(pytest_goleak, n: int) -> None:
    body = ok(pytest_goleak.client.post("/api/v1/admin/tsdb/snapshot", params={"skip_head": "false"}))
    assert body["data"]["name"]
