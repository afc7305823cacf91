"""One test's view of the service: its client, the services it watches, and their verdicts.

A :class:`GoleakHandle` is what the ``pytest_goleak`` fixture yields. It runs
one leak check per watched service (:class:`_Watch`) and turns whatever goes
wrong with a service (a crash, a freeze, garbage) into report text.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from pytest_goleak.errors import GoleakError
from pytest_goleak.judge.budget import Budget
from pytest_goleak.judge.check import LeakCheck, Phase, Verdict, gather_evidence, judged
from pytest_goleak.judge.diff import diff
from pytest_goleak.judge.measures import HEAP, THREADS, values
from pytest_goleak.judge.reuse import changed, read_now
from pytest_goleak.judge.startup import DEFAULT_QUIET, PARTS, Activity, Startup, wait_quiet
from pytest_goleak.judge.steady import names_the_leak, noise_floor, sample_more, trends
from pytest_goleak.read import http
from pytest_goleak.read.pprof import PprofClient
from pytest_goleak.read.snapshot import Snapshot, Snapshotter
from pytest_goleak.report.failure import ignore_help, render
from pytest_goleak.service.protocol import Service
from pytest_goleak.service.readiness import answering_ready_path

_NOISY_GAPS = 2  # gaps in a row that were not quiet, before after-readings bound the heap instead


class Readers:
    """What outlives one test for each service run: its pprof client, its last reading, its heap noise floor.

    One pprof client per run keeps one keep-alive connection for the whole
    session; a new connection per test would leave a winding-down server
    goroutine behind each time.
    """

    def __init__(self, fresh: bool = False, startup_quiet: float = DEFAULT_QUIET) -> None:
        self._clients: dict[str, PprofClient] = {}
        self.noise: dict[str, int] = {}
        self.startup_quiet = startup_quiet  # goleak_startup_quiet: see startup.py
        self._checked: set[str] = set()
        # A passing test's after-reading, kept for the next test's before-reading (see reuse.py);
        # goleak_fresh_readings takes a fresh one for every test instead.
        self.fresh = fresh
        self._last: dict[str, Snapshot] = {}
        self._noisy: dict[str, int] = {}  # how many gaps between tests in a row were not quiet

    def recall(self, service: Service, budget: Budget, snapshotter: Snapshotter) -> Snapshot | None:
        """The previous test's after-reading, if it still describes the service (see reuse.py); else None."""
        key = self.key(service)
        kept = self._last.pop(key, None)  # never kept with goleak_fresh_readings (see remember)
        if kept is None:
            return None
        if budget.ignore_fds and kept.process is not None and kept.process.sockets is None:
            return None  # its sockets were not described, so fd patterns cannot match them
        why = changed(kept, read_now(snapshotter, kept), threads=THREADS in budget.checked)
        self._noisy[key] = 0 if why is None else self._noisy.get(key, 0) + 1
        return kept if why is None else None

    def exact_after(self, service: Service) -> bool:
        """Whether the after-reading should force a GC: when the next test is likely to adopt it.

        Where the last two gaps between tests were not quiet (a fixture calls
        the service before each test), or readings are never kept, the next
        test reads afresh anyway; the after-reading then bounds the heap
        without a GC (see check.py) and forces one only if that bound is over
        budget. One noisy gap is not enough: a test that adopts a reading
        without a GC'd heap has to read the heap itself.
        """
        noisy = self._noisy.get(self.key(service), 0) >= _NOISY_GAPS
        return not self.fresh and service.pid is not None and not noisy

    def first_check(self, service: Service) -> bool:
        """Whether no test has been checked against this run of ``service`` yet; true once per run."""
        key = self.key(service)
        first = key not in self._checked
        self._checked.add(key)
        return first

    def remember(self, service: Service, verdict: Verdict) -> None:
        """Keep a passing test's after-reading for the next test; a failure's evidence fetches touched the service."""
        if not self.fresh and not verdict.failed:
            self._last[self.key(service)] = verdict.after

    @staticmethod
    def key(service: Service) -> str:
        return f"{service.pprof_url} {service.pid}"

    def pprof(self, service: Service) -> PprofClient:
        key = self.key(service)
        if key not in self._clients:
            self._clients[key] = PprofClient(service.pprof_url, service.request_timeout)
        return self._clients[key]

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()


