"""Shared pieces of the third-party soak suites: background traffic and bookkeeping.

Each server's ``conftest.py`` puts this directory on ``sys.path`` and calls
:func:`install` with the requests its background thread should send. Nothing
here changes what pytest-goleak decides; it only watches:

* a background thread sends one request to the server every ``SOAK_BG_PERIOD``
  seconds (default 0.25) for the whole session, bounded by ``SOAK_BG_MAX_SECONDS``
  (default 290) and ``SOAK_BG_MAX_REQUESTS`` (default 1200), and stops at session
  end. ``SOAK_BG_MODE`` is ``close`` (a new TCP connection per request, the most
  goroutine churn; the default), ``keepalive`` (one pooled connection) or ``off``.
* every snapshot the plugin takes for a test is recorded (by wrapping the
  handle's snapshotter), so that a test whose *first* after-reading showed growth
  that settling then saw disappear is counted, with the identities involved;
* at the end a summary is printed (and written as JSON to ``SOAK_SUMMARY`` if set).
"""

from __future__ import annotations

import json
import os
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import pytest

from pytest_goleak import FDS, HEAP, THREADS, GoService, Service, Snapshot, Verdict, diff, render

# (method, path, json-body-or-None). A callable may produce one per call.
Request = tuple[str, str, object]


def _env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


