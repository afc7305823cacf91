"""One test's view of the service: its client and gRPC channel, the services it watches, and their outcomes.

A :class:`GoleakHandle` is what the ``pytest_goleak`` fixture yields. It runs
one leak check per watched service (:func:`~pytest_goleak.judge.watch.check_one_test`)
and renders each outcome as report text (:mod:`pytest_goleak.report.failure`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from pytest_goleak.errors import GoleakError
from pytest_goleak.judge.budget import Budget
from pytest_goleak.judge.measures import values
from pytest_goleak.judge.verdict import Verdict
from pytest_goleak.judge.watch import CheckSequence, Listeners, Outcome, ServiceRuns, Steady, check_one_test, problem_of
from pytest_goleak.read import http
from pytest_goleak.read.snapshot import Snapshot
from pytest_goleak.report.failure import render_outcome, render_problem
from pytest_goleak.service.protocol import Service

if TYPE_CHECKING:
    import grpc
    import httpx

# Its own connection, not one shared with a session channel to the same address (grpcio shares them by default):
# closing it then closes a connection, which the after-reading must not find open.
GRPC_OPTIONS = (("grpc.use_local_subchannel_pool", 1),)
GRPC_MISSING = "pytest_goleak.grpc_channel needs grpcio, which is not installed: pip install pytest-goleak[grpc]"


class _Watch:
    """One watched service during one test: its sequence, paused while the test runs, and how it ended."""

    def __init__(self, service: Service, budget: Budget, runs: ServiceRuns, listeners: Listeners) -> None:
        self.service = service
        self.reader = runs.reader(service, budget, listeners)
        self.sequence: CheckSequence = check_one_test(service, self.reader, runs, listeners)
        self.before: Snapshot | None = None
        self.outcome: Outcome | None = None

    def begin(self) -> None:
        self.before = next(self.sequence)

    def finish(self, steady: Steady | None = None) -> str | None:
        """Resume the sequence after the test; the failure text, or None."""
        try:
            self.sequence.send(steady)
        except StopIteration as done:
            self.outcome = done.value
        assert self.outcome is not None, "check_one_test yields once"
        return render_outcome(self.outcome, self.service)

    def steady_reading(self) -> Snapshot:
        """A reading of what this watch's budget checks, after one measured steady-state run."""
        return self.reader.take("steady")

    def failure(self, error: GoleakError) -> str:
        """The report of a service that ended or could not be read mid-test, in its own words."""
        self.sequence.close()
        return render_problem(problem_of(self.service, error, "after"))


class GoleakHandle:
    """What a test gets from the ``pytest_goleak`` fixture."""

    def __init__(
        self,
        service: Service,
        budget: Budget,
        checking: bool,
        runs: ServiceRuns,
        listeners: Listeners | None = None,
    ) -> None:
        self.service = service
        self.url = service.url
        self.budget = budget
        self._checking = checking
        self._runs = runs
        self._client: httpx.Client | None = None
        self._channel: grpc.Channel | None = None
        self._listeners = listeners or Listeners()
        self._watches: list[_Watch] = []

    @property
    def client(self) -> httpx.Client:
        """An httpx client on the service, for this test only: closed before the after-reading.

        Made on first use: a test that talks to the service its own way (gRPC, its own client) pays nothing.
        """
        if self._client is None:
            self._client = http.client(
                self.service.request_timeout, self.service.unix_socket, base_url=self.service.url
            )
        return self._client

    @property
    def grpc_channel(self) -> grpc.Channel:
        """A gRPC channel to the service (``goleak_grpc_port``), for this test only: closed before the after-reading.

        Made on first use, on a connection of its own. Needs grpcio (``pip install pytest-goleak[grpc]``).
        """
        if self._channel is None:
            try:
                import grpc
            except ImportError:
                pytest.fail(GRPC_MISSING, pytrace=False)
            self._channel = grpc.insecure_channel(self.service.grpc_target, options=GRPC_OPTIONS)
        return self._channel

    def _close_client(self) -> None:
        if self._client is not None:
            self._client.close()
        if self._channel is not None:
            self._channel.close()
            self._channel = None

    @property
    def checking(self) -> bool:
        return self._checking

    @property
    def verdict(self) -> Verdict | None:
        """The main service's verdict, once the check has ended (after the test's own fixtures are torn down)."""
        outcome = self._watches[0].outcome if self._watches else None
        return outcome.verdict if outcome is not None else None

    def snapshot(self) -> Snapshot:
        """A reading of the service now: goroutines, live heap, fds, children, threads, temp files."""
        return self._runs.snapshotter(self.service).take(sockets=self.budget.describes_sockets)

    def values(self) -> dict[str, int | None]:
        """Each measure of the service now, by name, counted as this test's budget counts it."""
        return values(self.snapshot(), self.budget)

    def watch(self, service: Service) -> None:
        """Check another service for leaks during this test too (see ``goleak_service_factory``)."""
        if not self._checking:
            return
        watch = _Watch(service, self.budget, self._runs, self._listeners)
        watch.begin()
        self._watches.append(watch)

    def begin(self) -> None:
        self.watch(self.service)

    def _combine(self, texts: list[str | None]) -> str | None:
        named = [
            f"[{watch.service.name}] {text}" if len(self._watches) > 1 else text
            for watch, text in zip(self._watches, texts, strict=True)
            if text
        ]
        return "\n\n".join(named) or None

    def finish(self) -> str | None:
        """Close the test's connections and judge every watched service; the failure text, or None."""
        self._close_client()
        return self._combine([watch.finish() for watch in self._watches])

    def finish_steady(self, rerun: Callable[[], object]) -> str | None:
        """Run the test again (warm-up, then measured runs) and judge it by the steady-state rule.

        The first run has already happened. Readings start after the last
        warm-up run (or before the first run, with no warm-up).
        """
        warmup, repeat = self.budget.warmup, self.budget.repeat
        readings: list[list[Snapshot]] = [[] for _ in self._watches]
        if warmup == 0:
            for watch, series in zip(self._watches, readings, strict=True):
                assert watch.before is not None
                series.append(watch.before)
        for run in range(1, warmup + repeat + 1):
            if run > 1:
                rerun()
            if run < warmup:
                continue
            for index, watch in enumerate(self._watches):
                try:
                    readings[index].append(watch.steady_reading())
                except GoleakError as exc:  # a dead service fails here too, and failure() says it died
                    self._close_client()
                    return self._combine([w.failure(exc) if w is watch else None for w in self._watches])
        # The client stays open while judging: a heap leak the sampler missed gets more runs of the test.
        # The readings were all taken with its connection open, so it is in none of their growth.
        try:
            return self._combine(
                [watch.finish(Steady(series, rerun)) for watch, series in zip(self._watches, readings, strict=True)]
            )
        finally:
            self._close_client()

    def close(self) -> None:
        self._close_client()
