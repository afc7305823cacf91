"""Faults: a crashed, frozen or garbage-speaking service never hangs the suite,
never hides the cause, and never leaves a process behind, however pytest ends."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
from verdicts import by_name

ROOT = Path(__file__).resolve().parents[2]


def _call_reports(pytester: pytest.Pytester) -> dict[str, pytest.TestReport]:
    reprec = pytester.inline_run()
    return by_name(reprec.getreports("pytest_runtest_logreport"))


def test_crash_mid_test_is_reported_with_the_panic_and_the_next_test_gets_a_fresh_service(
    pytester: pytest.Pytester, write_ini: Callable[..., None]
) -> None:
    write_ini()
    pytester.makepyfile(
        """
        import time

        PIDS = []

        def test_panics(pytest_goleak):
            PIDS.append(pytest_goleak.service.pid)
            pytest_goleak.client.get("/admin/crash", params={"mode": "panic"})
            time.sleep(0.3)

        def test_exits(pytest_goleak):
            PIDS.append(pytest_goleak.service.pid)
            pytest_goleak.client.get("/admin/crash", params={"mode": "exit", "code": 7})
            time.sleep(0.3)

        def test_killed(pytest_goleak):
            import os, signal
            PIDS.append(pytest_goleak.service.pid)
            os.kill(pytest_goleak.service.pid, signal.SIGKILL)
            time.sleep(0.1)

        def test_after(pytest_goleak):
            PIDS.append(pytest_goleak.service.pid)
            assert pytest_goleak.client.get("/healthz").text == "ok"
            assert len(set(PIDS)) == 4, PIDS
        """
    )
    reports = _call_reports(pytester)
    panic = reports["test_panics"].longreprtext
    assert panic.startswith("goleak: example_service exited with code 2 during this test")
    assert "panic: demo crash requested" in panic
    assert "goroutine " in panic and "main.crash" in panic  # the whole trace, not a cut-off tail
    assert reports["test_exits"].longreprtext.startswith("goleak: example_service exited with code 7")
    assert "demo exit requested: exiting with code 7" in reports["test_exits"].longreprtext
    assert reports["test_killed"].longreprtext.startswith("goleak: example_service was killed by SIGKILL")
    assert reports["test_after"].passed, reports["test_after"].longreprtext


def test_crash_during_steady_state_runs_is_reported(pytester: pytest.Pytester, write_ini: Callable[..., None]) -> None:
    write_ini()
    pytester.makepyfile(
        """
        import time
        import pytest

        RUNS = []

        @pytest.mark.goleak(repeat=3, warmup=1)
        def test_crashes_on_its_third_run(pytest_goleak):
            RUNS.append(1)
            if len(RUNS) == 3:
                pytest_goleak.client.get("/admin/crash", params={"mode": "panic"})
                time.sleep(0.3)

        def test_after(pytest_goleak):
            assert pytest_goleak.client.get("/healthz").text == "ok"
        """
    )
    reports = _call_reports(pytester)
    crash = reports["test_crashes_on_its_third_run"].longreprtext
    assert crash.startswith("goleak: example_service exited with code 2 during this test"), crash
    assert "panic: demo crash requested" in crash
    assert reports["test_after"].passed, reports["test_after"].longreprtext


def test_frozen_service_fails_fast_with_a_goroutine_dump(
    pytester: pytest.Pytester, write_ini: Callable[..., None]
) -> None:
    write_ini("goleak_request_timeout = 1\n")
    pytester.makepyfile(
        """
        import os, signal, time

        def test_freezes(pytest_goleak):
            pid = pytest_goleak.service.pid
            os.kill(pid, signal.SIGSTOP)
            # A stop takes effect as each thread next runs: until every thread is stopped, the service can
            # still answer. Wait for that (bounded), so that the after-reading meets a frozen service.
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and not all(
                open(f"/proc/{pid}/task/{tid}/stat").read().rsplit(")", 1)[1].split()[0] == "T"
                for tid in os.listdir(f"/proc/{pid}/task")
            ):
                time.sleep(0.001)

        def test_after(pytest_goleak):
            assert pytest_goleak.client.get("/healthz").text == "ok"
        """
    )
    start = time.monotonic()
    reports = _call_reports(pytester)
    assert time.monotonic() - start < 20
    frozen = reports["test_freezes"]
    assert frozen.failed and frozen.duration < 8
    text = frozen.longreprtext
    assert text.startswith("goleak: could not read the service after the test: service did not answer")
    assert "within 1s" in text
    assert "was killed after a SIGQUIT goroutine dump" in text
    assert "SIGQUIT: quit" in text
    # The dump is the service's own output: shown indented, so no line of it starts a line of the report.
    assert re.search(r"^    goroutine 1 (gp=\S+ m=\S+ )?\[", text, re.MULTILINE), text
    assert reports["test_after"].passed


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("html", "expected a goroutine profile (goroutine?debug=1), got: '<html>"),
        ("empty", "got an empty body"),
        ("truncated", "ends early: its records count 3 of the 5 goroutines"),
        ("garbage", "malformed record"),
        ("huge", "sent more than 32 MiB"),  # the goroutine profile's bound (MAX_GOROUTINE_TEXT)
        ("slow", "did not answer"),
    ],
)
def test_bad_profile_data_fails_the_test_clearly(
    pytester: pytest.Pytester, go_build: Callable[[str], Path], mode: str, message: str
) -> None:
    binary = go_build("tests/goapps/badpprof")
    pytester.makeini(
        f"[pytest]\ngoleak_binary = {binary}\ngoleak_args = -addr {{addr}} -mode {mode}\ngoleak_request_timeout = 1\n"
    )
    pytester.makepyfile("def test_x(pytest_goleak):\n    pass\n")
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*goleak: could not read the service before the test: *{message}*"])
    assert "INTERNALERROR" not in result.stdout.str()


def test_env_values_never_reach_reports(
    pytester: pytest.Pytester, write_ini: Callable[..., None], go_build: Callable[[str], Path]
) -> None:
    write_ini("goleak_env =\n    API_TOKEN=hunter2-secret\n", binary=go_build("tests/goapps/exitearly"))
    pytester.makepyfile("def test_x(pytest_goleak):\n    pass\n")
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*exitearly exited during start-up (exited with code 3)*"])
    assert "hunter2-secret" not in result.stdout.str() + result.stderr.str()


# -- no orphans, however pytest ends ------------------------------------------

ORPHAN_SUITE = """
import pathlib, time

