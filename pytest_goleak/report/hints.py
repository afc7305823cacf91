"""The hints at the end of a failure report: how to ignore the leaked kind, and what a recent start may explain.

Rendered from what the check decided and found; nothing here reads the service.
"""

from __future__ import annotations

import json
import re
import tempfile
from fnmatch import fnmatchcase

from pytest_goleak import text
from pytest_goleak.judge import grpcgo
from pytest_goleak.judge.measures import FDS
from pytest_goleak.judge.startup import Startup
from pytest_goleak.judge.verdict import LeakedGroup, Verdict
from pytest_goleak.report.connections import fold, role_of

README_SECTION = "Waiting out start-up"

# Goroutines that every connection or RPC of a kind runs in: ignoring one by name would hide every leak of that
# kind. Each with what one of them is, for the hint that names something narrower instead.
CLASS_WIDE = (
    ("net/http.(*conn).serve", "the goroutine of every incoming HTTP connection"),
    ("net/http.(*persistConn).readLoop", "a goroutine of every outgoing HTTP connection of an http.Client"),
    ("net/http.(*persistConn).writeLoop", "a goroutine of every outgoing HTTP connection of an http.Client"),
    ("google.golang.org/grpc.*", "a goroutine grpc-go runs for every connection or RPC"),
    ("google.golang.org/grpc/*", "a goroutine grpc-go runs for every connection or RPC"),
    ("golang.org/x/net/http2.*", "a goroutine of every HTTP/2 connection"),
)
# Frames of the standard library and of those launchers: a handler is the outermost frame that is none of these.
_LIBRARY = (
    "runtime.",
    "internal/",
    "net.",
    "net/",
    "bufio.",
    "io.",
    "sync.",
    "syscall.",
    "context.",
    "time.",
    "os.",
    "crypto/",
    "google.golang.org/grpc",
    "golang.org/x/net/",
)


def class_wide(identity: str) -> str | None:
    """What every goroutine of ``identity`` is, if ignoring it would hide a whole class of leaks; else None."""
    return next((what for pattern, what in CLASS_WIDE if fnmatchcase(identity, pattern)), None)


def handler(group: LeakedGroup) -> str | None:
    """The outermost frame of ``group``'s stack that is the service's own code: the handler a launcher runs."""
    return next(
        (
            frame.function
            for frame in reversed(group.stack)
            if not frame.function.startswith(_LIBRARY)
            and not grpcgo.is_generated(frame.function)  # protoc-gen-go-grpc's shims: the method is further in
        ),
        None,
    )


def narrowest(group: LeakedGroup) -> str | None:
    """The narrowest pattern that ignores ``group``'s kind and not every connection or RPC; None if there is none.

    Ignore patterns match any frame of a stack, so a handler's name covers the
    goroutines running that handler and no other connection's.
    """
    if role_of(group) is not None:  # a connection's own goroutine: a frame of the user's in it (a net.Conn) is in all
        return None
    if class_wide(group.identity) is None:
        return group.identity
    return handler(group)


# What holds each side's gRPC connections, and how to let them go.
_CONNECTION_HOLDERS = {
    "server": "Close that client's channel: pytest_goleak.grpc_channel is closed before the after-reading, and a"
    ' session-scoped channel must have connected before the first test (see "gRPC" in pytest-goleak\'s README).',
    "client": "Close that ClientConn once the service is done with it, or keep one for the service's lifetime.",
}


def _held(groups: list[LeakedGroup]) -> list[str]:
    """What holds the class-wide goroutines no handler runs in: the lines that say so instead of an ignore line."""
    lines = []
    connections, rest = fold(groups)
    for side in connections:
        lines += [
            f"{side.goroutines} of these goroutines are grpc-go's for {side.what}: it runs them for every"
            " connection, so an ignore line for them would hide every such leak.",
            _CONNECTION_HOLDERS[side.side],
        ]
    if len(connections) == len(_CONNECTION_HOLDERS):
        lines.append(
            "A service that dials its own server holds both ends of one connection (its fds pair up above):"
            " closing its ClientConn frees both."
        )
    for identity in dict.fromkeys(group.identity for group in rest):
        if grpcgo.is_client_stream(identity):
            lines.append(
                f"{identity} is the goroutine of a gRPC client stream the service opened and never ended (an ignore"
                " line for it would hide every such leak): cancel the stream's context, or call RecvMsg until it"
                " returns an error; CloseSend alone does not end it."
            )
            continue
        lines.append(f"{identity} is {class_wide(identity)}: an ignore line for it would hide every such leak.")
        if identity == "net/http.(*conn).serve":
            lines.append(
                "No handler runs in it: it is an idle keep-alive connection a client left open (the test's, a"
                " fixture's, or a client in another process). Close that client; pytest_goleak.client is closed"
                " before the after-reading."
            )
        elif identity.startswith("net/http.(*persistConn)"):
            lines.append(
                "The service's own http.Client holds it: a response body it did not close, or an idle connection"
                " in its pool (Transport.CloseIdleConnections)."
            )
        else:
            lines.append(
                "No handler runs in it: a connection or stream a client left open holds it; close that client."
            )
    return lines


