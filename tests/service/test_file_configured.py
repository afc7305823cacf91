"""A server that reads where to listen from its config file, and one reached only over a unix socket.

``tests/goapps/fileconf`` takes nothing but ``-config FILE``: goleak_files renders that file into each
start's {tmp}, and goleak_unix_socket reaches it where it listens on a socket rather than a port.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

# The config's greeting line is '"{{port}} {tmp}"': {tmp} filled, {{port}} written as {port}.
SUITE = """
def test_clean(pytest_goleak):
    assert pytest_goleak.client.get("/hello").text == "{port} " + str(pytest_goleak.service.tmp)

def test_leaky(pytest_goleak):
    pytest_goleak.client.get("/leak")
"""


def _suite(pytester: pytest.Pytester, binary: Path, listen: str, extra: str = "", tests: str = "") -> None:
    (pytester.path / "server.conf.in").write_text(
        f'listen = {listen}\ngreeting = "{{{{port}}}} {{tmp}}"\n[table] = {{ kept = "as written" }}\n'
    )
    pytester.makeini(
        textwrap.dedent(
            f"""
            [pytest]
            goleak_binary = {binary}
            goleak_files = server.conf.in -> {{tmp}}/etc/server.conf
            goleak_args = -config {{tmp}}/etc/server.conf
            goleak_settle = 0.3
            goleak_startup_quiet = 0.1
            """
        )
        + textwrap.dedent(extra)
    )
    pytester.makepyfile(test_fileconf=SUITE + textwrap.dedent(tests))


def test_a_server_told_its_port_only_by_its_config_file(pytester: pytest.Pytester, go_build) -> None:  # type: ignore[no-untyped-def]
    binary = go_build("tests/goapps/fileconf")
    _suite(pytester, binary, "{addr}")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_leaky*", "goleak: 1 goroutine leaked (budget 0)"])


def test_a_server_reached_only_over_a_unix_socket(pytester: pytest.Pytester, go_build) -> None:  # type: ignore[no-untyped-def]
    binary = go_build("tests/goapps/fileconf")
    extra = """
        goleak_unix_socket = {tmp}/api.sock
        goleak_pprof_url = http://localhost/debug/pprof/
        goleak_ready_url = http://localhost/healthz
        """
    tests = """
        def test_no_tcp_port(pytest_goleak):
            import psutil
            assert not psutil.Process(pytest_goleak.service.pid).net_connections(kind="inet")
        """
    _suite(pytester, binary, "unix:{tmp}/api.sock", extra, tests)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_leaky*", "goleak: 1 goroutine leaked (budget 0)"])


def test_a_config_file_the_server_rejects_stops_the_session_naming_goleak_files(
    pytester: pytest.Pytester, go_build
) -> None:  # type: ignore[no-untyped-def]
    binary = go_build("tests/goapps/fileconf")
    _suite(pytester, binary, "")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(
        [
            "*fileconf exited during start-up (exited with code 2); its output says why: check goleak_args,"
            " goleak_env and goleak_files*",
            "*fileconf: config has no listen line*",
        ]
    )
    assert result.ret == pytest.ExitCode.INTERRUPTED


def test_a_wrapper_script_is_named_and_the_summary_names_the_go_binary_it_ran(
    pytester: pytest.Pytester, go_build
) -> None:  # type: ignore[no-untyped-def]
    binary = go_build("tests/goapps/fileconf")
    wrapper = pytester.path / "run-server.sh"
    wrapper.write_text(f'#!/bin/sh\nexec {binary} "$@"\n')
    wrapper.chmod(0o755)
    _suite(pytester, wrapper, "{addr}")
    result = pytester.runpytest("-p", "no:cacheprovider", "-k", "clean")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "goleak: service run-server.sh (binary *run-server.sh, not a Go binary: the summary names the Go binary it"
            " runs)",
            f"run-server.sh ran {binary} (go1.*), started by *run-server.sh",
        ]
    )
