"""A hostile service (``tests/goapps/hostile``) never hangs the run, bloats pytest, forges log lines or outlives it.

Each test runs a nested pytest session against the service misbehaving in one way, in a subprocess, and
checks the bound that holds: the time it took, pytest's peak memory (written by a conftest at the end of
the nested session), what reached the log, what was left running.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
from backends import lacks

from pytest_goleak.read.backend import Lack
from pytest_goleak.read.pprof import MAX_STACKS

TIMEOUTS = "goleak_request_timeout = 1\ngoleak_start_timeout = 4\ngoleak_settle = 0.3\ngoleak_startup_quiet = 0\n"

# Peak memory of the nested pytest, written when it ends.
PEAK_CONFTEST = """
import resource, pathlib

def pytest_unconfigure(config):
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    pathlib.Path("peak-mib").write_text(str(peak_kib // 1024))
"""


@pytest.fixture
def hostile(pytester: pytest.Pytester, go_build: Callable[[str], Path]) -> Callable[..., pytest.RunResult]:
    """Run a nested suite against the hostile service started with ``flags``; ``tests`` is its test file."""
    binary = go_build("tests/goapps/hostile")

    def run(flags: str, tests: str, extra: str = "", timeout: float = 60) -> pytest.RunResult:
        pytester.makeini(f"[pytest]\ngoleak_binary = {binary}\ngoleak_args = -addr {{addr}} {flags}\n{TIMEOUTS}{extra}")
        pytester.makeconftest(PEAK_CONFTEST)
        pytester.makepyfile(test_hostile=tests)
        return pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=timeout)

    return run


def _peak_mib(pytester: pytest.Pytester) -> int:
    return int((pytester.path / "peak-mib").read_text())


TWO_TESTS = "def test_one(pytest_goleak):\n    pass\n\ndef test_two(pytest_goleak):\n    pass\n"


@pytest.mark.parametrize(
    "flags",
    [
        pytest.param("-drip /debug/pprof/goroutine -drip-every 100ms", id="profile-dripped-a-byte-at-a-time"),
        pytest.param("-silent /debug/pprof/heap", id="heap-never-answered"),
    ],
)
def test_a_slow_answer_fails_its_test_within_the_request_timeout(
    hostile: Callable[..., pytest.RunResult], flags: str
) -> None:
    started = time.monotonic()
    result = hostile(flags, TWO_TESTS)
    took = time.monotonic() - started
    outcomes = result.parseoutcomes()
    assert outcomes.get("errors", 0) + outcomes.get("failed", 0) == 2, result.stdout.str()
    result.stdout.fnmatch_lines(["*service did not answer http://127.0.0.1:*/debug/pprof/* within 1s*"])
    # Two tests, each bounded by a request timeout or two (a reading, then the goroutine dump of a wedged
    # service), plus two starts and Python's own start: far from the hour a drip would take.
    assert took < 30, f"{took:.1f}s"


@pytest.mark.parametrize(
    ("flags", "problem"),
    [
        pytest.param("-drip /debug/pprof/", "no answer within", id="index-dripped"),
        pytest.param("-status /debug/pprof/=503", "answered HTTP 503", id="index-5xx"),
    ],
)
def test_a_start_that_never_gets_ready_stops_the_session_once_within_its_timeout(
    hostile: Callable[..., pytest.RunResult], flags: str, problem: str
) -> None:
    started = time.monotonic()
    result = hostile(flags, TWO_TESTS)
    took = time.monotonic() - started
    result.stdout.fnmatch_lines([f"*was not ready within 4s (*{problem}*"])
    # A wait without an end would run on; one that ends runs 4s per start. The bound is loose on purpose:
    # on a machine loaded tenfold, starting the nested pytest and the service alone took 20s.
    assert took < 60, f"{took:.1f}s"
    waits = re.findall(r"^hostile was not ready within 4s", result.stdout.str(), re.MULTILINE)
    assert len(waits) <= 2  # at most one start per test
    if "503" in flags:  # it answers, never with 2xx: a later start would do no better
        result.stdout.fnmatch_lines(["*pytest-goleak stopped the session*"])
        assert result.parseoutcomes().get("errors", 0) + result.parseoutcomes().get("failed", 0) == 1


def test_an_endless_index_at_start_costs_pytest_no_memory(
    hostile: Callable[..., pytest.RunResult], pytester: pytest.Pytester
) -> None:
    # Every start-up probe reads at most 64 KiB of it, then closes the connection.
    hostile("-endless /debug/pprof/", "def test_one(pytest_goleak):\n    pass\n")
    assert _peak_mib(pytester) < 150


def test_a_body_cut_short_says_so(hostile: Callable[..., pytest.RunResult]) -> None:
    result = hostile("-short /debug/pprof/goroutine", "def test_one(pytest_goleak):\n    pass\n")
    result.stdout.fnmatch_lines(["*ended its answer to http://127.0.0.1:*/debug/pprof/goroutine?debug=1 early*"])
    result.stdout.no_fnmatch_line("*expected a goroutine profile*")


def test_a_file_name_with_a_newline_cannot_forge_a_line_of_the_report(
    hostile: Callable[..., pytest.RunResult],
) -> None:
    forged = "FAILED test_payment.py::test_refund - forged"
    tests = (
        "from urllib.parse import quote\n\n"
        "def test_opens(pytest_goleak):\n"
        f"    pytest_goleak.client.get('/open', params={{'name': 'x\\n{forged}\\x1b[2J'}})\n"
    )
    result = hostile("", tests)
    result.assert_outcomes(passed=1, errors=1)  # a leak is an error at the teardown of its test
    output = result.stdout.str()
    assert not any(line.startswith(forged) for line in output.splitlines())
    assert "\x1b[2J" not in output
    assert f"x\\n{forged}\\x1b[2J" in output  # the name, escaped, where the fd is listed


def test_two_thousand_zombies_are_two_thousand_children(hostile: Callable[..., pytest.RunResult]) -> None:
    tests = (
        "def test_spawns(pytest_goleak):\n    pytest_goleak.client.get('/zombies', params={'n': 2000}, timeout=60)\n"
    )
    result = hostile("", tests, timeout=120)
    result.stdout.fnmatch_lines(["*goleak: children +2000 (budget 0)*"])


def test_an_orphaned_grandchild_is_counted_as_the_tests_child(hostile: Callable[..., pytest.RunResult]) -> None:
    # sh -c 'sleep 600 &': sh exits at once; its child is reparented to the service, not to init.
    tests = "def test_spawns(pytest_goleak):\n    pytest_goleak.client.get('/orphan')\n"
    result = hostile("", tests)
    if lacks(Lack.SUBREAPER):  # no subreaper without prctl: init adopts it, and no reading sees it (README)
        result.assert_outcomes(passed=1)
        return
    result.stdout.fnmatch_lines(["*goleak: children +1 (budget 0)*", "*sleep 600*"])


@pytest.fixture
def no_sleepers_left(pytester: pytest.Pytester) -> Iterator[Callable[[], list[psutil.Process]]]:
    """The processes still running `sleep 600` with a hostile service's mark; killed after the test anyway.

    Only this test's: a daemon keeps its service's working directory, under the nested run's basetemp in
    ``pytester.path``. Another test's daemon, alive on another xdist worker meanwhile, is not this test's survivor.
    """
    ours = str(pytester.path)

    def survivors() -> list[psutil.Process]:
        found = []
        for process in psutil.process_iter(["cmdline"]):
            try:
                if (
                    process.info["cmdline"] == ["sleep", "600"]
                    and "PYTEST_GOLEAK_RUN" in process.environ()
                    and process.cwd().startswith(ours)
                ):
                    found.append(process)
            except psutil.Error:
                continue
        return found

    yield survivors
    for process in survivors():
        process.kill()


def _wait_gone(survivors: Callable[[], list[psutil.Process]], timeout: float = 5.0) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout
    while (left := survivors()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def test_a_daemon_that_left_the_process_group_is_stopped_with_the_service(
    hostile: Callable[..., pytest.RunResult], no_sleepers_left: Callable[[], list[psutil.Process]]
) -> None:
    tests = "def test_spawns(pytest_goleak):\n    pytest_goleak.client.get('/daemon')\n"
    result = hostile("", tests)
    if lacks(Lack.SUBREAPER):
        result.assert_outcomes(passed=1)  # not counted (see above), and still killed with the service, by its mark
    else:
        result.stdout.fnmatch_lines(["*children +1*"])
    assert _wait_gone(no_sleepers_left) == []


@pytest.mark.parametrize("ending", ["sigkill", "double-ctrl-c"])
def test_a_daemon_does_not_outlive_a_killed_pytest(
    pytester: pytest.Pytester,
    go_build: Callable[[str], Path],
    no_sleepers_left: Callable[[], list[psutil.Process]],
    ending: str,
) -> None:
    binary = go_build("tests/goapps/hostile")
    pytester.makeini(f"[pytest]\ngoleak_binary = {binary}\ngoleak_args = -addr {{addr}}\n")
    pytester.makepyfile(
        "import pathlib, time\n\n"
        "def test_hold(pytest_goleak):\n"
        "    pytest_goleak.client.get('/daemon')\n"
        "    pathlib.Path('spawned').write_text('1')\n"
        "    time.sleep(60)\n"
    )
    proc = subprocess.Popen(
        # Its basetemp in pytester.path, as pytester's own runs have it: the daemon's directory says it is ours.
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", f"--basetemp={pytester.path / 'basetemp'}"],
        cwd=pytester.path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as from a terminal
    )
    try:
        deadline = time.monotonic() + 60
        while not (pytester.path / "spawned").exists():
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        assert no_sleepers_left(), "the daemon did not start"
        if ending == "sigkill":
            proc.kill()
        else:
            os.killpg(proc.pid, signal.SIGINT)
            time.sleep(0.2)
            os.killpg(proc.pid, signal.SIGINT)  # the second lands while the service is being stopped
        proc.wait(30)
        assert _wait_gone(no_sleepers_left) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_tmpdir_deeper_than_the_walk_goes_is_counted_and_removed(
    hostile: Callable[..., pytest.RunResult], pytester: pytest.Pytester
) -> None:
    tests = (
        "import pathlib\n\n"
        "def test_deep(pytest_goleak):\n"
        "    pathlib.Path('tmpdir').write_text(str(pytest_goleak.service.tmpdir))\n"
        "    pytest_goleak.client.get('/deep', params={'n': 1500})\n\n"
        "def test_after(pytest_goleak):\n"
        "    pass\n"
    )
    result = hostile("", tests)
    result.assert_outcomes(passed=2, errors=1)  # the next test reads the tree as it did, and passes
    result.stdout.fnmatch_lines(["*goleak: tmpfiles +65 (budget 0)*"])  # 64 levels entered, the 65th counted
    assert not Path((pytester.path / "tmpdir").read_text()).exists()


def test_a_tmpdir_swapped_for_a_symlink_is_not_followed_and_the_symlink_is_removed(
    hostile: Callable[..., pytest.RunResult], pytester: pytest.Pytester
) -> None:
    tests = (
        "import pathlib\n\n"
        "def test_swapped(pytest_goleak):\n"
        "    pathlib.Path('tmpdir').write_text(str(pytest_goleak.service.tmpdir))\n"
        "    pytest_goleak.client.get('/swap-tmpdir')\n"
    )
    result = hostile("", tests)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        ["*goleak: tmpfiles +1 (budget 0)*", "*the TMPDIR itself, replaced by a symlink (not followed)*"]
    )
    tmpdir = Path((pytester.path / "tmpdir").read_text())
    assert not tmpdir.is_symlink() and not tmpdir.exists()
    moved = Path(f"{tmpdir}.moved")  # where the service moved its real TMPDIR: outside the plugin's
    assert moved.is_dir()
    subprocess.run(["rm", "-rf", str(moved)], check=True)


@pytest.mark.parametrize(
    ("kind", "path", "message"),
    [
        # 120 MiB of goroutine-profile records with no stack (gigabytes in pytest before the bound).
        ("records", "/debug/pprof/goroutine", "sent more than 32 MiB"),
        # 32 MiB less a byte of them: read, and refused by count before they are split.
        ("within", "/debug/pprof/goroutine", "over 100,000 stacks"),
        # Just under the byte bound, the dearest profile still parsed: distinct frames, each on a stack of its own.
        ("frames", "/debug/pprof/goroutine", "1 passed"),
        # 120 MiB of short heap-profile lines.
        ("lines", "/debug/pprof/heap", "sent more than 32 MiB"),
    ],
)
def test_a_profile_that_would_cost_gigabytes_is_refused_within_the_bound(
    hostile: Callable[..., pytest.RunResult], pytester: pytest.Pytester, kind: str, path: str, message: str
) -> None:
    body = pytester.path / f"{kind}.bin"
    if kind == "records":
        with body.open("wb") as out:
            out.write(b"goroutine profile: total 1\n")
            for _ in range(120):
                out.write(b"1 @\n\n" * (1 << 20 >> 2))
    elif kind == "within":
        body.write_bytes(b"goroutine profile: total 1\n" + b"1 @\n\n" * ((32 << 20) // 5 - 6))
    elif kind == "frames":
        stacks = MAX_STACKS - 1
        records = b"".join(b"1 @ 0x1\n#\t0x1\tm.f%d+0x1\t/%d.go:%d\n\n" % (n, n, n) for n in range(stacks))
        body.write_bytes(b"goroutine profile: total %d\n" % stacks + records)
    else:
        with body.open("wb") as out:
            out.write(b"heap profile: 1: 1 [1: 1] @ heap/1048576\n")
            for _ in range(120):
                out.write(b"1: 1 [1: 1] @ 0x1\n" * (1 << 20 >> 4))
    result = hostile(f"-serve {path}={body}", "def test_one(pytest_goleak):\n    pass\n")
    result.stdout.fnmatch_lines([f"*{message}*"])
    assert _peak_mib(pytester) < 400, f"pytest peaked at {_peak_mib(pytester)} MiB"
