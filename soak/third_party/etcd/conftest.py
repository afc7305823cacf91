"""etcd soak: background traffic every 250 ms, bookkeeping (see ../soaklib.py)."""

from __future__ import annotations

import base64
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import soaklib


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# What a config-watching sidecar or a health checker sends: reads, a heartbeat key, health.
BACKGROUND = [
    ("POST", "/v3/kv/range", {"key": b64("bg/heartbeat")}),
    ("GET", "/health", None),
    ("POST", "/v3/kv/put", {"key": b64("bg/heartbeat"), "value": b64("alive")}),
    ("POST", "/v3/kv/range", {"key": b64("bg/"), "range_end": b64("bg0"), "keys_only": True}),
    ("POST", "/v3/maintenance/status", {}),
    ("GET", "/metrics", None),
]


def warm_up(service) -> dict[str, object]:
    """Wait for a leader and a committed write: /debug/pprof answers before raft has elected one."""
    deadline = time.monotonic() + 30
    with httpx.Client(base_url=service.url, timeout=5, trust_env=False) as client:
        while time.monotonic() < deadline:
            try:
                health = client.get("/health").json()
                put = client.post("/v3/kv/put", json={"key": b64("warmup"), "value": b64("1")})
            except httpx.HTTPError:
                time.sleep(0.1)
                continue
            if health.get("health") == "true" and put.status_code == 200:
                return {"health": health, "revision": put.json()["header"]["revision"]}
            time.sleep(0.1)
    raise RuntimeError("etcd did not become healthy within 30 s")


def session_end(service) -> dict[str, object]:
    with httpx.Client(base_url=service.url, timeout=10, trust_env=False) as client:
        status = client.post("/v3/maintenance/status", json={}).json()
        metrics = client.get("/metrics").text
    wanted = (
        "etcd_debugging_mvcc_watcher_total",
        "etcd_debugging_mvcc_watch_stream_total",
        "etcd_server_leader_changes_seen_total",
        "etcd_debugging_lease_granted_total",
        "etcd_debugging_lease_revoked_total",
        "etcd_mvcc_db_total_size_in_bytes",
        "grpc_server_started_total",
        "go_goroutines",
    )
    notes: dict[str, object] = {"revision": status["header"]["revision"], "dbSize": status.get("dbSize")}
    for line in metrics.splitlines():
        name = line.split("{")[0].split(" ")[0]
        if name in wanted:
            notes[name] = notes.get(name, 0) + float(line.split()[-1])
    return notes


soaklib.install(globals(), "etcd", soaklib.cycle(BACKGROUND), session_end, warm_up)
