"""``check_one_test``, the sequence of one test, run directly against the real example service.

The plugin drives the same generator from its fixture and its ``pytest_runtest_call`` wrapper; here the
test is the code between ``next()`` and ``send()``, so each step of the sequence can be watched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from pytest_goleak.errors import GoleakError
from pytest_goleak.judge.budget import Budget
from pytest_goleak.judge.verdict import Phase, Verdict
from pytest_goleak.judge.watch import Listeners, Outcome, ServiceRuns, check_one_test
from pytest_goleak.read.snapshot import Snapshot
from pytest_goleak.service.config import ServiceConfig
from pytest_goleak.service.protocol import Service
from pytest_goleak.service.started import GoService

Heard = list[tuple[str, Phase | bool]]


@pytest.fixture
def service(example_binary: Path, tmp_path: Path) -> Iterator[GoService]:
    config = ServiceConfig(binary=example_binary, args="-addr {addr} -data-dir {tmp}")
    started = GoService(config, example_binary, tmp_path / "svc")
    started.start()
    yield started
    started.stop()


def _listeners(heard: Heard) -> Listeners:
    def reading(service: Service, snapshot: Snapshot, phase: Phase) -> None:
        heard.append(("reading", phase))

    def verdict(service: Service, verdict: Verdict) -> None:
        heard.append(("verdict", verdict.failed))

    return Listeners(reading, verdict)


def _run(service: GoService, runs: ServiceRuns, body: Callable[[], object], heard: Heard, **budget: object) -> Outcome:
    reader = runs.reader(service, Budget().updated(budget, lambda name: name), _listeners(heard))
    sequence = check_one_test(service, reader, runs, _listeners(heard))
    before = next(sequence)
    assert isinstance(before, Snapshot)
    body()
    with pytest.raises(StopIteration) as done:
        sequence.send(None)
    outcome = done.value.value
    assert isinstance(outcome, Outcome)
    return outcome


def _get(service: GoService, path: str) -> Callable[[], object]:
    def call() -> object:
        with httpx.Client(base_url=service.url, trust_env=False, timeout=10) as client:
            return client.get(path).raise_for_status()

    return call


def test_a_clean_test_then_one_in_a_row_adopts_the_after_reading(service: GoService) -> None:
    runs, heard = ServiceRuns(startup_quiet=0.05), []
    first = _run(service, runs, _get(service, "/api/products"), heard)
    assert first.verdict is not None and not first.failed
    assert first.startup is not None  # the first test after a start waits it out
    # A settle retake may wait out the server side of the client's connection, closing.
    assert heard[:2] == [("reading", "before"), ("reading", "after")] and heard[-1] == ("verdict", False)
    assert set(heard[2:-1]) <= {("reading", "settle")}
    # Nothing touches the service between the tests. Under load its start-up may not have gone quiet, and its own
    # work then touches a gap: the next test rightly reads afresh. So a few tests in a row may pass before one adopts.
    previous = first
    for _ in range(5):
        heard.clear()
        second = _run(service, runs, lambda: None, heard)
        if ("reading", "before") not in heard:
            break
        previous = second
    assert second.startup is None
    assert ("reading", "before") not in heard  # the kept reading stood as the before-reading
    assert heard[0] == ("reading", "after") and heard[-1] == ("verdict", False)
    assert second.verdict is not None and previous.verdict is not None
    assert second.verdict.before is previous.verdict.after


def test_a_leak_fails_with_its_evidence_and_its_reading_is_not_kept(service: GoService) -> None:
    runs, heard = ServiceRuns(startup_quiet=0), []
    outcome = _run(service, runs, _get(service, "/leaky/chan-send"), heard, settle=0.3)
    verdict = outcome.verdict
    assert verdict is not None and outcome.failed
    assert verdict.violations == ("1 goroutine leaked (budget 0)",)
    assert [group.identity for group in verdict.leaked_groups] == ["main.(*PriceService).fetchQuote"]
    assert heard[-1] == ("verdict", True)
    heard.clear()
    _run(service, runs, lambda: None, heard)
    assert heard[0] == ("reading", "before")  # a failure's evidence touched the service: read afresh


def test_a_service_that_dies_during_the_test_is_the_outcome_not_an_error(service: GoService) -> None:
    runs, heard = ServiceRuns(startup_quiet=0), []

    def crash() -> None:
        try:
            _get(service, "/admin/crash?mode=exit")()
        except httpx.HTTPError:
            pass  # it may end before it answers
        assert service.wait_exit(10) is not None

    outcome = _run(service, runs, crash, heard)
    assert outcome.verdict is None and outcome.problem is not None and outcome.failed
    assert ("verdict", True) not in heard and ("verdict", False) not in heard


def test_no_before_reading_raises_before_the_test_runs(service: GoService) -> None:
    runs = ServiceRuns(startup_quiet=0)
    service.stop()
    sequence = check_one_test(service, runs.reader(service, Budget(), Listeners()), runs, Listeners())
    with pytest.raises(GoleakError):
        next(sequence)
