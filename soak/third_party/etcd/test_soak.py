"""Clean traffic against a real etcd through its v3 HTTP/JSON gateway.

Every test closes what it opens (its client is closed by the plugin before the
after-reading; extra clients and watch streams are closed by the test), and
leases it grants are revoked. Any leak verdict here is a false positive, or a
real leak in etcd, to be told apart.
"""

from __future__ import annotations

import base64
import json
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def unb64(text: str) -> str:
    return base64.b64decode(text).decode()


def ok(response: httpx.Response) -> dict:
    assert response.status_code == 200, response.text[:500]
    return response.json()


def put(client: httpx.Client, key: str, value: str, **extra: object) -> dict:
    return ok(client.post("/v3/kv/put", json={"key": b64(key), "value": b64(value), **extra}))


def get(client: httpx.Client, key: str) -> list[dict]:
    return ok(client.post("/v3/kv/range", json={"key": b64(key)})).get("kvs", [])


@pytest.mark.parametrize("n", range(60))
def test_put_then_get(pytest_goleak, n: int) -> None:
    client = pytest_goleak.client
    key = f"app/config/{n % 17}"
    value = json.dumps({"n": n, "payload": "x" * (n * 37 % 900)})
    put(client, key, value)
    kvs = get(client, key)
    assert unb64(kvs[0]["value"]) == value


@pytest.mark.parametrize("n", range(30))
def test_prefix_range(pytest_goleak, n: int) -> None:
    client = pytest_goleak.client
    prefix = f"svc/{n % 5}/"
    for i in range(5):
        put(client, f"{prefix}instance-{i}", f"10.0.{n}.{i}:8080")
    body = {"key": b64(prefix), "range_end": b64(prefix[:-1] + "0")}
    body.update(
        [{}, {"limit": 3}, {"keys_only": True}, {"count_only": True}, {"sort_order": "DESCEND", "sort_target": "MOD"}][
            n % 5
        ]
    )
    result = ok(client.post("/v3/kv/range", json=body))
    assert int(result["count"]) == 5


@pytest.mark.parametrize("n", range(15))
def test_delete_range(pytest_goleak, n: int) -> None:
    client = pytest_goleak.client
    prefix = f"tmp/{uuid.uuid4().hex}/"
    for i in range(4):
        put(client, f"{prefix}{i}", "v")
    result = ok(
        client.post(
            "/v3/kv/deleterange", json={"key": b64(prefix), "range_end": b64(prefix[:-1] + "0"), "prev_kv": n % 2 == 0}
        )
    )
    assert result["deleted"] == "4"


@pytest.mark.parametrize("n", range(25))
def test_txn_compare_and_swap(pytest_goleak, n: int) -> None:
    client = pytest_goleak.client
    key = f"locks/{n % 6}"
    put(client, key, "free")
    txn = {
        "compare": [{"key": b64(key), "target": "VALUE", "result": "EQUAL", "value": b64("free")}],
        "success": [{"request_put": {"key": b64(key), "value": b64(f"held-by-{n}")}}],
        "failure": [{"request_range": {"key": b64(key)}}],
    }
    assert ok(client.post("/v3/kv/txn", json=txn))["succeeded"] is True
    again = ok(client.post("/v3/kv/txn", json=txn))
    assert again.get("succeeded", False) is False


@pytest.mark.parametrize("n", range(20))
def test_lease_lifecycle(pytest_goleak, n: int) -> None:
    client = pytest_goleak.client
    lease = ok(client.post("/v3/lease/grant", json={"TTL": 60}))["ID"]
    put(client, f"sessions/{n}", "alive", lease=lease)
    ttl = ok(client.post("/v3/lease/timetolive", json={"ID": lease, "keys": True}))
    assert int(ttl["TTL"]) > 0
    if n % 2:
        leases = ok(client.post("/v3/lease/leases", json={}))
        assert any(item["ID"] == lease for item in leases.get("leases", []))
    ok(client.post("/v3/lease/revoke", json={"ID": lease}))
    assert get(client, f"sessions/{n}") == []


@pytest.mark.parametrize("n", range(15))
def test_watch_stream(pytest_goleak, n: int) -> None:
    # Open a watch, see it created, make a change, read the event, hang up.
    key = f"watched/{n}"
    with httpx.Client(base_url=pytest_goleak.url, timeout=10, trust_env=False) as watcher:
        body = {"create_request": {"key": b64(key)}}
        with watcher.stream("POST", "/v3/watch", json=body) as stream:
            lines = stream.iter_lines()
            created = json.loads(next(lines))
            assert created["result"]["created"] is True
            put(pytest_goleak.client, key, f"v{n}")
            event = json.loads(next(lines))
            assert unb64(event["result"]["events"][0]["kv"]["value"]) == f"v{n}"


@pytest.mark.parametrize("n", range(15))
def test_cluster_status(pytest_goleak, n: int) -> None:
    client = pytest_goleak.client
    path = [
        "/v3/maintenance/status",
        "/v3/cluster/member/list",
        "/v3/maintenance/alarm",
        "/v3/maintenance/hash",
        "/v3/maintenance/status",
    ][n % 5]
    body = {"action": "GET"} if "alarm" in path else {}
    ok(client.post(path, json=body))


@pytest.mark.parametrize("n", range(5))
def test_compaction(pytest_goleak, n: int) -> None:
    client = pytest_goleak.client
    revision = int(put(client, "compact/marker", str(n))["header"]["revision"])
    ok(client.post("/v3/kv/compaction", json={"revision": revision - 1, "physical": n % 2 == 0}))


@pytest.mark.parametrize("n", range(10))
def test_health_metrics_version(pytest_goleak, n: int) -> None:
    client = pytest_goleak.client
    assert client.get("/health").json()["health"] == "true"
    assert client.get("/version").json()["etcdserver"]
    if n % 2:
        assert "etcd_server_has_leader 1" in client.get("/metrics").text


@pytest.mark.parametrize("n", range(10))
def test_concurrent_writers(pytest_goleak, n: int) -> None:
    with httpx.Client(
        base_url=pytest_goleak.url, timeout=10, trust_env=False, limits=httpx.Limits(max_connections=5)
    ) as client:

        def one(i: int) -> int:
            return client.post("/v3/kv/put", json={"key": b64(f"burst/{n}/{i}"), "value": b64("x" * 100)}).status_code

        with ThreadPoolExecutor(max_workers=5) as pool:
            codes = list(pool.map(one, range(20)))
    assert codes == [200] * 20
