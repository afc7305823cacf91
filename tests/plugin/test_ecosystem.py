"""Fitting the ecosystem: xdist, JUnit XML, the terminal summary and header, artifacts, attach mode, two services."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_goleak.report.artifacts import safe_name
from pytest_goleak.service.config import ServiceConfig
from pytest_goleak.service.started import GoService

MIXED = """
import pytest

@pytest.mark.parametrize("route", ["healthz", "fixed/chan-send", "leaky/chan-send", "leaky/open", "fixed/open",
                                   "leaky/cache?kb=1536", "work", "leaky/exec", "fixed/exec"])
def test_route(pytest_goleak, route):
    assert pytest_goleak.client.get("/" + route).status_code == 200
"""
EXPECTED_FAILURES = {"leaky/chan-send", "leaky/open", "leaky/cache?kb=1536", "leaky/exec"}


def _junit(path: Path) -> dict[str, ET.Element]:
    cases = ET.parse(path).getroot().iter("testcase")
    return {case.get("name", "").split("[", 1)[1].rstrip("]"): case for case in cases}


def test_xdist_gives_the_same_verdicts_as_one_process(
    pytester: pytest.Pytester, write_ini: Callable[..., None]
) -> None:
    write_ini()
    pytester.makepyfile(test_mixed=MIXED)
    verdicts = {}
    for label, args in [("serial", ["-p", "no:xdist"]), ("xdist", ["-n", "2"])]:
        xml = pytester.path / f"{label}.xml"
        result = pytester.runpytest_subprocess(*args, f"--junitxml={xml}")
        assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
        # A leak is an error at the teardown of its test (the check spans the test's fixtures).
        verdicts[label] = {route: case.find("error") is not None for route, case in _junit(xml).items()}
    assert {route for route, failed in verdicts["serial"].items() if failed} == EXPECTED_FAILURES
    assert verdicts["xdist"] == verdicts["serial"]
    # Each worker ran its own service: the summary on the controller covers both.
    result.stdout.fnmatch_lines(["*= goleak =*", "9 tests checked, 4 leaked"])


def test_junit_xml_carries_deltas_and_the_report(pytester: pytest.Pytester, write_ini: Callable[..., None]) -> None:
    write_ini()
    pytester.makepyfile(test_mixed=MIXED)
    xml = pytester.path / "out.xml"
    pytester.runpytest(f"--junitxml={xml}")
    cases = _junit(xml)
    leaky = cases["leaky/chan-send"]
    properties = {p.get("name"): p.get("value") for p in leaky.iter("property")}
    assert properties["goroutines_leaked"] == "1"
    assert {"heap_delta_bytes", "fds_delta", "children_delta", "threads_delta", "goleak_failure"} <= set(properties)
    failure = leaky.find("error")  # at the test's teardown, in the test's own testcase
    assert failure is not None
    assert "goleak: 1 goroutine leaked (budget 0)" in failure.get("message", "").splitlines()[0]
    assert "main.(*PriceService).fetchQuote" in (failure.text or "")
    clean = {p.get("name"): p.get("value") for p in cases["healthz"].iter("property")}
    assert clean["goroutines_leaked"] == "0" and cases["healthz"].find("error") is None
    opened = {p.get("name"): p.get("value") for p in cases["leaky/open"].iter("property")}
    assert opened["fds_delta"] == "1" and properties["fds_delta"] == "0"


def test_terminal_summary_follows_verbosity_and_can_be_hidden(
    pytester: pytest.Pytester, write_ini: Callable[..., None]
) -> None:
    write_ini()
    pytester.makepyfile(test_mixed=MIXED)
    result = pytester.runpytest()
    result.stdout.fnmatch_lines(
        [
            "*= goleak =*",
            "9 tests checked, 4 leaked",
            "LEAK test_mixed.py::test_route[[]leaky/chan-send[]]: 1 goroutine leaked (budget 0)",
            "largest growth in one test:",
            "  heap +1.5 MiB  test_mixed.py::test_route[[]leaky/cache?kb=1536[]]",
        ]
    )
    quiet = pytester.runpytest("-q")
    quiet.stdout.fnmatch_lines(
        ["*= goleak =*", "9 tests checked, 4 leaked", "LEAK test_mixed.py::test_route[[]leaky/chan-send[]]:*"]
    )
    assert "largest growth" not in quiet.stdout.str()  # -q keeps the leaks, not the charts
    hidden = pytester.runpytest("--no-goleak-summary")
    assert "= goleak =" not in hidden.stdout.str()


def test_report_header_names_service_go_version_and_budgets(
    pytester: pytest.Pytester, write_ini: Callable[..., None], example_binary: Path
) -> None:
    write_ini("goleak_heap = 4MiB\n")
    pytester.makepyfile("def test_x(): pass\n")
    result = pytester.runpytest()
    result.stdout.fnmatch_lines(
        [
            f"goleak: service {example_binary.name} (binary {example_binary}, go1.*)",
            "goleak: budgets per test: goroutines 0, heap 4.0 MiB, fds 0, children 0, threads unchecked, tmpfiles 0,"
            " offheap 8.0 MiB; settle 0.3s",
        ]
    )


def test_artifacts_open_in_go_tool_pprof(pytester: pytest.Pytester, write_ini: Callable[..., None]) -> None:
    write_ini()
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.parametrize("odd", ["a/b::c [x] ../..", "plain"])
        def test_leak(pytest_goleak, odd):
            pytest_goleak.client.get("/leaky/cache", params={"kb": 8192})  # big enough to be sampled surely
            pytest_goleak.client.get("/leaky/chan-send")
        """
    )
    out = pytester.path / "artifacts"
    result = pytester.runpytest("--goleak-artifacts", str(out))
    result.assert_outcomes(passed=2, errors=2)
    folders = sorted(p for p in out.iterdir() if p.is_dir())
    assert len(folders) == 2 and all(folder.parent == out for folder in folders)
    for folder in folders:
        names = {p.name for p in folder.iterdir()}
        assert {"report.txt", "service.log", "goroutines-before.pb.gz", "goroutines-after.pb.gz"} <= names
        assert {"heap-before.txt", "heap-after.txt", "goroutines-dump.txt"} <= names
        assert "main.(*PriceService).fetchQuote" in (folder / "goroutines-dump.txt").read_text()
    text = result.stdout.str()
    assert f"artifacts: {folders[0]}" in text or f"artifacts: {folders[1]}" in text
    # On CI (CI=true) pytest repeats whole failure messages in its short summary: count each command once.
    commands = sorted({line.strip() for line in text.splitlines() if line.strip().startswith("go tool pprof")})
    assert len(commands) == 4
    goroutine_command = next(command for command in commands if "goroutines-before" in command)
    heap_command = next(command for command in commands if "heap-before" in command)
    if shutil.which("go") is None:
        pytest.skip("go tool pprof needs Go on PATH")
    goroutines = subprocess.run(goroutine_command.split(), capture_output=True, text=True, timeout=120)
    assert goroutines.returncode == 0, goroutines.stderr
    assert "main.(*PriceService).fetchQuote" in goroutines.stdout
    heap = subprocess.run(heap_command.split(), capture_output=True, text=True, timeout=120)
    assert heap.returncode == 0, heap.stderr
    assert "main.renderPage" in heap.stdout or "main.cachePageLeaky" in heap.stdout


