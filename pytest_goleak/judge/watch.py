"""One test's leak check of one service, as one sequence: :func:`check_one_test`.

The only module of ``judge/`` that talks to the service (through ``read/``)
and calls the hooks' listeners; everything it decides with is pure and lives
beside it. Rendering what it decided is ``report/``'s job.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, replace

from pytest_goleak.errors import GoleakError
from pytest_goleak.judge.budget import Budget
from pytest_goleak.judge.diff import diff
from pytest_goleak.judge.evidence import gather_evidence
from pytest_goleak.judge.measures import HEAP
from pytest_goleak.judge.reuse import KeptReadings, sees_gaps
from pytest_goleak.judge.settle import Reader, settle
from pytest_goleak.judge.startup import DEFAULT_QUIET, PARTS, Activity, Startup, wait_quiet
from pytest_goleak.judge.steady import names_the_leak, noise_floor, sample_more, trends
from pytest_goleak.judge.verdict import Phase, Verdict, judged, rejudged
from pytest_goleak.read.backend import PROC, Backend
from pytest_goleak.read.pprof import PprofClient
from pytest_goleak.read.snapshot import Snapshot, Snapshotter
from pytest_goleak.service.protocol import Service
from pytest_goleak.service.readiness import answering_ready_path


def _nobody(*args: object) -> None:
    return None


@dataclass(frozen=True)
class Listeners:
    """Who hears of each reading and verdict: the plugin passes its hooks here, so this package needs no pytest."""

    reading: Callable[[Service, Snapshot, Phase], None] = _nobody
    verdict: Callable[[Service, Verdict], None] = _nobody


@dataclass(frozen=True)
class Steady:
    """What a steady-state test hands the sequence after its runs: one reading after each measured run."""

    readings: list[Snapshot]  # the first is the reading the runs are measured from
    rerun: Callable[[], object]  # one more run of the test, for a heap leak the sampler has not seen yet


@dataclass(frozen=True)
class Outcome:
    """How one test's check of one service ended: a verdict, or the service's own words on why there is none."""

    verdict: Verdict | None = None
    problem: str | None = None  # the service ended or could not be read: its own diagnosis
    startup: Startup | None = None  # on the first checked test after a start: how the start-up wait ended
    ready_path: str | None = None  # a readiness path answering 2xx, probed only when that first test failed

    @property
    def failed(self) -> bool:
        return self.problem is not None or (self.verdict is not None and self.verdict.failed)


# The sequence yields its before-reading while the test runs, and is sent a Steady after a steady-state test.
CheckSequence = Generator[Snapshot, Steady | None, Outcome]


def check_one_test(service: Service, reader: Reader, runs: ServiceRuns, listeners: Listeners) -> CheckSequence:
    """One test's leak check of ``service`` by ``reader``'s budget, in order; the test runs at the ``yield``.

    Raises :class:`GoleakError` before the ``yield`` when no before-reading
    can be had; after it, a service that ended or could not be read is the
    outcome's ``problem``.
    """
    key, budget = runs.key(service), reader.budget
    startup = wait_out_startup(reader, service, runs.startup_quiet) if runs.first_check(key) else None
    before = reader.before(runs.kept.recall(key, budget, reader.snapshotter))
    exact = runs.kept.exact_after(key, sees_gaps(reader.snapshotter))
    if budget.steady and HEAP in budget.checked:
        runs.heap_noise(key, reader)  # measured at rest, before the test's first run

    steady = yield before  # the test runs: its other function-scoped fixtures, its body, their teardown

    crashed = ended(service)
    if crashed is not None:
        return Outcome(problem=crashed, startup=startup)
    try:
        if steady is None:
            verdict = settle(reader, before, exact)
        else:
            verdict = steady_verdict(steady.readings, budget, runs.heap_noise(key, reader))
        runs.kept.remember(key, verdict)
        if verdict.failed:
            verdict = gather_evidence(reader.snapshotter, verdict)
            # Ignoring goroutines by their creator can bring a test back within budget.
            verdict = rejudged(verdict) if steady is None else _sampled(verdict, steady, reader)
    except GoleakError as exc:
        return Outcome(problem=problem_of(service, exc, "after"), startup=startup)
    listeners.verdict(service, verdict)
    # Probed only for a failure's report: a clean run never pays for it.
    ready = startup is not None and verdict.failed and not service.ready_url
    return Outcome(verdict, startup=startup, ready_path=_answering(service) if ready else None)


def ended(service: Service) -> str | None:
    """How ``service`` ended during this test, if it did (the end then counts as reported); None while it runs."""
    return None if service.alive() else service.describe_crash()


def problem_of(service: Service, error: GoleakError, when: str) -> str:
    """Why ``service`` gave no reading ``when`` ("before" or "after" the test), in its own words.

    A service that ended says how; one that is alive diagnoses (and acts on) the error itself.
    """
    crashed = ended(service)
    return crashed if crashed is not None else service.diagnose_unreadable(error, when)


def wait_out_startup(reader: Reader, service: Service, quiet_for: float) -> Startup:
    """Wait until the service's start-up is over, by the rule in :mod:`pytest_goleak.judge.startup`."""
    sockets = reader.budget.describes_sockets

    def read() -> Activity:
        return Activity.of(reader.snapshotter.take(PARTS, sockets=sockets), reader.budget)

    return wait_quiet(read, quiet_for, service.started_at, service.start_timeout)