def _nobody(*args: object) -> None:
    return None


@dataclass(frozen=True)
class Listeners:
    """Who hears of each reading and verdict: the plugin passes its hooks here, so this module needs no pytest."""

    reading: Callable[[Service, Snapshot, Phase], None] = _nobody
    verdict: Callable[[Service, Verdict], None] = _nobody


class _Watch:
    """The leak check of one service during one test."""

    def __init__(
        self, service: Service, budget: Budget, checking: bool, readers: Readers, listeners: Listeners
    ) -> None:
        self.service = service
        self.budget = budget
        self.pprof = readers.pprof(service)
        self.snapshotter = Snapshotter(self.pprof, service.pid, service.tmpdir)
        self.listeners = listeners
        self.check = LeakCheck(self.snapshotter, budget, on_reading=self._heard) if checking else None
        self.verdict: Verdict | None = None
        self.startup: Startup | None = None  # set on the first checked test after a start
        self._readers = readers

    def _heard(self, reading: Snapshot, phase: Phase) -> None:
        self.listeners.reading(self.service, reading, phase)

    def begin(self) -> None:
        if self.check is None:
            return
        readers = self._readers
        if readers.first_check(self.service):
            self.startup = self._wait_quiet()
        self.check.begin(readers.recall(self.service, self.budget, self.snapshotter))
        self.check.exact_after = readers.exact_after(self.service)
        if self.budget.steady and HEAP in self.budget.checked:
            self.heap_noise()

    def _wait_quiet(self) -> Startup:
        """Wait until the service's start-up is over, by the rule in :mod:`pytest_goleak.judge.startup`."""
        sockets = bool(self.budget.ignore_fds)

        def read() -> Activity:
            return Activity.of(self.snapshotter.take(PARTS, sockets=sockets), self.budget)

        service = self.service
        return wait_quiet(read, self._readers.startup_quiet, service.started_at, service.start_timeout)

    def _rendered(self, verdict: Verdict) -> str:
        """The failure text; on the first test after a start, with what the start may have to do with it."""
        text = render(verdict)
        if self.startup is None:
            return text + ignore_help(verdict)
        service = self.service
        # Probed only now, while the failure is reported: a clean run never pays for it.
        answering = None if service.ready_url else answering_ready_path(service.url, service.request_timeout)
        hint = self.startup.hint(service.name, service.start_timeout, service.ready_url, answering)
        # The lines that would ignore the leaked kind come last, where a reader copies them from.
        return text + "\n\n" + hint + ignore_help(verdict)

    def _judged(self, verdict: Verdict) -> Verdict:
        self.verdict = verdict
        self._readers.remember(self.service, verdict)
        return verdict

    def _announce(self, verdict: Verdict) -> Verdict:
        """The final verdict: kept, and told to the listeners."""
        self.verdict = verdict
        self.listeners.verdict(self.service, verdict)
        return verdict

    def steady_reading(self) -> Snapshot:
        """A reading of what this watch's budget checks, after one measured steady-state run."""
        return self.check_reading("steady")

    def heap_noise(self) -> int:
        """How much the live heap moves between readings of this service at rest (measured once)."""
        noise, key = self._readers.noise, Readers.key(self.service)
        if key not in noise:
            noise[key] = noise_floor([self.snapshotter.take() for _ in range(4)])
        return noise[key]

    def _failure(self, error: GoleakError | None = None) -> str:
        if not self.service.alive():
            return crash_text(self.service)
        assert error is not None
        return unreadable_text(self.service, error, "after")

    def finish(self) -> str | None:
        if self.check is None:
            return None
        if not self.service.alive():
            return self._failure()
        try:
            verdict = self._announce(self._judged(self.check.finish()))
        except GoleakError as exc:
            return self._failure(exc)
        return self._rendered(verdict) if verdict.failed else None

    def judge_steady(self, readings: list[Snapshot], rerun: Callable[[], object] = _nobody) -> str | None:
        """Steady-state verdict: a measure leaks only if it grew in every measured run.

        A heap leak too small for the sampler to have seen gets more runs (see :func:`sample_more`).
        """
        before, after = readings[0], readings[-1]
        growing = [t for t in trends(readings, self.budget, self.heap_noise()) if t.grows_every_run]
        verdict = judged(before, after, diff(before, after, self.budget), self.budget)
        verdict = self._judged(
            replace(verdict, violations=tuple(t.phrase() for t in growing), over=tuple(t.measure for t in growing))
        )
        if not growing:
            self._announce(verdict)
            return None
        try:
            verdict = gather_evidence(self.snapshotter, verdict)
            if HEAP in verdict.over and not names_the_leak(verdict):
                verdict = sample_more(verdict, rerun, lambda: self.check_reading("steady"))
            verdict = self._announce(verdict)
        except GoleakError as exc:
            return self._failure(exc)
        return self._rendered(verdict)

    def check_reading(self, phase: Phase) -> Snapshot:
        assert self.check is not None
        return self.check.take(phase)