def test_the_goroutine_diff_command_counts_what_the_verdict_calls_leaked(
    pytester: pytest.Pytester, write_ini: Callable[..., None]
) -> None:
    """The saved profiles leave out the plugin's own goroutines and ignored ones, as the verdict does."""
    if shutil.which("go") is None:
        pytest.skip("go tool pprof needs Go on PATH")
    write_ini()
    pytester.makepyfile(
        """
        import pytest

        def test_one(pytest_goleak):
            pytest_goleak.client.get("/leaky/chan-send")

        def test_three(pytest_goleak):
            pytest_goleak.client.get("/leaky/chan-send", params={"n": 3})

        # Its client's readLoop and the server's side leak too; the writeLoop is ignored.
        @pytest.mark.goleak(ignore=["net/http.(*persistConn).writeLoop"], fds=10)
        def test_ignored_one_left_out(pytest_goleak):
            pytest_goleak.client.get("/leaky/http-body")
        """
    )
    out = pytester.path / "artifacts"
    result = pytester.runpytest("--goleak-artifacts", str(out))
    result.assert_outcomes(passed=3, errors=3)
    printed = {line.strip() for line in result.stdout.lines if "goroutines-before.pb.gz" in line}
    folders = sorted(p for p in out.iterdir() if p.is_dir())
    assert len(folders) == 3 and len(printed) == 3
    for folder in folders:
        headline = (folder / "report.txt").read_text().splitlines()[0]
        leaked = re.match(r"goleak: (\d+) goroutines? leaked", headline)
        assert leaked, headline
        (command,) = [line for line in printed if f"{folder}/goroutines-before" in line]
        done = subprocess.run(shlex.split(command), capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        # With -diff_base, the nodes shown account for the difference: after minus before.
        shown = re.search(r"Showing nodes accounting for (-?\d+),", done.stdout)
        assert shown, done.stdout
        assert int(shown.group(1)) == int(leaked.group(1)), f"{headline}\n{done.stdout}"


@pytest.mark.parametrize("test_id", ["t.py::test[a/b]", "../../etc/passwd", "x::y [1 2]", "..", "a" * 500, ""])
def test_artifact_names_stay_inside_their_directory(tmp_path: Path, test_id: str) -> None:
    name = safe_name(test_id)
    target = (tmp_path / name).resolve()
    assert target.parent == tmp_path.resolve()
    assert len(name) < 100 and name not in (".", "..")
    assert safe_name(test_id + "x") != name


@pytest.fixture
def outside_service(example_binary: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    """An example service the test starts itself, as docker compose or a port-forward would."""
    service = GoService(
        ServiceConfig(binary=example_binary, args="-addr {addr} -data-dir {tmp}"), example_binary, tmp_path
    )
    service.start()
    yield service
    service.stop()


ATTACHED = """
def test_goroutine_leak(pytest_goleak):
    pytest_goleak.client.get("/leaky/chan-send")

def test_fd_leak(pytest_goleak):
    pytest_goleak.client.get("/leaky/open")

def test_clean(pytest_goleak):
    pytest_goleak.client.get("/healthz")
"""


@pytest.mark.parametrize("with_pid", [False, True])
def test_attach_mode_measures_what_it_can_reach(
    pytester: pytest.Pytester, outside_service: GoService, with_pid: bool
) -> None:  # type: ignore[no-untyped-def]
    pid = f"goleak_attach_pid = {outside_service.pid}\n" if with_pid else ""
    pytester.makeini(f"[pytest]\ngoleak_attach_url = {outside_service.url}\n{pid}goleak_settle = 0.3\n")
    pytester.makepyfile(test_attached=ATTACHED)
    result = pytester.runpytest("-rA")
    if with_pid:
        result.assert_outcomes(passed=3, errors=2)
        result.stdout.fnmatch_lines(
            [f"goleak: attached to {outside_service.url}", "*test_fd_leak - Failed: goleak: fds +1*"]
        )
    else:
        # Without a local PID there are no fds to read: said in the header, not guessed.
        result.assert_outcomes(passed=3, errors=1)
        result.stdout.fnmatch_lines(
            [f"goleak: attached to {outside_service.url} (no local PID: fds, children, threads and offheap not*"]
        )
    result.stdout.fnmatch_lines(["*test_goroutine_leak - Failed: goleak: 1 gorout*"])
    assert outside_service.alive(), "attach mode must never stop the service"


@pytest.mark.parametrize("warmup", ["800ms", "60s"])
def test_attach_mode_waits_for_the_ready_url(
    pytester: pytest.Pytester, go_build: Callable[[str], Path], tmp_path: Path, warmup: str
) -> None:
    binary = go_build("tests/goapps/slowstart")
    outside = GoService(
        ServiceConfig(binary=binary, args=f"-addr {{addr}} -delay 0s -warmup {warmup}"), binary, tmp_path
    )
    outside.start()  # answers pprof at once; ready only after the warm-up
    try:
        pytester.makeini(
            f"[pytest]\ngoleak_attach_url = {outside.url}\ngoleak_attach_pid = {outside.pid}\n"
            "goleak_ready_url = http://{addr}/ready\ngoleak_start_timeout = 2\ngoleak_settle = 0.3\n"
        )
        pytester.makepyfile("def test_first(pytest_goleak):\n    pytest_goleak.client.get('/healthz')\n")
        result = pytester.runpytest()
    finally:
        outside.stop()
    if warmup == "800ms":  # the warm-up's workers are not charged to the first test
        result.assert_outcomes(passed=1)
    else:
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(
            [f"*was not ready within 2s (goleak_ready_url {outside.url}/ready answered HTTP 503)*"]
        )


def test_attach_to_a_url_without_pprof_says_so_at_once(pytester: pytest.Pytester, outside_service: GoService) -> None:
    pytester.makeini(
        f"[pytest]\ngoleak_attach_url = {outside_service.url}\ngoleak_pprof_url = http://{{addr}}/nope/\n"
        "goleak_start_timeout = 30\n"
    )
    pytester.makepyfile("def test_any(pytest_goleak):\n    pass\n")
    started = time.monotonic()
    result = pytester.runpytest()
    assert time.monotonic() - started < 10, "a 404 must not be waited on until the start timeout"
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*attached service at {outside_service.url[7:]} serves no pprof: *(HTTP 404)*"])


def test_attach_refuses_remote_hosts_without_opt_in(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ngoleak_attach_url = http://10.20.30.40:8080\n")
    pytester.makepyfile("def test_x(pytest_goleak): pass\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: pytest-goleak: goleak_attach_url points at 10.20.30.40, not loopback*"])


def test_a_second_service_is_checked_with_watch(
    pytester: pytest.Pytester, write_ini: Callable[..., None], go_build: Callable[[str], Path]
) -> None:
    debugport = go_build("tests/goapps/debugport")
    write_ini()
    pytester.makepyfile(
        f"""
        import httpx
        import pytest

        @pytest.fixture(scope="session")
        def peer(goleak_service_factory):
            return goleak_service_factory(
                binary={str(debugport)!r},
                args="-listen {{addr}} -debug-listen 127.0.0.1:{{port_debug}} -data-dir {{tmp}}",
                pprof_url="http://127.0.0.1:{{port_debug}}/debug/pprof/",
            )

        def test_peer_leaks(pytest_goleak, peer):
            pytest_goleak.watch(peer)
            pytest_goleak.client.get("/healthz")
            httpx.get(peer.url + "/leak", trust_env=False)

        def test_both_clean(pytest_goleak, peer):
            pytest_goleak.watch(peer)
            httpx.get(peer.url + "/healthz", trust_env=False)
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["[[]debugport[]] goleak: 1 goroutine leaked (budget 0)", "*main.leakOne*"])
