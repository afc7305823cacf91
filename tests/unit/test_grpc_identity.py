"""gRPC as a service kind, on hand-built stacks: identity through grpc-go's launchers, connections, hints, settings.

The stacks are the shapes grpc-go 1.85 shows (``tests/goapps/grpcevents``),
and the older ones (``serveStreams.func1.2``, ``processStreamingRPC``) that
real services still run.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from corefakes import IDLE, profile, snapshot

from pytest_goleak.errors import ConfigError
from pytest_goleak.judge.budget import Budget
from pytest_goleak.judge.diff import Delta, diff
from pytest_goleak.judge.identity import identity
from pytest_goleak.judge.measures import GOROUTINES, MEASURES
from pytest_goleak.judge.verdict import LeakedGroup, Verdict
from pytest_goleak.read.pprof import Frame, Stack
from pytest_goleak.report.failure import render
from pytest_goleak.report.hints import ignore_help
from pytest_goleak.service.attached import AttachedService
from pytest_goleak.service.config import Placeholders, ServiceConfig

G = "google.golang.org/grpc"
T = f"{G}/internal/transport"


def _stack(*functions: str) -> Stack:
    """Innermost first, as profiles list it, ending in runtime.goexit."""
    return tuple(Frame(function, "x.go", 1) for function in (*functions, "runtime.goexit"))


# grpc-go 1.85, two chained stream interceptors of the service's own (main.logStream, main.measureStream).
STREAM_CHAIN = (
    "main.measureStream",
    f"{G}.getChainStreamHandler.func1",
    "main.logStream",
    f"{G}.NewServer.chainStreamServerInterceptors.chainStreamInterceptors.func2",
    f"{G}.(*Server).processRPC",
    f"{G}.(*Server).handleStream",
    f"{G}.(*Server).serveStreams.func2.1",
)
SUBSCRIBE = _stack(
    "runtime.gopark",
    "runtime.chanrecv2",
    "main.(*eventsServer).Subscribe",
    "main._Events_Subscribe_Handler",
    *STREAM_CHAIN,
)
FLOOD = _stack(
    "runtime.gopark",
    "runtime.selectgo",
    f"{T}.(*writeQuota).get",
    f"{T}.(*http2Server).write",
    f"{G}.(*serverStream).SendMsg",
    "main.(*eventsServer).Flood",
    "main._Events_Flood_Handler",
    *STREAM_CHAIN,
)
# An older grpc-go, a generated package of its own, no interceptor.
OLD_STREAM = _stack(
    "runtime.gopark",
    "example.com/events.(*service).Subscribe",
    "example.com/events/api._Events_Subscribe_Handler",
    f"{G}.(*Server).processStreamingRPC",
    f"{G}.(*Server).handleStream",
    f"{G}.(*Server).serveStreams.func1.2",
)
# A unary handler behind two interceptors: the shim passes its .func1 (calling the method) down the chain.
UNARY = _stack(
    "runtime.gopark",
    "main.(*store).Get",
    "main._Store_Get_Handler.func1",
    "main.measureUnary",
    f"{G}.getChainUnaryHandler.func1",
    "main.logUnary",
    f"{G}.chainUnaryInterceptors.func1",
    "main._Store_Get_Handler",
    f"{G}.(*Server).processUnaryRPC",
    f"{G}.(*Server).handleStream",
    f"{G}.(*Server).serveStreams.func1.2",
)
SERVER_READER = _stack(
    "internal/poll.runtime_pollWait",
    f"{T}.(*framer).readFrame",
    f"{T}.(*http2Server).HandleStreams",
    f"{G}.(*Server).serveStreams",
    f"{G}.(*Server).handleRawConn.func1",
)
SERVER_WRITER = _stack(f"{T}.(*controlBuffer).get", f"{T}.(*loopyWriter).run", f"{T}.NewServerTransport.func3")
SERVER_KEEPALIVE = _stack("runtime.selectgo", f"{T}.(*http2Server).keepalive")
CLIENT_READER = _stack("internal/poll.runtime_pollWait", f"{T}.(*framer).readFrame", f"{T}.(*http2Client).reader")
CLIENT_WRITER = _stack(f"{T}.(*controlBuffer).get", f"{T}.(*loopyWriter).run", f"{T}.NewHTTP2Client.func6")
SERIALIZER = _stack("runtime.chanrecv1", f"{G}/internal/grpcsync.(*CallbackSerializer).run")
CLIENT_STREAM = _stack("runtime.selectgo", f"{G}.newClientStreamWithParams.func4")


@pytest.mark.parametrize(
    ("stack", "expected"),
    [
        pytest.param(SUBSCRIBE, "main.(*eventsServer).Subscribe", id="stream-through-interceptors"),
        pytest.param(FLOOD, "main.(*eventsServer).Flood", id="blocked-in-SendMsg"),
        pytest.param(OLD_STREAM, "example.com/events.(*service).Subscribe", id="older-grpc-go"),
        pytest.param(UNARY, "main.(*store).Get", id="unary-through-interceptors"),
        # Still reading its request in the shim: named by the shim, which names the method too.
        pytest.param(
            _stack(f"{G}.(*serverStream).RecvMsg", "main._Events_Subscribe_Handler", *STREAM_CHAIN),
            "main._Events_Subscribe_Handler",
            id="in-the-shim",
        ),
        # No shim (a hand-written handler, UnknownServiceHandler): the first frame that is not grpc-go's.
        pytest.param(
            _stack(
                "main.proxy",
                f"{G}.(*Server).processStreamingRPC",
                f"{G}.(*Server).handleStream",
                f"{G}.(*Server).serveStreams.func1.2",
            ),
            "main.proxy",
            id="no-shim",
        ),
        # A worker of the NumStreamWorkers pool runs handlers too.
        pytest.param(
            _stack(
                "main.(*service).Watch",
                "main._Svc_Watch_Handler",
                f"{G}.(*Server).processStreamingRPC",
                f"{G}.(*Server).handleStream",
                f"{G}.(*Server).serveStreams.func1.1",
                f"{G}.(*Server).serverWorker",
            ),
            "main.(*service).Watch",
            id="stream-worker",
        ),
        # Not yet in the service's code: the launcher it is.
        pytest.param(
            _stack(f"{G}.(*Server).handleStream", f"{G}.(*Server).serveStreams.func2.1"),
            f"{G}.(*Server).serveStreams.func2.1",
            id="not-in-a-handler-yet",
        ),
        # A connection's goroutines are not launchers: they keep their own names.
        pytest.param(SERVER_READER, f"{G}.(*Server).handleRawConn.func1", id="connection-reader"),
    ],
)
def test_identity_looks_through_grpc_launchers_to_the_handler(stack: Stack, expected: str) -> None:
    assert identity(stack) == expected


def test_two_handlers_behind_one_launcher_are_two_identities() -> None:
    """Ending one stream does not hide the leak of another: they are told apart by their handlers."""
    before = profile((1, SUBSCRIBE))
    after = profile((1, FLOOD))
    delta = diff(snapshot(goroutines=before), snapshot(goroutines=after))
    assert [(g.identity, g.leaked) for g in delta.goroutines] == [("main.(*eventsServer).Flood", 1)]


def _verdict(*groups: LeakedGroup) -> Verdict:
    total = sum(group.count for group in groups)
    delta = Delta(grew={m.name: (total if m is GOROUTINES else None) for m in MEASURES})
    phrase = (GOROUTINES.phrase(total, 0),)
    return Verdict(snapshot(), snapshot(goroutines=IDLE), delta, phrase, Budget(), (GOROUTINES,), leaked_groups=groups)


def _group(count: int, stack: Stack, state: str = "select") -> LeakedGroup:
    return LeakedGroup(count, identity(stack), state, stack, None)


def _server_connections(count: int = 1) -> tuple[LeakedGroup, ...]:
    """The groups ``count`` open connections leave in a grpc-go server, as the evidence gathers them."""
    return (_group(count, SERVER_READER, "IO wait"), _group(count, SERVER_WRITER), _group(count, SERVER_KEEPALIVE))


def test_a_connections_goroutines_are_reported_as_one_connection() -> None:
    text = render(_verdict(*_server_connections(), _group(1, SUBSCRIBE, "chan receive")))
    lines = text.splitlines()
    assert lines[2] == "leaked goroutines (4 in 2 groups):"
    assert lines[3] == "  a gRPC connection a client left open: 3 goroutines grpc-go runs for it"
    assert lines[4] == f"        1 x [IO wait] {G}.(*Server).handleRawConn.func1 (reads its frames)"
    assert lines[5] == f"        1 x [select] {T}.NewServerTransport.func3 (writes its frames)"
    assert lines[6] == f"        1 x [select] {T}.(*http2Server).keepalive (keepalive)"
    assert lines[7] == "  1 x [chan receive] main.(*eventsServer).Subscribe"
    # The handler's own frames, not grpc-go's seven around it, fill the lines a stack gets.
    assert [line.strip() for line in lines[8:]] == [
        "runtime.gopark",
        "x.go:1",
        "runtime.chanrecv2",
        "x.go:1",
        "main.(*eventsServer).Subscribe",
        "x.go:1",
        f"... 8 frames that run it, from {G}.(*Server).serveStreams.func2.1",
    ]


def test_a_recursive_function_a_goroutine_started_in_keeps_its_frames() -> None:
    """Only frames outside a goroutine's identity are folded, not those of a recursion inside it."""
    recursion = _stack("runtime.gopark", *["main.descend"] * 6)
    text = render(_verdict(_group(1, recursion)))
    assert "frames that run it" not in text
    assert "... 5 more frames of main.descend (recursion)" in text


