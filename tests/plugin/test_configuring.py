"""Configuring a server from the ini file alone: a command name for the binary, ``{rootdir}``, a service that
listens where nobody said, and configuration errors that stop the run once instead of erroring every test."""

from __future__ import annotations

import http.server
import json
import os
import shutil
import threading
import time
import types
from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_goleak.errors import ConfigError, ReadyRefused
from pytest_goleak.read import backend
from pytest_goleak.service.config import ServiceConfig
from pytest_goleak.service.readiness import probe_ready
from pytest_goleak.service.started import GoService
from pytest_goleak.service.toolchain import find_binary

THREE_TESTS = """
def test_one(pytest_goleak):
    pass

def test_two(pytest_goleak):
    pass

def test_three():
    pass
"""
STOPPED = "*Interrupted: pytest-goleak stopped the session: *"


def _stopped_after_one_error(pytester: pytest.Pytester, ini: str, within: float = 15) -> pytest.RunResult:
    """Run THREE_TESTS under ``ini``: the first test errors, and no other test runs, within ``within`` seconds."""
    pytester.makeini(ini)
    pytester.makepyfile(THREE_TESTS)
    started = time.monotonic()
    result = pytester.runpytest()
    assert time.monotonic() - started < within, "the start was waited on although waiting could not help"
    result.assert_outcomes(errors=1)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    return result


# -- goleak_binary takes a command name ----------------------------------------


