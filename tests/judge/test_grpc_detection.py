"""gRPC leaks found in a real grpc-go server (``tests/goapps/grpcevents``), driven by grpcio as suites drive them.

Each leak must be named by the handler it is in, or said to be a connection
or client stream left open; each fixed twin, a session channel and the
per-test ``grpc_channel`` must pass. The leaky tests run in one nested session
(one start of the server), each judged on its own; so do the clean ones.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from verdicts import by_name

# Imported here, before any nested in-process run, so that those runs share this process's grpcio (see conftest.py).
pytest.importorskip("grpc")
pytest.importorskip("google.protobuf.wrappers_pb2")

GOAPP = "tests/goapps/grpcevents"
# The server's debug port serves pprof; gRPC is on the main port, which the channel dials by default.
ARGS = "-addr {addr} -debug-addr 127.0.0.1:{port_debug}"
PPROF = "goleak_pprof_url = http://127.0.0.1:{port_debug}/debug/pprof/\n"
# A closed connection's goroutines, and FloodFixed's stalled stream (100ms), end a little after the test.
SETTLE = "--goleak-settle=1"

CLIENT = """
import grpc
import pytest
from google.protobuf.wrappers_pb2 import BytesValue, StringValue

HELD = []  # what a suite keeps past a test: a stream it stopped reading, a channel it never closed


def call(channel, method, kind="unary_unary", reply=StringValue):
    rpc = getattr(channel, kind)(
        f"/goleak.Events/{method}",
        request_serializer=StringValue.SerializeToString,
        response_deserializer=reply.FromString,
    )
    return rpc(StringValue(value="orders"))


@pytest.fixture(scope="session")
def session_channel(goleak_service):
    # Connected before the first test's before-reading: a connection made during a test would be that test's growth.
    with grpc.insecure_channel(goleak_service.grpc_target) as channel:
        grpc.channel_ready_future(channel).result(timeout=10)
        yield channel
"""

LEAKY = """
def test_subscribe(pytest_goleak):
    events = call(pytest_goleak.grpc_channel, "Subscribe", "unary_stream")
    assert next(events).value == "subscribed to orders"
    events.cancel()


def test_flood(pytest_goleak, session_channel):
    chunks = call(session_channel, "Flood", "unary_stream", BytesValue)
    assert len(next(chunks).value) == 64 << 10
    HELD.append(chunks)  # stopped reading, never cancelled


def test_relay(pytest_goleak):
    assert call(pytest_goleak.grpc_channel, "Relay").value == "relayed"


def test_connect(pytest_goleak):
    assert call(pytest_goleak.grpc_channel, "Connect").value == "pong"


def test_own_channel(pytest_goleak):
    channel = grpc.insecure_channel(pytest_goleak.service.grpc_target, options=[("grpc.use_local_subchannel_pool", 1)])
    assert call(channel, "Ping").value == "pong"
    HELD.append(channel)  # never closed
"""

# test name -> (what the headline must say, what the report must name)
LEAKS: dict[str, tuple[list[str], list[str]]] = {
    "test_subscribe": (["1 goroutine leaked"], ["1 x [chan receive] main.(*eventsServer).Subscribe"]),
    "test_flood": (
        ["1 goroutine leaked"],
        ["1 x [select] main.(*eventsServer).Flood", "google.golang.org/grpc/internal/transport.(*writeQuota).get"],
    ),
    "test_relay": (
        ["2 goroutines leaked"],
        [
            "1 x [select] main.(*eventsServer).Collect",
            "google.golang.org/grpc.(*serverStream).RecvMsg",
            "google.golang.org/grpc.newClientStreamWithParams.func",
            "is the goroutine of a gRPC client stream the service opened and never ended",
        ],
    ),
    "test_connect": (
        ["goroutines leaked", "fds +2"],
        [
            "a gRPC connection a client left open: 3 goroutines grpc-go runs for it",
            "a gRPC connection the service dialled and left open (a grpc.ClientConn it never closed)",
            "Close that ClientConn",
            "A service that dials its own server holds both ends of one connection",
        ],
    ),
    "test_own_channel": (
        ["3 goroutines leaked", "fds +1"],
        [
            "a gRPC connection a client left open: 3 goroutines grpc-go runs for it",
            "ESTABLISHED",
            "Close that client's channel",
        ],
    ),
}


@pytest.fixture
def grpcevents(go_build: Callable[[str], Path], go_minor: int) -> Path:
    if go_minor < 26:
        pytest.skip(f"grpc-go 1.85 needs Go 1.26 or later; this is Go 1.{go_minor}")
    return go_build(GOAPP)


def test_each_grpc_leak_is_named_by_its_handler_or_its_connection(
    pytester: pytest.Pytester, write_ini: Callable[..., None], grpcevents: Path
) -> None:
    write_ini(PPROF, binary=grpcevents, args=ARGS)
    pytester.makepyfile(CLIENT + LEAKY)
    reports = by_name(pytester.inline_run(SETTLE).getreports("pytest_runtest_logreport"))
    assert sorted(reports) == sorted(LEAKS)
    for name, (headline, named) in LEAKS.items():
        report = reports[name]
        assert report.failed, f"{name} was not reported as a leak"
        text = report.longreprtext
        for phrase in headline:
            assert phrase in text.splitlines()[0], f"{phrase!r} not in the headline of {name}:\n{text}"
        for phrase in named:
            assert phrase in text, f"{phrase!r} not in the report of {name}:\n{text}"
        # The lines to copy name a handler or nothing: never grpc-go, whose goroutines run every RPC.
        assert not re.search(r"goleak_ignore =.*google\.golang\.org/grpc", text, re.S), text
        assert "serveStreams" not in text.split("leaked goroutines")[1].split("\n  ")[1], text


CLEAN = """
def test_subscribe_fixed(pytest_goleak):
    events = call(pytest_goleak.grpc_channel, "SubscribeFixed", "unary_stream")
    assert next(events).value == "subscribed to orders"
    events.cancel()