def literal(name: str) -> str:
    """A pattern that matches ``name``: ``[`` (Go's generics ``F[...]``, IPv6 ``[::1]``) is a class in patterns.

    A ``*`` is left as it is (``(*conn).serve`` reads better than ``([*]conn).serve``): it matches itself too.
    """
    return name.replace("[", "[[]").replace("?", "[?]")


def ignore_help(verdict: Verdict) -> str:
    """The end of a goroutine-leak report: the runtime's word on the leaked kinds, and the lines that ignore them.

    Empty when no goroutine group is reported. Per-resource state (a
    goroutine per alert group, per subscription) is growth the service means
    to keep, and these are the exact lines a user would otherwise have to
    work out from the report; a budget or a clean-up in the test is narrower.
    """
    if not verdict.leaked_groups:
        return ""
    count = sum(group.count for group in verdict.leaked_groups)
    proven = sum(group.proven for group in verdict.leaked_groups)
    narrow = {id(group): narrowest(group) for group in verdict.leaked_groups}
    names = list(dict.fromkeys(literal(name) for name in narrow.values() if name is not None))
    held = _held([group for group in verdict.leaked_groups if narrow[id(group)] is None])
    lines = []
    if proven:
        which = "it" if count == 1 else ("all of them" if proven == count else f"{proven} of these {count}")
        lines += [
            f"The Go runtime proved {which} leaked: nothing can ever wake {'it' if proven == 1 else 'them'}, so this"
            " is not state the service keeps.",
            "Fix the code rather than ignore it.",
        ]
    elif verdict.leak_profile:
        lines += [
            "The Go runtime's leak profile does not prove these leaked (it proves only goroutines nothing can reach):",
            "they may be state the service keeps per resource the test created, or a leak it cannot prove.",
        ]
    lines += held
    if not names:
        return "\n\n" + "\n".join(lines)
    lines += [
        "If they are state the service keeps on purpose, for a resource the test created, these lines ignore that",
        'kind (narrower: a budget on the test, or a clean-up in it; see "Stateful APIs" in pytest-goleak\'s README):',
    ]
    lines += _ignore_lines("ignore", names)
    return "\n\n" + text.lines(lines)


_TEMP = tempfile.gettempdir().rstrip("/") + "/"
# A socket's description, as read/procfs.py writes it: ``tcp 127.0.0.1:40312 -> 127.0.0.1:5432 ESTABLISHED``.
_SOCKET = re.compile(
    r"(?P<proto>(?:tcp|udp)6?) (?P<local>\S+?)(?::(?P<port>\d+))?(?: -> (?P<peer>\S+))?(?: (?P<state>\S+))?"
)


