"""grpc-go's goroutines: the launchers that run a service's handlers, and the goroutines of one connection.

grpc-go runs every RPC in a goroutine of its own (``go f()`` in
``(*Server).serveStreams``, or a ``serverWorker`` of a pool), which goes
through ``handleStream``, the interceptor chain and the generated
``_Svc_Method_Handler`` before it reaches the service's method: the function a
user would fix, and the one a leak is named by. Each connection, accepted or
dialled, costs a fixed set of goroutines that live as long as it is open; they
are one thing left open, not several leaks.

Names are matched as patterns: grpc-go renumbers its closures between releases
(``serveStreams.func1.2`` in 1.6x, ``serveStreams.func2.1`` in 1.8x).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

GRPC = "google.golang.org/grpc"

# Goroutines that start in one of these run a handler further in.
HANDLER_LAUNCHERS = (
    f"{GRPC}.(*Server).serveStreams.func*",
    f"{GRPC}.(*Server).serverWorker",
    f"{GRPC}.(*Server).serverWorker.func*",
)
# protoc-gen-go-grpc's shims between grpc-go and the service (the unary one passes its .func1 to the interceptors).
GENERATED = ("*._*_Handler", "*._*_Handler.func*")


def is_grpc(function: str) -> bool:
    """Whether ``function`` is grpc-go's own (any of its packages)."""
    return function.startswith((f"{GRPC}.", f"{GRPC}/"))


def is_generated(function: str) -> bool:
    return any(fnmatchcase(function, pattern) for pattern in GENERATED)


def launches_handler(function: str) -> bool:
    return any(fnmatchcase(function, pattern) for pattern in HANDLER_LAUNCHERS)


def handler_of(inward: Sequence[str]) -> str | None:
    """The function a grpc-go launcher runs, from the frames inside it (outermost first); None if none yet.

    The method inside the innermost generated shim, past the interceptors
    (which run every RPC, so they name none); with no shim (a hand-written
    handler, ``UnknownServiceHandler``), the first frame that is not grpc-go's.
    A goroutine still in the shim (reading the request) is named by the shim.
    """
    shims = [index for index, function in enumerate(inward) if is_generated(function)]
    if shims:
        inner = shims[-1] + 1
        if inner < len(inward) and not is_grpc(inward[inner]):
            return inward[inner]
        return inward[shims[-1]]
    return next((function for function in inward if not is_grpc(function)), None)


@dataclass(frozen=True)
class Role:
    """One of the goroutines grpc-go runs for each open connection."""

    side: str  # "server" (an accepted connection) or "client" (one the service dialled)
    what: str  # what it does, for the report
    marks: tuple[str, ...]  # frames (patterns) any of which makes a goroutine this one
    counts: bool = False  # exactly one per connection: the role that says how many connections there are
    per_connection: bool = True  # False: one or more per ClientConn, whatever its connections


TRANSPORT = f"{GRPC}/internal/transport"
ROLES = (
    Role(
        "server",
        "reads its frames",
        (f"{TRANSPORT}.(*http2Server).HandleStreams", f"{GRPC}.(*Server).serveStreams"),
        True,
    ),
    # newHTTP2Server and newHTTP2Client in older grpc-go (etcd 3.4's).
    Role("server", "writes its frames", (f"{TRANSPORT}.NewServerTransport.func*", f"{TRANSPORT}.newHTTP2Server.func*")),
    Role("server", "keepalive", (f"{TRANSPORT}.(*http2Server).keepalive",)),
    Role("client", "reads its frames", (f"{TRANSPORT}.(*http2Client).reader",), True),
    Role("client", "writes its frames", (f"{TRANSPORT}.NewHTTP2Client.func*", f"{TRANSPORT}.newHTTP2Client.func*")),
    Role("client", "keepalive", (f"{TRANSPORT}.(*http2Client).keepalive",)),
    # A ClientConn's own queues (resolver, balancer): as many per ClientConn as per connection it dialled.
    Role(
        "client",
        "runs its ClientConn's callbacks",
        (f"{GRPC}/internal/grpcsync.(*CallbackSerializer).run",),
        per_connection=False,
    ),
)


def role(identity: str, functions: Sequence[str]) -> Role | None:
    """The connection role of a goroutine named ``identity`` whose frames are ``functions``; None if it has none.

    Only goroutines grpc-go started itself: a handler's goroutine is a stream's, not the connection's.
    """
    if not is_grpc(identity):
        return None
    return next(
        (r for r in ROLES if any(fnmatchcase(f, mark) for f in functions for mark in r.marks)),
        None,
    )


# A client stream's own goroutine: it ends when the stream ends, so one left means a stream the service never ended.
CLIENT_STREAM = f"{GRPC}.newClientStreamWithParams.func*"


def is_client_stream(identity: str) -> bool:
    return fnmatchcase(identity, CLIENT_STREAM)