def test_connections_are_counted_by_their_readers_per_side() -> None:
    text = render(
        _verdict(
            *_server_connections(2),
            _group(1, CLIENT_READER, "IO wait"),
            _group(1, CLIENT_WRITER),
            _group(3, SERIALIZER, "chan receive"),
        )
    )
    assert "  2 gRPC connections a client left open: 6 goroutines grpc-go runs for them" in text
    assert (
        "  a gRPC connection the service dialled and left open (a grpc.ClientConn it never closed): 5 goroutines"
        in text
    )
    assert "leaked goroutines (11 in 2 groups):" in text


def test_an_older_grpc_gos_connection_is_one_connection_too() -> None:
    """etcd 3.4's grpc-go: the writer starts in newHTTP2Server.func2, handlers in serveStreams.func1.2."""
    writer = _stack(f"{T}.(*controlBuffer).get", f"{T}.(*loopyWriter).run", f"{T}.newHTTP2Server.func2")
    text = render(_verdict(_group(1, SERVER_READER, "IO wait"), _group(1, writer), _group(1, SERVER_KEEPALIVE)))
    assert "leaked goroutines (3 in 1 group):" in text
    assert f"1 x [select] {T}.newHTTP2Server.func2 (writes its frames)" in text


def test_a_connection_whose_reader_is_gone_is_still_one_connection() -> None:
    text = render(_verdict(_group(1, SERVER_WRITER), _group(1, SERVER_KEEPALIVE)))
    assert "  a gRPC connection a client left open: 2 goroutines grpc-go runs for it" in text


