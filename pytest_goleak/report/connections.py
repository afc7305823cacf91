"""grpc-go's per-connection goroutines, folded into the connections they serve.

An open connection costs a grpc-go server three goroutines (reading frames,
writing frames, keepalive), and a client two or more: a report that listed
them as unrelated leaks would send a reader after three causes where there is
one, a connection someone left open.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pytest_goleak.judge import grpcgo
from pytest_goleak.judge.verdict import LeakedGroup

# What a connection of each side is, for the report's line and the hint.
SIDES = {
    "server": "a gRPC connection a client left open",
    "client": "a gRPC connection the service dialled and left open (a grpc.ClientConn it never closed)",
}


@dataclass(frozen=True)
class Connections:
    """The leaked goroutines of one side's connections: how many connections, and each role's groups."""

    side: str
    count: int
    groups: tuple[tuple[grpcgo.Role, LeakedGroup], ...]

    @property
    def goroutines(self) -> int:
        return sum(group.count for _, group in self.groups)

    @property
    def what(self) -> str:
        return SIDES[self.side]


def role_of(group: LeakedGroup) -> grpcgo.Role | None:
    return grpcgo.role(group.identity, [frame.function for frame in group.stack])


def fold(groups: Sequence[LeakedGroup]) -> tuple[list[Connections], list[LeakedGroup]]:
    """``groups`` as connections (server side first) and the groups that belong to none, in their order."""
    roles: dict[str, list[tuple[grpcgo.Role, LeakedGroup]]] = {side: [] for side in SIDES}
    rest = []
    for group in groups:
        role = role_of(group)
        if role is None:
            rest.append(group)
        else:
            roles[role.side].append((role, group))
    connections = []
    for side, found in roles.items():
        if found:
            counting = sum(group.count for role, group in found if role.counts)
            # With no reader left (it saw the close first), the most numerous role still says how many there were.
            count = counting or max((group.count for role, group in found if role.per_connection), default=1)
            connections.append(Connections(side, count, tuple(found)))
    return connections, rest
