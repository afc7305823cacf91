"""The start-up wait's rule on scripted readings with a fake clock, and the hint it adds to a report: no Go."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest
from corefakes import IDLE, MAIN, PPROF_HANDLER, FakeTime, goroutine, process, profile, snapshot

from pytest_goleak.judge.budget import Budget
from pytest_goleak.judge.startup import Activity, Startup, wait_quiet
from pytest_goleak.report.hints import startup_hint

WORKER = goroutine("runtime.gopark", "main.worker")
STARTED_AT = 100.0  # FakeTime starts at 100.0: the service started just now


def idle(workers: int = 0, fds: int = 4) -> Activity:
    return Activity({"main.main": 1, **({"main.worker": workers} if workers else {})}, fds)


def scripted(readings: Sequence[Activity], time: FakeTime, takes: float = 0.0) -> Callable[[], Activity]:
    """A reading callable that hands out ``readings`` in order, each taking ``takes`` seconds of fake time."""
    left = list(readings)

    def read() -> Activity:
        assert left, "the wait asked for more readings than scripted"
        time.now += takes
        return left.pop(0)

    return read


def wait(readings: Sequence[Activity], time: FakeTime, quiet: float = 0.3, timeout: float = 10.0) -> Startup:
    return wait_quiet(scripted(readings, time), quiet, STARTED_AT, timeout, time.clock, time.sleep)


def test_a_quiet_service_costs_two_readings_and_one_pause() -> None:
    time = FakeTime()
    startup = wait([idle(), idle()], time)
    assert (startup.quiet, startup.readings, time.slept) == (True, 2, [0.3])
    assert startup.after_start == pytest.approx(0.3)


def test_each_change_seen_costs_one_more_reading_and_pause() -> None:
    time = FakeTime()
    startup = wait([idle(0), idle(1, fds=5), idle(3, fds=7), idle(3, fds=7)], time)
    assert (startup.quiet, startup.readings, time.slept) == (True, 4, [0.3, 0.3, 0.3])


@pytest.mark.parametrize(
    ("first", "second", "changes"),
    [
        (idle(2), idle(1), ("main.worker -1",)),  # a goroutine ending is a change too
        (idle(fds=4), idle(fds=5), ("fds +1",)),  # fds alone
        (idle(1, fds=4), idle(0, fds=3), ("main.worker -1", "fds -1")),
    ],
)
def test_any_difference_up_or_down_is_a_change(first: Activity, second: Activity, changes: tuple[str, ...]) -> None:
    assert second.changes_from(first) == changes
    time = FakeTime()
    assert wait([first, second, second], time).readings == 3


def test_fds_unknown_on_either_side_do_not_count_as_a_change() -> None:
    assert Activity({"main.main": 1}, None).changes_from(Activity({"main.main": 1}, 9)) == ()


def test_a_service_that_never_settles_is_waited_for_until_the_timeout_from_its_start() -> None:
    time = FakeTime()
    time.now = STARTED_AT + 1.0  # readiness took the first second of the start timeout
    readings = [idle(n, fds=4 + n) for n in range(20)]
    startup = wait(readings, time, timeout=3.0)
    assert not startup.quiet
    assert time.now <= STARTED_AT + 3.0
    assert sum(time.slept) == pytest.approx(1.8)  # six pauses fit in the 2 s left
    assert startup.changing == ("main.worker +1", "fds +1")
    assert startup.readings == 7


def test_a_first_test_long_after_the_start_still_gets_one_pause() -> None:
    time = FakeTime()
    time.now = STARTED_AT + 60.0  # far past the start timeout
    startup = wait([idle(), idle()], time, timeout=10.0)
    assert (startup.quiet, startup.readings) == (True, 2)


def test_time_spent_reading_counts_against_the_timeout() -> None:
    time = FakeTime()
    read = scripted([idle(n) for n in range(10)], time, takes=0.25)
    startup = wait_quiet(read, 0.3, STARTED_AT, 2.0, time.clock, time.sleep)
    assert not startup.quiet
    assert startup.readings == 4  # read, then pause and read three times: 1.9 s; a fourth pause would end past 2 s
    assert startup.after_start == pytest.approx(1.9)


def test_zero_turns_the_wait_off_without_a_reading() -> None:
    time = FakeTime()
    startup = wait([], time, quiet=0.0)
    assert (startup.quiet_for, startup.readings, time.slept) == (0.0, 0, [])


def test_activity_counts_goroutines_by_identity_and_fds_as_the_budget_does() -> None:
    reading = snapshot(profile((1, MAIN), (1, PPROF_HANDLER), (2, WORKER)), process=process())
    assert Activity.of(reading, Budget()) == Activity({"main.main": 1, "main.worker": 2}, 4)
    ignoring = Budget(ignore=("main.worker",), ignore_fds=("pipe:*",))
    assert Activity.of(reading, ignoring) == Activity({"main.main": 1}, 2)
    assert Activity.of(snapshot(IDLE), Budget()).fds is None  # no local PID


def _hint(startup: Startup, ready_url: str | None = None, answering: str | None = None) -> str:
    return startup_hint(startup, "warming", 10.0, ready_url, answering)


def test_hint_says_the_service_had_just_started_and_how_the_wait_ended() -> None:
    quiet = _hint(Startup(0.3, True, 0.62, 2))
    assert quiet.startswith(
        "warming had just started (0.62s before this test): this was the first test after its start"
    )
    assert "It was quiet before this test: goroutines and fds unchanged over 0.3s (goleak_startup_quiet)." in quiet
    never = _hint(Startup(0.3, False, 10.0, 30, ("main.worker +1", "fds +1")))
    assert (
        "It never became quiet: still changing when goleak_start_timeout (10s) ran out:\n  main.worker +1, fds +1."
        in never
    )
    assert "The start-up wait is off (goleak_startup_quiet = 0)." in _hint(Startup(0.0, False, 0.05))


def test_hint_names_the_ready_url_line_when_a_common_path_answers() -> None:
    text = _hint(Startup(0.0, False, 0.05), answering="/-/ready")
    assert text.splitlines()[-1] == "      goleak_ready_url = http://{addr}/-/ready"
    assert "warm-up" not in text


def test_hint_suggests_a_warm_up_fixture_otherwise() -> None:
    text = _hint(Startup(0.3, True, 0.62, 2))
    assert "Give the service a warm-up: a session-scoped autouse fixture" in text
    assert '(see "Waiting out start-up" in pytest-goleak\'s README).' in text
    configured = _hint(Startup(0.3, True, 0.62, 2), ready_url="http://127.0.0.1:1/ready", answering="/-/ready")
    assert "It had answered goleak_ready_url (http://127.0.0.1:1/ready) before this test." in configured
    assert "Give the service a warm-up" in configured
    assert "goleak_ready_url = http://{addr}" not in configured