def _ignore_lines(text: str) -> str:
    return text.split("these lines ignore that")[1] if "these lines ignore that" in text else ""


def test_hints_name_the_handler_never_grpc_go() -> None:
    text = ignore_help(_verdict(_group(1, SUBSCRIBE, "chan receive"), _group(1, UNARY)))
    assert "    goleak_ignore =\n        main.(*eventsServer).Subscribe\n        main.(*store).Get" in text
    assert G not in _ignore_lines(text)
    assert "serveStreams" not in text


def test_hints_say_what_holds_a_connection_instead_of_an_ignore_line() -> None:
    text = ignore_help(_verdict(*_server_connections()))
    assert "goleak_ignore" not in text and "ignore=[" not in text
    assert "3 of these goroutines are grpc-go's for a gRPC connection a client left open" in text
    assert "pytest_goleak.grpc_channel is closed before the after-reading" in text


def test_hints_say_what_holds_a_client_stream_and_a_client_connection() -> None:
    text = ignore_help(
        _verdict(_group(1, CLIENT_STREAM), _group(1, CLIENT_READER), _group(1, CLIENT_WRITER), _group(1, SUBSCRIBE))
    )
    assert f"{G}.newClientStreamWithParams.func4 is the goroutine of a gRPC client stream the service opened" in text
    assert "Close that ClientConn" in text
    assert "holds both ends" not in text  # no server side here
    assert "    goleak_ignore = main.(*eventsServer).Subscribe" in text
    assert G not in _ignore_lines(text)


