"""Prometheus soak: background traffic every 250 ms, bookkeeping (see ../soaklib.py)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import soaklib

# What a dashboard polling Prometheus sends: instant queries, health, metadata.
BACKGROUND = [
    ("GET", "/api/v1/query?query=up", None),
    ("GET", "/-/healthy", None),
    ("GET", "/api/v1/query?query=rate(prometheus_http_requests_total%5B10s%5D)", None),
    ("GET", "/-/ready", None),
    ("GET", "/api/v1/label/job/values", None),
    ("GET", "/metrics", None),
]


def session_end(service) -> dict[str, object]:
    """Prometheus' own view of its self-scrape: connection churn and failed scrapes."""
    import re

    import httpx

    with httpx.Client(base_url=service.url, timeout=10, trust_env=False) as client:
        metrics = client.get("/metrics").text
        failed = client.get("/api/v1/query", params={"query": "sum_over_time((1 - up)[10m:1s])"}).json()
        slowest = client.get("/api/v1/query", params={"query": "max_over_time(scrape_duration_seconds[10m])"}).json()
    notes: dict[str, object] = {}
    for line in metrics.splitlines():
        if re.match(r'net_conntrack_dialer_conn_(established|closed|failed)_total\{dialer_name="self"', line):
            key = line.split("{")[0].removeprefix("net_conntrack_dialer_")
            notes[key] = notes.get(key, 0) + float(line.split()[-1])
    notes["failed_scrapes_10m"] = [r["value"][1] for r in failed["data"]["result"]]
    notes["slowest_scrape_s"] = [r["value"][1] for r in slowest["data"]["result"]]
    return notes


def warm_up(service) -> dict[str, object]:
    """Wait until Prometheus has really started: pprof answers long before it scrapes.

    Prometheus starts its scrape loops only when the discovery manager first
    hands over targets (throttled to every 5 s), and the first scrape then opens
    a keep-alive connection to itself and creates ~1000 series. Without this
    wait the test that happens to run at that moment is judged for it.
    """
    import time

    import httpx

    deadline = time.monotonic() + 60
    with httpx.Client(base_url=service.url, timeout=5, trust_env=False) as client:
        while time.monotonic() < deadline:
            targets = client.get("/api/v1/targets").json()["data"]["activeTargets"]
            done = client.get("/api/v1/query", params={"query": "prometheus_target_interval_length_seconds_count"})
            scrapes = sum(float(r["value"][1]) for r in done.json()["data"]["result"])
            if targets and all(t["health"] == "up" for t in targets) and scrapes >= 3:
                return {"targets_up": len(targets), "scrapes_seen": scrapes}
            time.sleep(0.25)
    raise RuntimeError("Prometheus did not scrape itself within 60 s")


soaklib.install(globals(), "prometheus", soaklib.cycle(BACKGROUND), session_end, warm_up)
