"""The ignore hint names the narrowest pattern for the leaked kind, never one that hides every connection or RPC."""

from __future__ import annotations

from corefakes import snapshot

from pytest_goleak.judge.budget import Budget
from pytest_goleak.judge.diff import Delta
from pytest_goleak.judge.measures import GOROUTINES, MEASURES
from pytest_goleak.judge.verdict import LeakedGroup, Verdict
from pytest_goleak.read.pprof import Frame
from pytest_goleak.report.hints import ignore_help, narrowest

IDLE_CONN = (
    Frame("internal/poll.runtime_pollWait"),
    Frame("net.(*conn).Read"),
    Frame("net/http.(*connReader).Read"),
    Frame("bufio.(*Reader).Peek"),
    Frame("net/http.(*conn).serve"),
)
IN_HANDLER = (
    Frame("runtime.gopark"),
    Frame("runtime.chanrecv1"),
    Frame("main.(*api).subscribe"),
    Frame("net/http.HandlerFunc.ServeHTTP"),
    Frame("net/http.(*ServeMux).ServeHTTP"),
    Frame("net/http.serverHandler.ServeHTTP"),
    Frame("net/http.(*conn).serve"),
)
GRPC_HANDLER = (
    Frame("runtime.gopark"),
    Frame("example.com/events.(*service).Subscribe"),
    Frame("example.com/events/api._Events_Subscribe_Handler"),
    Frame("google.golang.org/grpc.(*Server).processStreamingRPC"),
    Frame("google.golang.org/grpc.(*Server).handleStream"),
    Frame("google.golang.org/grpc.(*Server).serveStreams.func1.2"),
)
CREATOR = Frame("net/http.(*Server).Serve")


def _help(*groups: LeakedGroup) -> str:
    delta = Delta(grew={m.name: None for m in MEASURES}, goroutine_total=0)
    verdict = Verdict(snapshot(), snapshot(), delta, ("x",), Budget(), (GOROUTINES,), leaked_groups=tuple(groups))
    return ignore_help(verdict)


def test_an_idle_connection_gets_no_ignore_line_but_what_holds_it() -> None:
    text = _help(LeakedGroup(1, "net/http.(*conn).serve", "IO wait", IDLE_CONN, CREATOR))
    assert "goleak_ignore" not in text and "ignore=[" not in text
    assert "net/http.(*conn).serve is the goroutine of every incoming HTTP connection" in text
    assert "idle keep-alive connection a client left open" in text


def test_a_connection_blocked_in_a_handler_is_named_by_the_handler() -> None:
    group = LeakedGroup(1, "net/http.(*conn).serve", "chan receive", IN_HANDLER, CREATOR)
    assert narrowest(group) == "main.(*api).subscribe"
    text = _help(group)
    assert "    goleak_ignore = main.(*api).subscribe" in text
    assert "goleak_ignore = net/http" not in text


def test_a_grpc_launcher_is_named_by_its_handler() -> None:
    group = LeakedGroup(1, "google.golang.org/grpc.(*Server).serveStreams.func1.2", "select", GRPC_HANDLER, None)
    assert narrowest(group) == "example.com/events.(*service).Subscribe"  # past the generated shim
    assert "google.golang.org/grpc" not in _help(group).split("these lines ignore that")[1]


def test_an_ordinary_identity_keeps_its_own_name() -> None:
    worker = LeakedGroup(1, "main.worker", "chan send", (Frame("main.worker"),), Frame("main.start"))
    idle = LeakedGroup(1, "net/http.(*conn).serve", "IO wait", IDLE_CONN, CREATOR)
    text = _help(worker, idle)
    assert "    goleak_ignore = main.worker" in text
    assert "net/http.(*conn).serve is the goroutine of every incoming HTTP connection" in text