def fd_pattern(target: str, listening: tuple[int, ...] = ()) -> tuple[str | None, str]:
    """The narrowest ``goleak_ignore_fds`` pattern for one new fd's kind, or None and what holds it instead.

    A pattern is offered only where it leaves out that kind and not every fd
    of a class: files in one directory, connections to one peer. An incoming
    connection, a pipe or an unnamed socket has no such pattern.
    """
    if target.startswith("/"):
        folder, _, name = target.removesuffix(" (deleted)").rpartition("/")
        if folder.startswith(_TEMP):
            # A directory made for this run ({tmp}, TMPDIR) has another name next run: name the files instead.
            return "*/" + re.sub(r"\d+", "*", literal(name)), ""
        return f"{literal(folder)}/*", ""
    found = _SOCKET.fullmatch(target)
    if found is not None:
        proto, port, peer, state = found["proto"], found["port"], found["peer"], found["state"]
        peer_port = peer.rpartition(":")[2] if peer is not None else ""
        if state == "LISTEN" or (peer is None and proto.startswith("tcp")):
            return None, "A new listener is a server the test started and never closed (net.Listener.Close)."
        if port is not None and int(port) in listening:
            return None, (
                "A new connection to the service's own port is a client that left it open (the test's, a fixture's,"
                " another process's): close that client; an ignore line would hide every connection leak."
            )
        if peer_port.isdigit() and int(peer_port) in listening:
            return None, "A connection from the service to its own port: its own client keeps it (close the body)."
        if peer is not None:
            return f"{proto} * -> {literal(peer)} *", ""
        return None, "A new unconnected socket is one bound for the test and never closed."
    if target.startswith("unix /"):
        # The service's own socket path: its listener, and every connection a client made to it.
        return None, (
            "A new fd on the service's unix socket is a client that left its connection open: close that client;"
            " an ignore line would hide every connection leak."
        )
    if target.startswith(("pipe:", "unix ", "socket:")):
        kind = target.split(":", 1)[0].split(" ", 1)[0]
        return None, f"Nothing tells one {kind} fd from another: an ignore line for them would hide every such leak."
    if target.startswith("anon_inode:"):
        return literal(target), ""  # one kind: an inotify, an eventfd, a timerfd
    return None, f"{target} is no kind a pattern can name."


def _ignore_lines(knob: str, patterns: list[str]) -> list[str]:
    """The ini lines and the marker that set ``knob`` to ``patterns``, as a user copies them."""
    if len(patterns) == 1:
        lines = [f"    goleak_{knob} = {patterns[0]}"]
    else:
        lines = [f"    goleak_{knob} =", *(f"        {pattern}" for pattern in patterns)]
    return [*lines, f"    @pytest.mark.goleak({knob}=[{', '.join(json.dumps(p) for p in patterns)}])"]


def fd_ignore_help(verdict: Verdict) -> str:
    """The end of an fd-leak report: the ``goleak_ignore_fds`` lines that leave out the new fds' kinds, if any."""
    if FDS not in verdict.over or not verdict.delta.new_fds:
        return ""
    found = [fd_pattern(target, verdict.listening) for _, target in verdict.delta.new_fds]
    patterns = list(dict.fromkeys(pattern for pattern, _ in found if pattern is not None))
    lines = list(dict.fromkeys(why for pattern, why in found if pattern is None))
    if patterns:
        lines += [
            "If these fds are state the service keeps on purpose (a cache's files, a pool's connections),",
            "these lines leave that kind out of the fd count:",
        ]
        lines += _ignore_lines("ignore_fds", patterns)
    return "\n\n" + text.lines(lines) if lines else ""


def startup_hint(startup: Startup, name: str, timeout: float, ready_url: str | None, answering: str | None) -> str:
    """Report text for the first test after a start that failed on the leak check.

    ``ready_url`` is the configured ready URL (if any); ``answering`` a
    common readiness path that answered 2xx just now (if any).
    """
    lines = [
        f"{name} had just started ({startup.after_start:.2f}s before this test): "
        "this was the first test after its start,",
        "so some of this growth may be start-up work still going on, not the test's.",
    ]
    if startup.quiet_for <= 0:
        lines.append("  The start-up wait is off (goleak_startup_quiet = 0).")
    elif startup.quiet:
        lines += [
            f"  It was quiet before this test: goroutines and fds unchanged over {startup.quiet_for:g}s "
            "(goleak_startup_quiet).",
            "  Start-up work that begins later than that is not waited for.",
        ]
    else:
        changing = ", ".join(startup.changing[:6]) + (", ..." if len(startup.changing) > 6 else "")
        lines.append(f"  It never became quiet: still changing when goleak_start_timeout ({timeout:g}s) ran out:")
        lines.append(f"  {changing}.")
    if ready_url is None and answering is not None:
        lines += [
            f"  {answering} answers 2xx. If it does so only once start-up is over, add this line to the ini file",
            "  and tests wait for it:",
            f"      goleak_ready_url = http://{{addr}}{answering}",
        ]
    else:
        if ready_url:
            lines.append(f"  It had answered goleak_ready_url ({ready_url}) before this test.")
        lines += [
            "  Give the service a warm-up: a session-scoped autouse fixture that waits until its start-up is over",
            f'  (see "{README_SECTION}" in pytest-goleak\'s README).',
        ]
    return text.lines(lines)
