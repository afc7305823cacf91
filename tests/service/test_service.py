"""The Go service lifecycle, against real Go binaries: start, readiness, logs, stop, restart, errors."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil
import pytest

from pytest_goleak.errors import ConfigError, ServiceError, ServiceMisconfigured
from pytest_goleak.read.pprof import PprofClient
from pytest_goleak.service.config import ServiceConfig
from pytest_goleak.service.started import GoService
from pytest_goleak.service.toolchain import build_package

ROOT = Path(__file__).resolve().parents[2]


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_start_serves_and_stop_leaves_nothing(run_service, example_binary: Path) -> None:  # type: ignore[no-untyped-def]
    service = run_service(example_binary, args="-addr {addr} -data-dir {tmp}")
    assert httpx.get(service.url + "/healthz", trust_env=False).text.strip() == "ok"
    assert service.url == f"http://127.0.0.1:{service.port}"
    assert service.tmp.is_dir() and str(service.tmp) in service.command
    assert "listening on" in service.log_tail(5)
    pid = service.pid
    # Spawn a child through the service, so stop() must take the whole group.
    httpx.get(service.url + "/leaky/exec", trust_env=False)
    children = psutil.Process(pid).children(recursive=True)
    assert children
    tmpdir = service.tmpdir
    assert tmpdir is not None and tmpdir.is_dir() and len(str(tmpdir)) < 40  # room for unix socket paths
    assert service.stop() == 0  # SIGTERM: the service shut down gracefully
    assert not tmpdir.exists()
    assert _gone(pid)
    assert all(_gone(child.pid) for child in children)


# Python fork handlers run only where a start forks pytest and runs Python in the child (a preexec_fn). The fork
# copies every thread's locks and runs other libraries' fork handlers in the child: grpcio's abort it when a test's
# gRPC channel has its pollers running, and a lock another thread held at the fork is never released there.
_FORKS_WITH_PYTHON: list[int] = []
os.register_at_fork(before=lambda: _FORKS_WITH_PYTHON.append(os.getpid()))


def test_a_start_runs_no_python_in_a_forked_child(run_service, example_binary: Path) -> None:  # type: ignore[no-untyped-def]
    forks = len(_FORKS_WITH_PYTHON)
    service = run_service(example_binary, args="-addr {addr} -data-dir {tmp}")
    service.restart()
    assert httpx.get(service.url + "/healthz", trust_env=False).text.strip() == "ok"
    assert len(_FORKS_WITH_PYTHON) == forks


def test_restart_gives_a_fresh_process(run_service, example_binary: Path) -> None:  # type: ignore[no-untyped-def]
    service = run_service(example_binary, args="-addr {addr} -data-dir {tmp}")
    first = service.pid
    os.kill(first, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while service.alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not service.alive()
    assert service.returncode == -signal.SIGKILL
    service.restart()
    assert service.alive() and service.pid != first
    assert httpx.get(service.url + "/healthz", trust_env=False).status_code == 200


@pytest.mark.parametrize(
    ("config", "rate"),
    [
        ({}, 512 << 10),
        ({"memprofilerate": 64 << 10}, 64 << 10),
        ({"memprofilerate": 4096}, 4096),
        ({"env": ("GODEBUG=madvdontneed=1,memprofilerate=8192",)}, 8192),  # the user's own setting wins
    ],
)
def test_heap_sample_rate_reaches_the_go_runtime(run_service, example_binary: Path, config, rate: int) -> None:  # type: ignore[no-untyped-def]
    service = run_service(example_binary, args="-addr {addr} -data-dir {tmp}", **config)
    pprof = PprofClient(service.pprof_url, service.request_timeout)
    try:
        assert pprof.heap().sample_rate == rate
    finally:
        pprof.close()


def test_placeholders_give_distinct_ports_and_env(run_service, go_build) -> None:  # type: ignore[no-untyped-def]
    binary = go_build("tests/goapps/debugport")
    service = run_service(
        binary,
        args="-listen {addr} -debug-listen 127.0.0.1:{port_debug} -data-dir {tmp}",
        pprof_url="http://127.0.0.1:{port_debug}/debug/pprof/",
        env=("DEBUGPORT_GREETING=hello from {port_debug}",),
    )
    ports = service.ports
    assert set(ports) == {"port", "port_debug"} and ports["port"] != ports["port_debug"]
    assert service.pprof_url == f"http://127.0.0.1:{ports['port_debug']}/debug/pprof/"
    assert httpx.get(service.url + "/hello", trust_env=False).text.strip() == f"hello from {ports['port_debug']}"
    # pprof is only on the debug listener, as in many real servers.
    assert httpx.get(service.url + "/debug/pprof/", trust_env=False).status_code == 404
    assert httpx.get(service.pprof_url, trust_env=False).status_code == 200
    assert any(service.tmp.iterdir()), "the server wrote nothing into its {tmp} data dir"


def test_exit_at_start_names_code_and_output(run_service, go_build) -> None:  # type: ignore[no-untyped-def]
    binary = go_build("tests/goapps/exitearly")
    with pytest.raises(ServiceError) as error:
        run_service(binary, start_timeout=10)
    message = str(error.value)
    assert message.startswith("exitearly exited during start-up (exited with code 3)")
    assert "command: " in message and str(binary) in message
    assert "cannot load config" in message


def test_never_ready_fails_within_the_timeout(run_service, go_build) -> None:  # type: ignore[no-untyped-def]
    binary = go_build("tests/goapps/silent")
    start = time.monotonic()
    with pytest.raises(ServiceError, match=r"silent was not ready within 1.5s \(.*did not answer"):
        run_service(binary, start_timeout=1.5)
    assert time.monotonic() - start < 6


def test_slow_start_is_waited_for(run_service, go_build) -> None:  # type: ignore[no-untyped-def]
    service = run_service(go_build("tests/goapps/slowstart"), args="-addr {addr} -delay 700ms")
    assert httpx.get(service.pprof_url, trust_env=False).status_code == 200


def test_ready_url_is_waited_for_after_pprof_answers(run_service, go_build) -> None:  # type: ignore[no-untyped-def]
    start = time.monotonic()
    service = run_service(
        go_build("tests/goapps/slowstart"), args="-addr {addr} -delay 0s -warmup 600ms", ready_url="http://{addr}/ready"
    )
    assert time.monotonic() - start >= 0.5
    assert service.ready_url == f"{service.url}/ready"
    assert httpx.get(service.ready_url, trust_env=False).text == "ready"


def test_never_ready_url_names_its_answer(run_service, go_build) -> None:  # type: ignore[no-untyped-def]
    start = time.monotonic()
    with pytest.raises(
        ServiceError, match=r"was not ready within 1s \(goleak_ready_url http://.*/ready answered HTTP 503"
    ):
        run_service(
            go_build("tests/goapps/slowstart"),
            args="-addr {addr} -delay 0s -warmup 60s",
            ready_url="http://{addr}/ready",
            start_timeout=1,
        )
    assert time.monotonic() - start < 6


def test_missing_pprof_says_how_to_mount_it(run_service, go_build) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ServiceError, match=r'serves no pprof .*import _ "net/http/pprof"'):
        run_service(go_build("tests/goapps/nopprof"))


def test_port_in_use_is_named(run_service, example_binary: Path) -> None:  # type: ignore[no-untyped-def]
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ServiceError, match=f"port {port} .* already in use"):
            run_service(
                example_binary, args=f"-addr 127.0.0.1:{port}", pprof_url=f"http://127.0.0.1:{port}/debug/pprof/"
            )


def test_build_failure_shows_compiler_errors(tmp_path: Path) -> None:
    package = tmp_path / "broken"
    package.mkdir()
    (package / "go.mod").write_text("module broken\n\ngo 1.22\n")
    (package / "main.go").write_text("package main\n\nfunc main() { undefinedThing() }\n")
    with pytest.raises(ServiceError) as error:
        build_package("broken", tmp_path, tmp_path / "out")
    message = str(error.value)
    assert message.splitlines()[0].startswith("`go build .` failed in")
    assert "undefined: undefinedThing" in message


def test_build_flags_reach_go_build(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        f"""
        [pytest]
        goleak_package = {ROOT / "tests" / "goapps" / "slowstart"}
        goleak_build_flags = -tags=goleak_tagged
        goleak_args = -addr {{addr}} -delay 0s
        """
    )
    pytester.makepyfile(
        """
        def test_tagged(pytest_goleak):
            assert pytest_goleak.client.get("/tagged").text == "built with -tags=goleak_tagged"
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_bad_build_flag_is_one_usage_error_with_go_s_own_words(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        f"""
        [pytest]
        goleak_package = {ROOT / "tests" / "goapps" / "slowstart"}
        goleak_build_flags = -no-such-flag
        """
    )
    pytester.makepyfile("def test_any(pytest_goleak):\n    pass\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: pytest-goleak: `go build -no-such-flag .` failed in *", "*-no-such-flag*"])


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "no Go service configured; set goleak_package"),
        ({"binary": Path("/x"), "build_flags": "-race"}, "goleak_build_flags needs goleak_package"),
        ({"package": "x", "build_flags": "-tags='a"}, "goleak_build_flags .* cannot be split like a shell line"),
        ({"binary": Path("/x"), "package": "y"}, "both goleak_binary and goleak_package"),
        ({"package": "x", "args": "-addr {host}"}, "unknown placeholder {host}"),
        ({"package": "x", "args": "-config '{unclosed"}, "cannot be split like a shell line"),
        ({"package": "x", "pprof_url": "http://192.168.1.10:6060/debug/pprof/"}, "not loopback"),
        ({"package": "x", "pprof_url": "ftp://{addr}/"}, "not an http URL"),
        (
            {"package": "x", "ready_url": "ftp://{addr}/ready"},
            "goleak_ready_url 'ftp://{addr}/ready' is not an http URL",
        ),
        ({"package": "x", "ready_url": "http://10.0.0.1/ready"}, "goleak_ready_url points at 10.0.0.1, not loopback"),
        ({"package": "x", "memprofilerate": -1}, "goleak_memprofilerate = -1 is not a byte count"),
    ],
)
def test_bad_service_config(config: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as error:
        ServiceConfig(**config, where=lambda field: f"goleak_{field}")  # type: ignore[arg-type]
    assert "\n" not in str(error.value)


def test_remote_pprof_needs_an_explicit_opt_in() -> None:
    url = "http://192.168.1.10:6060/debug/pprof/"
    assert ServiceConfig(package="x", pprof_url=url, allow_remote_pprof=True).pprof_url == url


def test_service_config_errors_name_factory_keywords_by_default() -> None:
    with pytest.raises(
        ConfigError, match=r"^goleak_service_factory\(build_flags=\.\.\.\) needs goleak_service_factory\("
    ):
        ServiceConfig(binary=Path("/x"), build_flags="-race")
    with pytest.raises(ConfigError, match=r"opt in with goleak_service_factory\(allow_remote_pprof=\.\.\.\) = true"):
        ServiceConfig(package="x", pprof_url="http://10.0.0.1/debug/pprof/")


@pytest.mark.parametrize(
    ("keywords", "message"),
    [
        ('args="\'unclosed"', '*goleak_service_factory(args=...) "\'unclosed" cannot be split like a shell line*'),
        ("args='-addr {host}'", "*goleak_service_factory(args=...) uses unknown placeholder {host}*"),
    ],
)
def test_factory_config_errors_name_the_factory_keyword(pytester: pytest.Pytester, keywords: str, message: str) -> None:
    pytester.makepyfile(
        f"def test_peer(goleak_service_factory):\n    goleak_service_factory(package='example_service', {keywords})\n"
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([message])
    assert "goleak_args" not in result.stdout.str()


def test_ini_only_third_party_server_runs_under_the_fixtures(pytester: pytest.Pytester, go_build) -> None:  # type: ignore[no-untyped-def]
    """A binary the project did not write, configured through ini alone: data dir in {tmp}, pprof on its own port."""
    binary = go_build("tests/goapps/debugport")
    pytester.makeini(
        textwrap.dedent(
            f"""
            [pytest]
            goleak_binary = {binary}
            goleak_args = -listen {{addr}} -debug-listen 127.0.0.1:{{port_debug}} -data-dir {{tmp}}
            goleak_pprof_url = http://127.0.0.1:{{port_debug}}/debug/pprof/
            goleak_env =
                DEBUGPORT_GREETING=hi
            goleak_settle = 0.3
            """
        )
    )
    pytester.makepyfile(
        test_third_party="""
        def test_clean(pytest_goleak):
            assert pytest_goleak.client.get("/hello").text.strip() == "hi"
            assert pytest_goleak.service.tmp.is_dir()

        def test_leaky(pytest_goleak):
            pytest_goleak.client.get("/leak")
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["goleak: 1 goroutine leaked (budget 0)"])


@pytest.mark.parametrize(
    ("binary", "message"),
    [
        ("/no/such/binary", "goleak_binary /no/such/binary does not exist"),
        ("plain.txt", "goleak_binary */plain.txt is not an executable file"),
    ],
)
def test_bad_binary_is_one_usage_error(pytester: pytest.Pytester, binary: str, message: str) -> None:
    (pytester.path / "plain.txt").write_text("not a program\n")
    pytester.makeini(f"[pytest]\ngoleak_binary = {binary}\n")
    pytester.makepyfile("def test_x(pytest_goleak): pass\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: pytest-goleak: {message}*"])


def test_go_missing_is_one_usage_error(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makeini(f"[pytest]\ngoleak_package = {ROOT / 'example_service'}\n")
    pytester.makepyfile("def test_x(pytest_goleak): pass\n")
    monkeypatch.setenv("PATH", "/nonexistent")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: pytest-goleak: goleak_package needs the Go toolchain but `go` is not on PATH*"]
    )


def test_no_service_configured_is_one_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(pytest_goleak): pass\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: pytest-goleak: no Go service configured; set goleak_package*"])


def test_suite_without_goleak_fixtures_never_builds(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ngoleak_package = does-not-exist\n")
    pytester.makepyfile("def test_x(): pass\n")
    pytester.runpytest().assert_outcomes(passed=1)


@pytest.mark.parametrize("ready_url", ["", "http://{addr}/ready"])
def test_ready_url_keeps_start_up_growth_out_of_the_first_test(
    pytester: pytest.Pytester, go_build: Callable[[str], Path], ready_url: str
) -> None:
    binary = go_build("tests/goapps/slowstart")
    pytester.makeini(
        f"[pytest]\ngoleak_binary = {binary}\ngoleak_args = -addr {{addr}} -delay 0s -warmup 1s\n"
        f"goleak_settle = 0.3\ngoleak_ready_url = {ready_url}\n"
        "goleak_startup_quiet = 0\n"  # the ready URL alone, without the start-up wait
    )
    pytester.makepyfile(
        """
        import time

        def test_first(pytest_goleak):
            assert pytest_goleak.client.get("/healthz").text == "ok"
            time.sleep(0.2)
        """
    )
    result = pytester.runpytest()
    if ready_url:
        result.assert_outcomes(passed=1)
    else:  # the warm-up's workers are charged to the first test
        result.assert_outcomes(passed=1, errors=1)
        result.stdout.fnmatch_lines(["*goleak: * goroutines leaked*", "*main.worker*"])


def test_race_build_fails_the_test_that_raced_with_the_race_report(pytester: pytest.Pytester) -> None:
    env = subprocess.run(["go", "env", "CGO_ENABLED", "CC"], capture_output=True, text=True, check=True).stdout.split()
    if env[0] != "1" or shutil.which(env[1]) is None:
        pytest.skip("go build -race needs cgo and a C compiler")
    pytester.makeini(
        f"""
        [pytest]
        goleak_package = {ROOT / "tests" / "goapps" / "slowstart"}
        goleak_build_flags = -race
        goleak_args = -addr {{addr}} -delay 0s
        goleak_env = GORACE=halt_on_error=1
        """
    )
    pytester.makepyfile(
        """
        import httpx

        def test_racy(pytest_goleak):
            try:
                pytest_goleak.client.get("/race")
            except httpx.HTTPError:
                pass  # the race detector stops the service mid-request

        def test_next_gets_a_fresh_service(pytest_goleak):
            assert pytest_goleak.client.get("/healthz").text == "ok"
        """
    )
    result = pytester.runpytest()
    # The service's end is found by the check, after the test's fixtures: an error at its teardown.
    result.assert_outcomes(passed=2, errors=1)
    # The service's own output is shown indented: nothing it writes starts a line of the report.
    result.stdout.fnmatch_lines(["*goleak: slowstart exited with code 66 during this test*", "    WARNING: DATA RACE"])


# -- a service that never answers on {port}: where it listens instead ----------

LISTENS_ELSEWHERE = "-listen 127.0.0.1:0 -debug-listen 127.0.0.1:0 -data-dir {tmp}"


def test_a_service_told_its_port_that_listens_elsewhere_is_named_after_the_timeout(
    run_service: Callable[..., GoService], go_build: Callable[[str], Path]
) -> None:
    # The port goes to the service through env, which debugport ignores: it may still bind it, so the wait runs out.
    with pytest.raises(ServiceError) as error:
        run_service(go_build("tests/goapps/debugport"), args=LISTENS_ELSEWHERE, env=("PORT={port}",), start_timeout=1.5)
    assert not isinstance(error.value, ServiceMisconfigured)
    headline = str(error.value).splitlines()[0]
    assert headline.startswith("debugport was not ready within 1.5s (http://127.0.0.1:"), headline
    assert "; it listens on 127.0.0.1:" in headline
    assert headline.endswith(
        "check that goleak_service_factory(args=...) gives {addr} to the flag that sets its listen address"
    )


def test_a_service_that_never_binds_its_port_is_named_after_the_timeout(
    run_service: Callable[..., GoService], go_build: Callable[[str], Path]
) -> None:
    # {addr} is in the arguments (to the shell, which drops it), so {port} is waited for; the server binds others.
    server = go_build("tests/goapps/debugport")
    with pytest.raises(ServiceError) as error:
        run_service(Path("/bin/sh"), args=f"-c 'exec {server} {LISTENS_ELSEWHERE}' {{addr}}", start_timeout=1.5)
    headline = str(error.value).splitlines()[0]
    assert re.fullmatch(
        r"sh was not ready within 1\.5s \(port (\d+) is not accepting connections\); "
        r"it listens on 127\.0\.0\.1:\d+, 127\.0\.0\.1:\d+, not on port \1: "
        r"check that goleak_service_factory\(args=\.\.\.\) gives \{addr\} to the flag that sets its listen address",
        headline,
    ), headline


def test_a_service_never_told_its_port_that_never_listens_says_so_at_the_timeout(
    run_service: Callable[..., GoService],
) -> None:
    with pytest.raises(ServiceMisconfigured) as error:
        run_service(Path("/bin/sleep"), args="60", start_timeout=1)
    headline = str(error.value).splitlines()[0]
    assert headline.startswith("sleep was not ready within 1s (")
    assert headline.endswith(
        "neither goleak_service_factory(args=...) nor goleak_service_factory(env=...) gives the service {addr} "
        "or {port}; pass {addr} in goleak_service_factory(args=...) to the flag that sets its listen address"
    )


def test_an_exit_keeps_its_status_and_output_and_notes_the_missing_port(
    run_service: Callable[..., GoService], go_build: Callable[[str], Path]
) -> None:
    with pytest.raises(ServiceMisconfigured) as error:
        run_service(go_build("tests/goapps/exitearly"), args="")
    lines = str(error.value).splitlines()
    assert lines[0] == (
        "exitearly exited during start-up (exited with code 3); its output says why: "
        "check goleak_service_factory(args=...) and goleak_service_factory(env=...)"
    )
    assert any("gives the service {addr} or {port}; pass {addr}" in line for line in lines)
    assert "cannot load config" in str(error.value)