# FloodFixed ends its goroutine, but grpc-go keeps what it had queued for the stream (its 1 MiB send buffers,
# about 2 MiB) until the client cancels the stream or closes the connection: the client's doing, not the handler's.
@pytest.mark.goleak(heap="4MiB")
def test_flood_fixed(pytest_goleak, session_channel):
    chunks = call(session_channel, "FloodFixed", "unary_stream", BytesValue)
    assert len(next(chunks).value) == 64 << 10
    HELD.append(chunks)  # stopped reading, never cancelled: the server gives up on it


def test_relay_fixed(pytest_goleak):
    assert call(pytest_goleak.grpc_channel, "RelayFixed").value == "collected 1"


def test_connect_fixed(pytest_goleak):
    assert call(pytest_goleak.grpc_channel, "ConnectFixed").value == "pong"


@pytest.mark.parametrize("round_", range(3))
def test_session_channel(pytest_goleak, session_channel, round_):
    assert call(session_channel, "Ping").value == "pong"


@pytest.mark.parametrize("round_", range(3))
def test_per_test_channel(pytest_goleak, round_):
    assert call(pytest_goleak.grpc_channel, "Ping").value == "pong"
    assert call(pytest_goleak.grpc_channel, "SubscribeFixed", "unary_stream").next().value == "subscribed to orders"
"""


def test_fixed_twins_and_both_channels_pass(
    pytester: pytest.Pytester, write_ini: Callable[..., None], grpcevents: Path
) -> None:
    """Here gRPC has a named port (goleak_grpc_port) and pprof the main one, the other way round from the leaks'."""
    write_ini(
        "goleak_grpc_port = grpc\n",
        binary=grpcevents,
        args="-addr 127.0.0.1:{port_grpc} -debug-addr {addr}",
    )
    pytester.makepyfile(CLIENT + CLEAN)
    result = pytester.inline_run(SETTLE)
    failed = [report.longreprtext for report in result.getreports("pytest_runtest_logreport") if report.failed]
    assert not failed, "\n\n".join(failed)
    result.assertoutcome(passed=10)


def test_a_leaked_rpc_on_a_stream_worker_is_named_by_its_handler_too(
    pytester: pytest.Pytester, write_ini: Callable[..., None], grpcevents: Path
) -> None:
    """With NumStreamWorkers, RPCs run on grpc-go's serverWorker pool: the worker is looked through as well."""
    write_ini(PPROF, binary=grpcevents, args=ARGS + " -stream-workers 2")
    pytester.makepyfile(CLIENT + LEAKY.split("\n\n\ndef test_flood")[0])
    result = pytester.runpytest_inprocess(SETTLE)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*goleak: 1 goroutine leaked (budget 0)*",
            "*1 x [[]chan receive[]] main.(*eventsServer).Subscribe",
            "*frames that run it, from google.golang.org/grpc.(*Server).serverWorker",
            "    goleak_ignore = main.(*eventsServer).Subscribe",
        ]
    )