@dataclass
class Background:
    """One thread hitting the server every ``period`` seconds until stopped or bounded."""

    base_url: str
    requests: Callable[[int], Request]
    mode: str = "close"
    period: float = 0.25
    max_seconds: float = 290.0
    max_requests: int = 1200
    sent: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    _client_obj: httpx.Client | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        if self.mode == "off":
            return
        self._client_obj = self._client()
        if self.mode == "keepalive":
            # Open the pooled connections (one per host the requests name) before the
            # first test: opened lazily, they would be judged as that test's growth.
            for n in range(10):
                self._send(self._client_obj, n)
        self._thread = threading.Thread(target=self._run, name="soak-background", daemon=True)
        self._thread.start()

    def _client(self) -> httpx.Client:
        if self.mode == "keepalive":
            return httpx.Client(base_url=self.base_url, timeout=5.0, trust_env=False)
        # A new connection for every request, closed by the client afterwards.
        limits = httpx.Limits(max_keepalive_connections=0)
        return httpx.Client(base_url=self.base_url, timeout=5.0, trust_env=False, limits=limits)

    def _send(self, client: httpx.Client, n: int) -> None:
        method, path, body = self.requests(n)
        started = time.monotonic()
        try:
            response = client.request(method, path, json=body) if body is not None else client.request(method, path)
            response.read()
            self.statuses[response.status_code] += 1
        except httpx.HTTPError as exc:
            self.errors[type(exc).__name__] += 1
        finally:
            self.latencies.append(time.monotonic() - started)
            self.sent += 1

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        next_at = time.monotonic()
        client = self._client_obj
        assert client is not None
        try:
            while not self._stop.is_set() and self.sent < self.max_requests and time.monotonic() < deadline:
                self._send(client, self.sent)
                next_at += self.period
                self._stop.wait(max(0.0, next_at - time.monotonic()))
        finally:
            client.close()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def summary(self) -> dict[str, object]:
        lat = sorted(self.latencies)
        return {
            "mode": self.mode,
            "period_s": self.period,
            "sent": self.sent,
            "statuses": dict(self.statuses),
            "errors": dict(self.errors),
            "latency_ms_p50": round(1000 * lat[len(lat) // 2], 1) if lat else None,
            "latency_ms_max": round(1000 * lat[-1], 1) if lat else None,
        }


@dataclass
class TestRecord:
    nodeid: str
    duration: float
    outcome: str = "passed"
    waited: float = 0.0
    readings: int = 0  # after-readings: the first after the test, then settle retakes
    fresh_before: bool = False  # a before-reading was taken (not the previous test's after-reading)
    first_after_over: tuple[str, ...] = ()
    transient_identities: tuple[str, ...] = ()
    goroutine_total: int | None = None
    heap_delta: int | None = None
    fd_delta: int | None = None
    thread_delta: int | None = None
    leak_text: str = ""


class Recorder:
    def __init__(self, server: str) -> None:
        self.server = server
        self.records: dict[str, TestRecord] = {}
        self.background: Background | None = None
        self.started = time.monotonic()
        self.service_info: dict[str, object] = {}
        self.server_notes: dict[str, object] = {}


RECORDER = pytest.StashKey[Recorder]()
READINGS = pytest.StashKey[list[Snapshot]]()
FRESH = pytest.StashKey[bool]()
VERDICT = pytest.StashKey[tuple[Verdict, Service]]()


def install(
    namespace: dict[str, object],
    server: str,
    background_requests: Callable[[GoService], Callable[[int], Request]],
    session_end: Callable[[GoService], dict[str, object]] | None = None,
    warm_up: Callable[[GoService], dict[str, object]] | None = None,
) -> None:
    """Define the soak hooks and fixtures in a conftest's namespace.

    ``warm_up(service)`` runs once before the first test (and before the
    background thread starts): it waits until the server has finished starting
    up in the background, and returns what it saw. ``session_end(service)`` may
    read the server's own counters at the end of the session (before it stops);
    its result goes into the summary.
    """

    def pytest_configure(config: pytest.Config) -> None:
        config.stash[RECORDER] = Recorder(server)

    @pytest.fixture(scope="session", autouse=True)
    def soak_background(request: pytest.FixtureRequest, goleak_service) -> Iterator[Background]:  # type: ignore[no-untyped-def]
        recorder = request.config.stash[RECORDER]
        background = Background(
            base_url=goleak_service.url,
            requests=background_requests(goleak_service),
            mode=os.environ.get("SOAK_BG_MODE", "close"),
            period=_env_float("SOAK_BG_PERIOD", 0.25),
            max_seconds=_env_float("SOAK_BG_MAX_SECONDS", 290.0),
            max_requests=int(_env_float("SOAK_BG_MAX_REQUESTS", 1200)),
        )
        recorder.background = background
        recorder.service_info = {"pid": goleak_service.pid, "command": goleak_service.command}
        if warm_up is not None and os.environ.get("SOAK_WARM_UP", "1") != "0":
            began = time.monotonic()
            recorder.service_info["warm_up"] = warm_up(goleak_service)
            recorder.service_info["warm_up_s"] = round(time.monotonic() - began, 2)
        background.start()
        yield background
        background.stop()
        if session_end is not None:
            try:
                recorder.server_notes = session_end(goleak_service)
            except Exception as exc:  # diagnostics only
                recorder.server_notes = {"error": repr(exc)}

    def pytest_goleak_reading(item: pytest.Item, service: Service, reading: Snapshot, phase: str) -> None:
        """Record every reading the plugin takes for this test, in order: before, after, settle retakes."""
        if phase == "before":  # else the verdict's before-reading is the previous test's after-reading
            item.stash[FRESH] = True
        else:
            item.stash.setdefault(READINGS, []).append(reading)

    def pytest_goleak_verdict(item: pytest.Item, service: Service, verdict: Verdict) -> None:
        item.stash.setdefault(VERDICT, (verdict, service))  # the first is the main service's

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(item: pytest.Item):  # type: ignore[no-untyped-def]
        # Registered after the plugin, so this wrapper runs outside the plugin's:
        # when it resumes, the plugin has already judged the test.
        started = time.monotonic()
        outcome = "passed"
        try:
            return (yield)
        except BaseException:
            outcome = "failed"
            raise
        finally:
            record = TestRecord(item.nodeid, time.monotonic() - started, outcome)
            verdict, service = item.stash.get(VERDICT, (None, None))
            readings = item.stash.get(READINGS, [])
            record.readings = len(readings)
            record.fresh_before = item.stash.get(FRESH, False)
            if verdict is not None:
                record.waited = verdict.waited
                record.goroutine_total = verdict.delta.goroutine_total
                record.heap_delta = verdict.delta.of(HEAP)
                record.fd_delta = verdict.delta.of(FDS)
                record.thread_delta = verdict.delta.of(THREADS)
                if verdict.failed:
                    record.leak_text = render(verdict) + _peers(service.pid)
            if len(readings) >= 2 and verdict is not None:  # a first after-reading over budget, more
                first = diff(verdict.before, readings[0], verdict.budget)
                record.first_after_over = tuple(first.over(verdict.budget))
                record.transient_identities = tuple(f"{g.identity} +{g.leaked}" for g in first.goroutines)
            item.config.stash[RECORDER].records[item.nodeid] = record

    def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:  # type: ignore[no-untyped-def]
        recorder = config.stash.get(RECORDER, None)
        if recorder is None or not recorder.records:
            return
        summary = summarize(recorder)
        tr = terminalreporter
        tr.write_sep("=", f"soak summary: {server}")
        for key, val in summary.items():
            if key in ("failures", "settled_examples"):
                continue
            tr.write_line(f"{key}: {val}")
        for example in summary["settled_examples"]:  # type: ignore[union-attr]
            tr.write_line(f"settled: {example}")
        for failure in summary["failures"]:  # type: ignore[union-attr]
            tr.write_line(f"FAILED {failure['nodeid']}:\n{failure['leak_text']}")
        target = os.environ.get("SOAK_SUMMARY")
        if target:
            Path(target).write_text(json.dumps(summary, indent=2, default=str))

    namespace.update(
        pytest_configure=pytest_configure,
        soak_background=soak_background,
        pytest_goleak_reading=pytest_goleak_reading,
        pytest_goleak_verdict=pytest_goleak_verdict,
        pytest_runtest_call=pytest_runtest_call,
        pytest_terminal_summary=pytest_terminal_summary,
    )


def _peers(pid: int) -> str:
    """Who holds the other end of each of the server's established TCP connections: which client leaked it."""
    owners = {}
    for conn in psutil.net_connections(kind="tcp"):
        if conn.laddr and conn.pid is not None:
            owners[(conn.laddr.ip, conn.laddr.port)] = conn.pid
    lines = ["", "established connections of the server (peer -> process holding it):"]
    for conn in psutil.Process(pid).net_connections(kind="tcp"):
        if conn.status == psutil.CONN_ESTABLISHED and conn.raddr:
            owner = owners.get((conn.raddr.ip, conn.raddr.port))
            try:
                name = f"{owner} {psutil.Process(owner).name()}" if owner is not None else "?"
            except psutil.Error:
                name = f"{owner} (gone)"
            lines.append(f"  fd {conn.fd} {conn.laddr.port} <- {conn.raddr.port}: {name}")
    return "\n".join(lines)


def summarize(recorder: Recorder) -> dict[str, object]:
    records = list(recorder.records.values())
    durations = sorted(r.duration for r in records)
    # A test "settled" when its first after-reading was over budget and a later one was not.
    settled = [r for r in records if r.readings >= 2 and not r.leak_text]
    transient = Counter(ident.rsplit(" +", 1)[0] for r in settled for ident in r.transient_identities)
    over_kinds = Counter(
        "goroutines" if "goroutine" in phrase else phrase.split()[0] for r in settled for phrase in r.first_after_over
    )

    def pct(p: float) -> float:
        return round(1000 * durations[min(len(durations) - 1, int(p * len(durations)))], 1)

    heap = [r.heap_delta for r in records if r.heap_delta is not None]
    return {
        "tests": len(records),
        "passed": sum(r.outcome == "passed" for r in records),
        "failed": sum(r.outcome == "failed" for r in records),
        "leak_failures": sum(bool(r.leak_text) for r in records),
        "leak_failures_by_test": dict(Counter(r.nodeid.split("[")[0].split("::")[-1] for r in records if r.leak_text)),
        "wall_s": round(time.monotonic() - recorder.started, 1),
        "test_ms_mean": round(1000 * statistics.fmean(durations), 1),
        "test_ms_p50": pct(0.5),
        "test_ms_p95": pct(0.95),
        "test_ms_max": pct(1.0),
        "tests_that_settled": len(settled),
        "settle_s_max": round(max((r.waited for r in records), default=0.0), 3),
        "settled_first_reading_over": dict(over_kinds),
        "settled_transient_identities": dict(transient.most_common(10)),
        "readings_max": max(r.readings for r in records),
        "fresh_before_readings": sum(r.fresh_before for r in records),
        "heap_delta_kib_max": round(max(heap) / 1024, 1) if heap else None,
        "heap_delta_over_512kib": sum(h > 512 * 1024 for h in heap),
        "heap_delta_kib_min": round(min(heap) / 1024, 1) if heap else None,
        "background": recorder.background.summary() if recorder.background else None,
        "server_notes": recorder.server_notes,
        "service": recorder.service_info,
        "settled_examples": [
            f"{r.nodeid} waited {r.waited:.3f}s first reading: {', '.join(r.first_after_over)} "
            f"[{'; '.join(r.transient_identities)}]"
            for r in settled[:8]
        ],
        "failures": [{"nodeid": r.nodeid, "leak_text": r.leak_text} for r in records if r.outcome == "failed"],
    }


def cycle(items: Sequence[Request]) -> Callable[[GoService], Callable[[int], Request]]:
    """Background requests that repeat ``items`` in order (paths relative to the service URL)."""
    return lambda service: lambda n: items[n % len(items)]
