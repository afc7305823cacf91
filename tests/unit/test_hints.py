"""The ignore hint names the narrowest pattern for the leaked kind, never one that hides every connection or RPC."""

from __future__ import annotations

import tempfile
from fnmatch import fnmatchcase

from corefakes import snapshot

from pytest_goleak.judge.budget import Budget
from pytest_goleak.judge.diff import Delta
from pytest_goleak.judge.measures import FDS, GOROUTINES, MEASURES
from pytest_goleak.judge.verdict import LeakedGroup, Verdict
from pytest_goleak.read.pprof import Frame
from pytest_goleak.report.hints import fd_ignore_help, fd_pattern, ignore_help, narrowest

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


def _fd_help(*targets: str, listening: tuple[int, ...] = (8080,)) -> str:
    delta = Delta(
        grew={m.name: None for m in MEASURES},
        goroutine_total=0,
        new_fds=tuple(enumerate(targets, start=10)),
    )
    verdict = Verdict(snapshot(), snapshot(), delta, ("x",), Budget(), (FDS,), listening=listening)
    return fd_ignore_help(verdict)


def test_new_files_and_outgoing_connections_get_goleak_ignore_fds_lines() -> None:
    text = _fd_help(
        "/var/lib/tsdb/wal/00001.wal",
        "/var/lib/tsdb/wal/00002.wal",
        "tcp 127.0.0.1:40312 -> 127.0.0.1:5432 ESTABLISHED",
    )
    assert "    goleak_ignore_fds =\n        /var/lib/tsdb/wal/*\n        tcp * -> 127.0.0.1:5432 *\n" in text
    assert '@pytest.mark.goleak(ignore_fds=["/var/lib/tsdb/wal/*", "tcp * -> 127.0.0.1:5432 *"])' in text


def test_an_incoming_connection_or_a_pipe_gets_no_ignore_line_but_what_holds_it() -> None:
    text = _fd_help(
        "tcp 127.0.0.1:8080 -> 127.0.0.1:51234 ESTABLISHED", "pipe:[4242]", "pipe:[4243]", "unix /tmp/t/api.sock"
    )
    assert "goleak_ignore_fds" not in text and "ignore_fds=" not in text
    assert "a client that left it open" in text and "the service's unix socket" in text
    assert text.count("Nothing tells one pipe fd from another") == 1


def test_the_patterns_match_the_fds_they_were_made_from() -> None:
    for target in (
        "/data/cache/blob-1 (deleted)",
        "tcp6 [::1]:41000 -> [::1]:6379 ESTABLISHED",
        "anon_inode:[eventfd]",
    ):
        pattern, _ = fd_pattern(target, (8080,))
        assert pattern is not None and fnmatchcase(target, pattern), (target, pattern)


def test_a_report_without_an_fd_leak_gets_no_fd_hint() -> None:
    delta = Delta(grew={m.name: None for m in MEASURES}, goroutine_total=0, new_fds=((3, "/x/y"),))
    assert fd_ignore_help(Verdict(snapshot(), snapshot(), delta, ("x",), Budget(), (GOROUTINES,))) == ""


def test_a_file_in_a_directory_made_for_this_run_is_named_by_its_file_not_its_directory() -> None:
    target = f"{tempfile.gettempdir()}/pytest-of-ci/pytest-7/goleak0/svc-k2j4/upload-438682568.part"
    assert fd_pattern(target) == ("*/upload-*.part", "")
    assert fnmatchcase(target.replace("438682568", "12"), "*/upload-*.part")


def test_a_connection_from_the_service_to_its_own_port_gets_no_ignore_line() -> None:
    text = _fd_help("tcp 127.0.0.1:46352 -> 127.0.0.1:8080 ESTABLISHED")
    assert "goleak_ignore_fds" not in text and "to its own port" in text