def steady_verdict(readings: list[Snapshot], budget: Budget, heap_noise: int) -> Verdict:
    """Steady-state verdict: a measure leaks only if it grew in every measured run (see steady.py)."""
    before, after = readings[0], readings[-1]
    growing = [t for t in trends(readings, budget, heap_noise) if t.grows_every_run]
    verdict = judged(before, after, diff(before, after, budget), budget)
    return replace(verdict, violations=tuple(t.phrase() for t in growing), over=tuple(t.measure for t in growing))


def _sampled(verdict: Verdict, steady: Steady, reader: Reader) -> Verdict:
    """A steady heap leak whose site the sampler missed gets more runs of the test (see steady.sample_more)."""
    if HEAP not in verdict.over or names_the_leak(verdict):
        return verdict
    return sample_more(verdict, steady.rerun, lambda: reader.take("steady"))


def _answering(service: Service) -> str | None:
    return answering_ready_path(service.url, service.request_timeout, unix_socket=service.unix_socket)


class ServiceRuns:
    """What outlives one test for each run of a service: its pprof client, kept reading, heap noise floor.

    One pprof client per run keeps one keep-alive connection for the whole
    session; a new connection per test would leave a winding-down server
    goroutine behind each time.
    """

    def __init__(self, fresh: bool = False, startup_quiet: float = DEFAULT_QUIET, backend: Backend = PROC) -> None:
        self.backend = backend  # how the services' processes are read (settings.py chose it)
        self.kept = KeptReadings(fresh)  # see reuse.py
        self.startup_quiet = startup_quiet  # goleak_startup_quiet: see startup.py
        self._clients: dict[str, PprofClient] = {}
        self._noise: dict[str, int] = {}
        self._checked: set[str] = set()

    @staticmethod
    def key(service: Service) -> str:
        return f"{service.pprof_url} {service.pid}"

    def reader(self, service: Service, budget: Budget, listeners: Listeners) -> Reader:
        """A reader of ``service`` for ``budget``, whose readings ``listeners`` hear of."""
        return Reader(
            self.snapshotter(service), budget, lambda reading, phase: listeners.reading(service, reading, phase)
        )

    def snapshotter(self, service: Service) -> Snapshotter:
        key = self.key(service)
        if key not in self._clients:
            self._clients[key] = PprofClient(service.pprof_url, service.request_timeout, service.unix_socket)
        return Snapshotter(self._clients[key], service.pid, service.tmpdir, self.backend)

    def first_check(self, key: str) -> bool:
        """Whether no test has been checked against this run yet; true once per run."""
        first = key not in self._checked
        self._checked.add(key)
        return first

    def heap_noise(self, key: str, reader: Reader) -> int:
        """How much the live heap moves between readings of this run at rest (measured once)."""
        if key not in self._noise:
            self._noise[key] = noise_floor([reader.snapshotter.take() for _ in range(4)])
        return self._noise[key]

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()