def test_binary_given_as_a_command_name_is_found_on_path(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, example_binary: Path
) -> None:
    bin_dir = pytester.mkdir("bin-on-path")
    shutil.copy(example_binary, bin_dir / "goleak-example-server")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    pytester.makeini("[pytest]\ngoleak_binary = goleak-example-server\ngoleak_args = -addr {addr} -data-dir {tmp}\n")
    pytester.makepyfile(
        f"""
        def test_it_runs(pytest_goleak):
            assert pytest_goleak.service.command[0] == {str(bin_dir / "goleak-example-server")!r}
            assert pytest_goleak.client.get("/healthz").text.strip() == "ok"
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["goleak: service goleak-example-server (binary goleak-example-server, go1.*)"])


def test_a_file_beside_the_ini_wins_over_path(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, example_binary: Path
) -> None:
    shutil.copy(example_binary, pytester.path / "server")
    decoy = pytester.mkdir("decoy")
    (decoy / "server").write_text("#!/bin/sh\nexit 9\n")
    (decoy / "server").chmod(0o755)
    monkeypatch.setenv("PATH", f"{decoy}{os.pathsep}{os.environ['PATH']}")
    assert find_binary(Path("server"), pytester.path) == pytester.path / "server"
    pytester.makeini("[pytest]\ngoleak_binary = server\ngoleak_args = -addr {addr} -data-dir {tmp}\n")
    pytester.makepyfile("def test_it_runs(pytest_goleak):\n    pytest_goleak.client.get('/healthz')\n")
    pytester.runpytest().assert_outcomes(passed=1)


def test_a_command_name_found_nowhere_names_both_places(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ngoleak_binary = no-such-goleak-server\n")
    pytester.makepyfile("def test_x(pytest_goleak): pass\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            f"ERROR: pytest-goleak: goleak_binary no-such-goleak-server is neither a file in {pytester.path} "
            "nor a command on PATH; install it, give its path, or set goleak_package instead"
        ]
    )


def test_a_path_is_never_looked_up_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/bin:/usr/bin")
    with pytest.raises(ConfigError, match=r"^goleak_binary .*/bin/sh does not exist; build it first"):
        find_binary(Path("bin/sh"), tmp_path, lambda name: f"goleak_{name}")


# -- {rootdir} ----------------------------------------------------------------


def test_rootdir_placeholder_in_args_env_and_the_factory(pytester: pytest.Pytester, go_build) -> None:  # type: ignore[no-untyped-def]
    debugport = go_build("tests/goapps/debugport")
    (pytester.path / "data").mkdir()
    args = "-listen {addr} -debug-listen 127.0.0.1:{port_debug} -data-dir {rootdir}/data"
    pytester.makeini(
        f"[pytest]\ngoleak_binary = {debugport}\ngoleak_args = {args}\n"
        "goleak_pprof_url = http://127.0.0.1:{port_debug}/debug/pprof/\n"
        "goleak_env =\n    DEBUGPORT_GREETING=from {rootdir}\ngoleak_settle = 0.3\n"
    )
    pytester.makepyfile(
        f"""
        import httpx, pathlib

        def test_main_service(pytest_goleak):
            assert pytest_goleak.client.get("/hello").text == "from {pytester.path}"
            assert pathlib.Path({str(pytester.path / "data" / "server.pid")!r}).exists()

        def test_factory(goleak_service_factory):
            peer = goleak_service_factory(
                binary={str(debugport)!r},
                args="-listen {{addr}} -debug-listen 127.0.0.1:{{port_debug}} -data-dir {{rootdir}}/data",
                pprof_url="http://127.0.0.1:{{port_debug}}/debug/pprof/",
                env=("DEBUGPORT_GREETING=peer in {{rootdir}}",),
            )
            assert httpx.get(peer.url + "/hello", trust_env=False).text == "peer in {pytester.path}"
        """
    )
    # From a subdirectory: {rootdir} is pytest's rootdir, absolute, wherever pytest runs.
    sub = pytester.mkdir("sub")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(sub)
        result = pytester.runpytest(str(pytester.path))
    result.assert_outcomes(passed=2)


def test_rootdir_is_a_known_placeholder() -> None:
    config = ServiceConfig(package="x", args="-config {rootdir}/a.yml", rootdir=Path("/suite"))
    assert config.filled_rootdir == "/suite"
    with pytest.raises(ConfigError, match=r"unknown placeholder \{root\}; use .*\{tmp\} or \{rootdir\}"):
        ServiceConfig(package="x", args="-config {root}/a.yml")


# -- a service that never answers on {port} -------------------------------------


def test_a_service_never_told_its_port_fails_at_once_naming_where_it_listens(
    pytester: pytest.Pytester, go_build: Callable[[str], Path]
) -> None:
    binary = go_build("tests/goapps/debugport")
    args = "-listen 127.0.0.1:0 -debug-listen 127.0.0.1:0 -data-dir {tmp}"
    ini = f"[pytest]\ngoleak_binary = {binary}\ngoleak_args = {args}\ngoleak_start_timeout = 30\n"
    result = _stopped_after_one_error(pytester, ini)
    headline = (
        "*debugport listens on 127.0.0.1:*, 127.0.0.1:*, but goleak_pprof_url waits on port *, and neither "
        "goleak_args nor goleak_env gives the service {addr} or {port}; "
        "pass {addr} in goleak_args to the flag that sets its listen address"
    )
    result.stdout.fnmatch_lines([headline, "*listening on 127.0.0.1:* (debug on 127.0.0.1:*)*", STOPPED])


# -- configuration errors stop the run once -----------------------------------


def test_a_pprof_404_stops_the_session_after_one_error(pytester: pytest.Pytester, go_build) -> None:  # type: ignore[no-untyped-def]
    result = _stopped_after_one_error(pytester, f"[pytest]\ngoleak_binary = {go_build('tests/goapps/nopprof')}\n")
    result.stdout.fnmatch_lines(
        [
            "*nopprof answers but serves no pprof at http://127.0.0.1:*/debug/pprof/ (HTTP 404); "
            'add import _ "net/http/pprof" to the service, or point goleak_pprof_url at it*',
            STOPPED + "(HTTP 404)*",
        ]
    )
    assert result.stdout.str().count("ERROR at setup") == 1  # one error, not one per test


@pytest.mark.parametrize(
    ("path", "code"),
    [("/no-such-path", 404), ("/debug/pprof/goroutine?seconds=x", 400)],
)
def test_a_ready_url_4xx_fails_at_once_and_stops_the_session(
    pytester: pytest.Pytester, go_build: Callable[[str], Path], path: str, code: int
) -> None:
    binary = go_build("tests/goapps/slowstart")
    ini = (
        f"[pytest]\ngoleak_binary = {binary}\ngoleak_args = -addr {{addr}} -delay 0s\n"
        f"goleak_ready_url = http://{{addr}}{path}\ngoleak_start_timeout = 30\n"
    )
    result = _stopped_after_one_error(pytester, ini)
    result.stdout.fnmatch_lines(
        [
            f"*slowstart answers, but goleak_ready_url http://127.0.0.1:*{path} answered HTTP {code}, which waiting "
            "will not change; point goleak_ready_url at a path that answers a plain GET with 2xx once *",
            STOPPED,
        ]
    )


@pytest.mark.parametrize(("code", "refused"), [(404, True), (401, True), (405, True), (429, False), (408, False)])
def test_which_ready_answers_end_the_wait(code: int, refused: bool) -> None:
    class Answer(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answer) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}/ready"
        try:
            if refused:
                with pytest.raises(ReadyRefused, match=f"answered HTTP {code}, which waiting will not change"):
                    probe_ready(url, 5.0)
            else:
                assert probe_ready(url, 5.0) == f"goleak_ready_url {url} answered HTTP {code}"
        finally:
            server.shutdown()


def test_a_binary_that_exits_at_once_stops_the_session(pytester: pytest.Pytester, go_build) -> None:  # type: ignore[no-untyped-def]
    result = _stopped_after_one_error(pytester, f"[pytest]\ngoleak_binary = {go_build('tests/goapps/exitearly')}\n")
    result.stdout.fnmatch_lines(["*exitearly exited during start-up (exited with code 3)*", "*cannot load config*"])
    result.stdout.fnmatch_lines(
        [STOPPED + "exitearly exited during start-up (exited with code 3); its output says why: check goleak_args *"]
    )


def test_a_bad_placeholder_in_the_factory_stops_the_session(pytester: pytest.Pytester, write_ini) -> None:  # type: ignore[no-untyped-def]
    write_ini()
    pytester.makepyfile(
        """
        import pytest

        @pytest.fixture(scope="session")
        def peer(goleak_service_factory):
            return goleak_service_factory(package="example_service", args="-addr {host}")

        def test_one(peer):
            pass

        def test_two(peer):
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([STOPPED + "goleak_service_factory(args=...) uses unknown placeholder {host}*"])


def test_attach_mode_pprof_404_stops_the_session(
    pytester: pytest.Pytester, example_binary: Path, tmp_path: Path
) -> None:
    outside = GoService(
        ServiceConfig(binary=example_binary, args="-addr {addr} -data-dir {tmp}"), example_binary, tmp_path
    )
    outside.start()
    try:
        ini = f"[pytest]\ngoleak_attach_url = {outside.url}\ngoleak_pprof_url = http://{{addr}}/nope/\n"
        result = _stopped_after_one_error(pytester, ini)
    finally:
        outside.stop()
    result.stdout.fnmatch_lines([STOPPED + "attached service at * serves no pprof: *(HTTP 404)*"])


def test_a_restart_that_fails_is_the_service_s_failure_and_the_session_goes_on(
    pytester: pytest.Pytester, example_binary: Path
) -> None:
    binary = pytester.path / "server"
    shutil.copy(example_binary, binary)
    pytester.makeini("[pytest]\ngoleak_binary = server\ngoleak_args = -addr {addr} -data-dir {tmp}\n")
    pytester.makepyfile(
        f"""
        import os, signal

        def test_dies_and_its_binary_breaks(goleak_service):
            os.chmod({str(binary)!r}, 0o644)  # the restart cannot exec it
            os.kill(goleak_service.pid, signal.SIGKILL)
            assert goleak_service.wait_exit(5) is not None

        def test_restart_fails(pytest_goleak):
            pass

        def test_binary_mended():
            os.chmod({str(binary)!r}, 0o755)

        def test_restarted(pytest_goleak):
            assert pytest_goleak.client.get("/healthz").text.strip() == "ok"
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(["*cannot run */server: Permission denied; check goleak_binary*"])
    assert "stopped the session" not in result.stdout.str()


def test_xdist_workers_each_stop_after_one_error(pytester: pytest.Pytester, go_build) -> None:  # type: ignore[no-untyped-def]
    pytester.makeini(f"[pytest]\ngoleak_binary = {go_build('tests/goapps/nopprof')}\n")
    pytester.makepyfile(
        "import pytest\n\n@pytest.mark.parametrize('n', range(8))\ndef test_n(pytest_goleak, n):\n    pass\n"
    )
    result = pytester.runpytest_subprocess("-n", "2")
    outcomes = result.parseoutcomes()
    assert 1 <= outcomes.get("errors", outcomes.get("error", 0)) <= 2, result.stdout.str()
    assert "passed" not in outcomes
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*pytest-goleak stopped the session: nopprof answers but serves no pprof*"])


# -- how the service's process is read ------------------------------------------


@pytest.mark.parametrize(
    ("env", "ini", "message"),
    [
        ("psutil", "", "GOLEAK_BACKEND in the environment: 'psutil' is not auto, proc or portable; e.g. *"),
        ("", "goleak_backend = procfs\n", "goleak_backend in tox.ini: 'procfs' is not auto, proc or portable; *"),
    ],
)
def test_a_bad_backend_stops_the_run_in_one_line(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, env: str, ini: str, message: str
) -> None:
    monkeypatch.setenv("GOLEAK_BACKEND", env)
    pytester.makeini(f"[pytest]\ngoleak_binary = /bin/true\n{ini}")
    pytester.makepyfile("def test_x(pytest_goleak): pass\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: pytest-goleak: {message}"])


def test_an_unsupported_platform_stops_the_run_at_start_in_one_line(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only the plugin is told it runs on Windows: pytest itself would change its ways too.
    monkeypatch.setattr(backend, "sys", types.SimpleNamespace(platform="win32"))
    pytester.makeini("[pytest]\ngoleak_binary = /bin/true\n")
    pytester.makepyfile("def test_x(pytest_goleak): pass\n\ndef test_y(pytest_goleak): pass\n")
    result = pytester.runpytest_inprocess()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: pytest-goleak: pytest-goleak runs on Linux and macOS, not on this platform*"])
    assert "test_x" not in result.stdout.str() + result.stderr.str()


@pytest.mark.parametrize("how", ["env", "ini"])
def test_the_portable_backend_checks_a_real_service_and_says_what_it_cannot_show(
    pytester: pytest.Pytester, write_ini: Callable[..., None], monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    monkeypatch.delenv("GOLEAK_BACKEND", raising=False)
    if how == "env":
        monkeypatch.setenv("GOLEAK_BACKEND", "portable")
    write_ini("goleak_backend = portable\n" if how == "ini" else "goleak_backend = proc\n")
    pytester.makepyfile(
        """
        def test_clean(pytest_goleak):
            assert pytest_goleak.client.get("/healthz").status_code == 200

        def test_leaky(pytest_goleak):
            assert pytest_goleak.client.get("/leaky/open").status_code == 200
        """
    )
    result = pytester.runpytest("--goleak-json=out.json", "--junitxml=junit.xml")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "goleak: processes read by psutil's portable calls (fds: fds that are neither a file nor a socket*",
            "*goleak: fds +1 (budget 0)*",
            "*fd *: *products.csv",
        ]
    )
    document = json.loads((pytester.path / "out.json").read_text())
    assert document["backend"]["name"] == "portable"
    assert document["backend"]["limits"]["fds"].startswith("fds that are neither a file nor a socket")
    leaky = next(test for test in document["tests"] if test["test"].endswith("test_leaky"))
    assert leaky["measures"]["fds"]["delta"] == 1
    assert leaky["measures"]["offheap"]["delta"] is not None  # measured, from rss