class GoleakHandle:
    """What a test gets from the ``pytest_goleak`` fixture."""

    def __init__(
        self,
        service: Service,
        budget: Budget,
        checking: bool,
        readers: Readers,
        listeners: Listeners = Listeners(),
    ) -> None:
        self.service = service
        self.url = service.url
        self.budget = budget
        self._checking = checking
        self._readers = readers
        self.client = http.client(service.request_timeout, base_url=service.url)
        self._listeners = listeners
        self._watches = [_Watch(service, budget, checking, readers, listeners)]

    @property
    def checking(self) -> bool:
        return self._checking

    @property
    def verdict(self) -> Verdict | None:
        """The main service's verdict, once the test body has ended."""
        return self._watches[0].verdict

    def snapshot(self) -> Snapshot:
        """A reading of the service now: goroutines, live heap, fds, children, threads, temp files."""
        return self._watches[0].snapshotter.take(sockets=bool(self.budget.ignore_fds))

    def values(self) -> dict[str, int | None]:
        """Each measure of the service now, by name, counted as this test's budget counts it."""
        return values(self.snapshot(), self.budget)

    def watch(self, service: Service) -> None:
        """Check another service for leaks during this test too (see ``goleak_service_factory``)."""
        watch = _Watch(service, self.budget, self._checking, self._readers, self._listeners)
        watch.begin()
        self._watches.append(watch)

    def begin(self) -> None:
        self._watches[0].begin()

    def _combine(self, texts: list[str | None]) -> str | None:
        named = [
            f"[{watch.service.name}] {text}" if len(self._watches) > 1 else text
            for watch, text in zip(self._watches, texts, strict=True)
            if text
        ]
        return "\n\n".join(named) or None

    def finish(self) -> str | None:
        """Close the test's connections and judge every watched service; the failure text, or None."""
        self.client.close()
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
                assert watch.check is not None
                assert watch.check.before is not None
                series.append(watch.check.before)
        for run in range(1, warmup + repeat + 1):
            if run > 1:
                rerun()
            if run < warmup:
                continue
            for index, watch in enumerate(self._watches):
                try:
                    readings[index].append(watch.steady_reading())
                except GoleakError as exc:  # a dead service fails here too, and _failure says it died
                    self.client.close()
                    return self._combine([w._failure(exc) if w is watch else None for w in self._watches])
        # The client stays open while judging: a heap leak the sampler missed gets more runs of the test.
        # The readings were all taken with its connection open, so it is in none of their growth.
        try:
            return self._combine(
                [watch.judge_steady(series, rerun) for watch, series in zip(self._watches, readings, strict=True)]
            )
        finally:
            self.client.close()

    def close(self) -> None:
        self.client.close()


def crash_text(service: Service) -> str:
    """The report of a service that ended during the test, in its own words."""
    return f"goleak: {service.describe_crash()}"


def unreadable_text(service: Service, error: GoleakError, when: str) -> str:
    """The report of a service that could not be read; the service diagnoses (and acts) itself."""
    return f"goleak: {service.diagnose_unreadable(error, when)}"
