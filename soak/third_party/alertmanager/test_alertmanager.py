"""Alertmanager's v2 API under pytest-goleak, written as a user of the plugin would write it.

Alertmanager keeps state per resource a test creates. Each alert group is one
``dispatch.(*aggrGroup).run`` goroutine until its alerts resolve, and the API
cannot delete alerts. So a test that creates groups says how many in its
marker (``goroutines=N``): it may leave that many, and one more fails it.
A test that posts alerts waits until the dispatcher has processed them, so
that the groups it starts are charged to it. Silences have no goroutine; a
test that creates one expires it when done. An expired silence stays in
memory until its retention (5 days), but each is a few hundred bytes: far
below the heap budget.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

import httpx
import pytest


def _name(kind: str) -> str:
    """A name no other test uses, so that each alert it posts starts a group of its own."""
    return f"soak-{kind}-{uuid.uuid4().hex[:10]}"


def _now(offset: float = 0.0) -> str:
    return (datetime.now(timezone.utc) + timedelta(seconds=offset)).isoformat()


def _alert(alertname: str, **labels: str) -> dict[str, object]:
    return {
        "labels": {"alertname": alertname, "severity": "page", **labels},
        "annotations": {"summary": f"{alertname} fired"},
        "generatorURL": "http://prometheus.example/graph",
    }


def _silence(alertname: str, hours: float = 1.0) -> dict[str, object]:
    return {
        "matchers": [{"name": "alertname", "value": alertname, "isRegex": False, "isEqual": True}],
        "startsAt": _now(),
        "endsAt": _now(hours * 3600),
        "createdBy": "soak",
        "comment": "pytest-goleak soak",
    }


def _processed(client: httpx.Client) -> int:
    """How many alerts the dispatcher has processed, by its own counter (read unzipped: no pooled gzip writer)."""
    metrics = client.get("/metrics", headers={"Accept-Encoding": "identity"}).text
    found = re.search(r"^alertmanager_dispatcher_alert_processing_duration_seconds_count (\d+)$", metrics, re.M)
    assert found, "no alert-processing counter in /metrics"
    return int(found.group(1))


def _post_alerts(client: httpx.Client, *alerts: dict[str, object]) -> None:
    """Post ``alerts`` and wait until the dispatcher has processed them.

    The API answers before the dispatcher has grouped the alerts, and a group's
    goroutine starts only then: without this wait it could start after the
    test's last reading and be charged to the next test.
    """
    done = _processed(client) + len(alerts)
    response = client.post("/api/v2/alerts", json=list(alerts))
    assert response.status_code == 200, response.text
    deadline = time.monotonic() + 10
    while _processed(client) < done:
        assert time.monotonic() < deadline, "the dispatcher did not process the alerts within 10 s"
        time.sleep(0.01)


def _create_silence(client: httpx.Client, body: dict[str, object]) -> str:
    response = client.post("/api/v2/silences", json=body)
    assert response.status_code == 200, response.text
    silence_id = response.json()["silenceID"]
    assert isinstance(silence_id, str)
    return silence_id


def _expire(client: httpx.Client, silence_id: str) -> None:
    assert client.delete(f"/api/v2/silence/{silence_id}").status_code == 200


# Reads


@pytest.mark.parametrize("path", ["/-/healthy", "/-/ready"] * 5)
def test_health(pytest_goleak, path: str) -> None:  # type: ignore[no-untyped-def]
    assert pytest_goleak.client.get(path).status_code == 200


@pytest.mark.parametrize("round_", range(5))
def test_status_and_receivers(pytest_goleak, round_: int) -> None:  # type: ignore[no-untyped-def]
    status = pytest_goleak.client.get("/api/v2/status")
    assert status.status_code == 200
    assert status.json()["cluster"]["status"] == "disabled"
    receivers = pytest_goleak.client.get("/api/v2/receivers")
    assert receivers.status_code == 200
    assert {"name": "null"} in receivers.json()


@pytest.mark.parametrize(
    "params",
    [{}, {"active": "true"}, {"silenced": "false"}, {"inhibited": "false"}, {"filter": "severity=page"}] * 3,
)
def test_list_alerts(pytest_goleak, params: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    response = pytest_goleak.client.get("/api/v2/alerts", params=params)
    assert response.status_code == 200
    assert isinstance(response.json(), list)


@pytest.mark.parametrize("round_", range(8))
def test_list_groups_and_silences(pytest_goleak, round_: int) -> None:  # type: ignore[no-untyped-def]
    assert pytest_goleak.client.get("/api/v2/alerts/groups").status_code == 200
    assert pytest_goleak.client.get("/api/v2/silences").status_code == 200


@pytest.mark.parametrize("round_", range(4))
def test_metrics_and_ui(pytest_goleak, round_: int) -> None:  # type: ignore[no-untyped-def]
    metrics = pytest_goleak.client.get("/metrics")
    assert metrics.status_code == 200
    assert "alertmanager_alerts" in metrics.text
    assert pytest_goleak.client.get("/").status_code == 200


# Alerts: each new group is state the server keeps, budgeted in the marker.


@pytest.mark.goleak(goroutines=1)
@pytest.mark.parametrize("round_", range(20))
def test_an_alert_starts_one_group(pytest_goleak, round_: int) -> None:  # type: ignore[no-untyped-def]
    alertname = _name("one")
    _post_alerts(pytest_goleak.client, _alert(alertname))
    alerts = pytest_goleak.client.get("/api/v2/alerts", params={"filter": f"alertname={alertname}"}).json()
    assert [alert["labels"]["alertname"] for alert in alerts] == [alertname]


@pytest.mark.goleak(goroutines=3)
@pytest.mark.parametrize("round_", range(8))
def test_alerts_in_three_groups(pytest_goleak, round_: int) -> None:  # type: ignore[no-untyped-def]
    names = [_name("three") for _ in range(3)]
    _post_alerts(pytest_goleak.client, *(_alert(name, instance=f"host-{i}") for name in names for i in range(2)))
    groups = pytest_goleak.client.get("/api/v2/alerts/groups").json()
    mine = [group for group in groups if group["labels"].get("alertname") in names]
    assert len(mine) == 3
    assert all(len(group["alerts"]) == 2 for group in mine)


# The first of these starts the shared group; the others add alerts to it and start nothing.
@pytest.mark.goleak(goroutines=1)
@pytest.mark.parametrize("round_", range(10))
def test_alerts_join_an_existing_group(pytest_goleak, round_: int) -> None:  # type: ignore[no-untyped-def]
    _post_alerts(pytest_goleak.client, _alert("soak-shared", instance=f"host-{round_}"))
    assert pytest_goleak.client.get("/api/v2/alerts", params={"filter": "alertname=soak-shared"}).json()


@pytest.mark.goleak(goroutines=1)
@pytest.mark.parametrize("round_", range(5))
def test_a_resolved_alert(pytest_goleak, round_: int) -> None:  # type: ignore[no-untyped-def]
    alert = {**_alert(_name("resolved")), "startsAt": _now(-120), "endsAt": _now(-60)}
    _post_alerts(pytest_goleak.client, alert)


@pytest.mark.parametrize("round_", range(3))
def test_a_bad_alert_is_refused(pytest_goleak, round_: int) -> None:  # type: ignore[no-untyped-def]
    assert pytest_goleak.client.post("/api/v2/alerts", json=[{"labels": {}}]).status_code == 400
    json_type = {"Content-Type": "application/json"}
    bad = pytest_goleak.client.post("/api/v2/alerts", content=b"{not json", headers=json_type)
    assert bad.status_code == 400


# Silences: created, read, listed, updated and expired within the test.


@pytest.mark.parametrize("round_", range(20))
def test_silence_lifecycle(pytest_goleak, round_: int) -> None:  # type: ignore[no-untyped-def]
    client = pytest_goleak.client
    silence_id = _create_silence(client, _silence(_name("silence")))
    assert client.get(f"/api/v2/silence/{silence_id}").json()["status"]["state"] == "active"
    assert any(s["id"] == silence_id for s in client.get("/api/v2/silences").json())
    _expire(client, silence_id)
    assert client.get(f"/api/v2/silence/{silence_id}").json()["status"]["state"] == "expired"


@pytest.mark.parametrize("round_", range(5))
def test_silence_update_replaces_it(pytest_goleak, round_: int) -> None:  # type: ignore[no-untyped-def]
    client = pytest_goleak.client
    alertname = _name("update")
    silence_id = _create_silence(client, _silence(alertname))
    updated = _create_silence(client, {**_silence(alertname, hours=2), "id": silence_id, "comment": "longer"})
    assert client.get(f"/api/v2/silence/{updated}").json()["comment"] == "longer"
    for each in {silence_id, updated}:
        client.delete(f"/api/v2/silence/{each}")
    assert client.get(f"/api/v2/silence/{updated}").json()["status"]["state"] == "expired"


@pytest.mark.goleak(goroutines=1)
@pytest.mark.parametrize("round_", range(6))
def test_a_silence_silences_a_matching_alert(pytest_goleak, round_: int) -> None:  # type: ignore[no-untyped-def]
    client = pytest_goleak.client
    alertname = _name("silenced")
    _post_alerts(client, _alert(alertname))
    silence_id = _create_silence(client, _silence(alertname))
    silenced = client.get("/api/v2/alerts", params={"filter": f"alertname={alertname}", "silenced": "true"}).json()
    assert [alert["status"]["silencedBy"] for alert in silenced] == [[silence_id]]
    _expire(client, silence_id)


@pytest.mark.parametrize("round_", range(3))
def test_bad_silences_are_refused(pytest_goleak, round_: int) -> None:  # type: ignore[no-untyped-def]
    client = pytest_goleak.client
    assert client.post("/api/v2/silences", json={**_silence("x"), "matchers": []}).status_code == 422
    assert client.get(f"/api/v2/silence/{uuid.uuid4()}").status_code == 404
    assert client.delete(f"/api/v2/silence/{uuid.uuid4()}").status_code in (404, 500)


@pytest.mark.parametrize("round_", range(5))
def test_concurrent_silences(pytest_goleak, round_: int) -> None:  # type: ignore[no-untyped-def]
    """Six clients at once, each on its own connection, each closing it when done."""
    errors: list[BaseException] = []

    def work() -> None:
        try:
            with httpx.Client(base_url=pytest_goleak.url, trust_env=False, timeout=10) as client:
                for _ in range(3):
                    _expire(client, _create_silence(client, _silence(_name("concurrent"))))
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors
    assert not any(thread.is_alive() for thread in threads)