def test_hold(pytest_goleak):
    child = (pytest_goleak.service.tmp / "child.pid").read_text()
    pathlib.Path("tmpdir").write_text(str(pytest_goleak.service.tmpdir))
    pathlib.Path("pids").write_text(f"{pytest_goleak.service.pid} {child}")
    time.sleep(float(pathlib.Path("hold").read_text()))
"""


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _wait_gone(pids: list[int], timeout: float = 5.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.05)
    return [pid for pid in pids if _alive(pid)]


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


# The portable lifecycle must hold without Linux's prctl: in its nested run, a call would end the service's start.
NO_PRCTL = """
import sys
import pytest_goleak.service.started as started

def _no_prctl(command, errors):
    return [sys.executable, "-c", "import os; os._exit(97)"]

started._with_prctl = _no_prctl
"""


@pytest.mark.parametrize("backend", ["proc", "portable"])
@pytest.mark.parametrize("ending", ["normal", "ctrl-c", "sigkill"])
def test_no_process_survives_pytest(tmp_path: Path, go_build: Callable[[str], Path], ending: str, backend: str) -> None:
    binary = go_build("tests/goapps/spawner")
    ini = f"[pytest]\ngoleak_binary = {binary}\ngoleak_args = -addr {{addr}} -data-dir {{tmp}}\n"
    (tmp_path / "pytest.ini").write_text(ini)
    (tmp_path / "test_hold.py").write_text(ORPHAN_SUITE)
    if backend == "portable":
        (tmp_path / "conftest.py").write_text(NO_PRCTL)
    (tmp_path / "hold").write_text("0" if ending == "normal" else "60")
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, "GOLEAK_BACKEND": backend},
        # As from a terminal: a suite run as a background job (CI scripts, `cmd &`) ignores SIGINT, and the
        # nested pytest would inherit that and never see the Ctrl-C.
        preexec_fn=_default_sigint,
    )
    try:
        pids_file = tmp_path / "pids"
        deadline = time.monotonic() + 60
        while not pids_file.exists() or len(pids_file.read_text().split()) < 2:
            assert proc.poll() is None or ending == "normal", proc.stdout.read().decode()  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the service never started"
            time.sleep(0.05)
        service, child = (int(pid) for pid in pids_file.read_text().split())
        if ending == "ctrl-c":
            os.killpg(proc.pid, signal.SIGINT)  # what a terminal sends to the foreground group
        elif ending == "sigkill":
            proc.kill()
        proc.wait(30)
        assert _wait_gone([service, child]) == [], f"survivors after a {ending} end of pytest"
        tmpdir = Path((tmp_path / "tmpdir").read_text())
        deadline = time.monotonic() + 5
        while tmpdir.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not tmpdir.exists(), f"the service's TMPDIR {tmpdir} outlived a {ending} end of pytest"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