def test_both_ends_of_a_connection_in_one_service_are_said_to_be_one_connection() -> None:
    text = ignore_help(_verdict(*_server_connections(), _group(1, CLIENT_READER), _group(1, CLIENT_WRITER)))
    assert "A service that dials its own server holds both ends of one connection" in text


def test_a_users_frame_in_a_connection_goroutine_is_no_ignore_line() -> None:
    """A net.Conn wrapper of the service's is in every connection's reader: ignoring it would hide them all."""
    reader = _stack("main.(*meteredConn).Read", *(frame.function for frame in SERVER_READER[1:-1]))
    text = ignore_help(_verdict(_group(1, reader, "IO wait")))
    assert "goleak_ignore" not in text


# The channel's address: goleak_grpc_port


def _config(**fields: object) -> ServiceConfig:
    return ServiceConfig(binary=Path("/bin/true"), **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("grpc_port", "args", "port_of"),
    [
        ("", "-addr {addr}", "port"),
        ("grpc", "-addr {addr} -grpc 127.0.0.1:{port_grpc}", "port_grpc"),
        ("port_grpc", "-addr {addr} -grpc 127.0.0.1:{port_grpc}", "port_grpc"),
        ("{port_grpc}", "-addr {addr} -grpc 127.0.0.1:{port_grpc}", "port_grpc"),
    ],
)
def test_the_grpc_port_is_the_main_one_or_a_named_one(tmp_path: Path, grpc_port: str, args: str, port_of: str) -> None:
    placeholders = Placeholders(tmp_path, str(tmp_path))
    target = _config(grpc_port=grpc_port, args=args).grpc_target(placeholders)
    assert target == f"127.0.0.1:{placeholders[port_of]}"


def test_a_grpc_port_number_is_dialled_as_it_is(tmp_path: Path) -> None:
    assert _config(grpc_port="50051").grpc_target(Placeholders(tmp_path, str(tmp_path))) == "127.0.0.1:50051"


@pytest.mark.parametrize(
    ("grpc_port", "message"),
    [
        ("grpc", r"names \{port_grpc\}, which neither .* passes to the service; add it there"),
        ("70000", "is not a port number"),
        ("a-b", "is neither a port number nor a port's name"),
    ],
)
def test_a_grpc_port_that_cannot_be_dialled_is_refused_when_configured(grpc_port: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _config(grpc_port=grpc_port)


def test_an_attached_service_dials_its_own_port_or_the_one_given() -> None:
    assert AttachedService("http://127.0.0.1:6060").grpc_target == "127.0.0.1:6060"
    assert AttachedService("http://127.0.0.1:6060", grpc_port="2379").grpc_target == "127.0.0.1:2379"
    with pytest.raises(ConfigError, match="give the attached service's gRPC port number"):
        AttachedService("http://127.0.0.1:6060", grpc_port="grpc")


def test_without_grpcio_the_channel_fails_in_one_line_naming_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_goleak.handle import GoleakHandle

    monkeypatch.setitem(sys.modules, "grpc", None)  # what `import grpc` finds when grpcio is not installed
    handle = GoleakHandle.__new__(GoleakHandle)
    handle._channel = None
    with pytest.raises(pytest.fail.Exception) as failed:
        handle.grpc_channel  # noqa: B018
    assert str(failed.value) == (
        "pytest_goleak.grpc_channel needs grpcio, which is not installed: pip install pytest-goleak[grpc]"
    )
    assert not failed.value.pytrace
