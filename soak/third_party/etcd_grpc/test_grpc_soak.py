"""Debian's etcd 3.4 (its own grpc-go, older than 1.30) over gRPC: clean traffic through both kinds of channel.

Every test closes what it opens: a watch is cancelled, a lease revoked, a keep-alive stream ended. None may get a
leak verdict. The messages are encoded by hand (a few protobuf fields), so no generated code is needed.
"""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest


def _varint(value: int) -> bytes:
    out = b""
    while True:
        byte, value = value & 0x7F, value >> 7
        out += bytes([byte | (0x80 if value else 0)])
        if not value:
            return out


def _bytes(number: int, value: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(value)) + value


def _int(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def _first_int(message: bytes, number: int) -> int:
    """The first varint field ``number`` of a message whose fields before it are varints or bytes."""
    at = 0
    while at < len(message):
        key, at = _read_varint(message, at)
        if key & 7 == 0:
            value, at = _read_varint(message, at)
            if key >> 3 == number:
                return value
        else:
            length, at = _read_varint(message, at)
            at += length
    raise AssertionError(f"no field {number} in {message!r}")


def _read_varint(data: bytes, at: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at, shift = at + 1, shift + 7
        if not byte & 0x80:
            return value, at


def unary(channel: grpc.Channel, method: str, request: bytes) -> bytes:
    reply: bytes = channel.unary_unary(method)(request, timeout=10)
    return reply


@pytest.fixture(scope="session")
def session_channel(goleak_service) -> Iterator[grpc.Channel]:  # type: ignore[no-untyped-def]
    # Connected, and etcd has a leader, before the first test's before-reading.
    with grpc.insecure_channel(goleak_service.grpc_target) as channel:
        grpc.channel_ready_future(channel).result(timeout=30)
        channel.unary_unary("/etcdserverpb.KV/Put")(_bytes(1, b"warmup") + _bytes(2, b"1"), timeout=30)
        yield channel


@pytest.fixture(params=["per-test", "session"])
def channel(request: pytest.FixtureRequest, pytest_goleak, session_channel: grpc.Channel) -> grpc.Channel:  # type: ignore[no-untyped-def]
    return pytest_goleak.grpc_channel if request.param == "per-test" else session_channel


@pytest.mark.parametrize("round_", range(10))
def test_put_and_range(channel: grpc.Channel, round_: int) -> None:
    key = b"soak/%d" % round_
    unary(channel, "/etcdserverpb.KV/Put", _bytes(1, key) + _bytes(2, b"value"))
    assert key in unary(channel, "/etcdserverpb.KV/Range", _bytes(1, key))


@pytest.mark.parametrize("round_", range(5))
def test_watch_created_then_cancelled(channel: grpc.Channel, round_: int) -> None:
    events = channel.stream_stream("/etcdserverpb.Watch/Watch")(iter([_bytes(1, _bytes(1, b"soak/w%d" % round_))]))
    next(events)  # the watch's created response
    events.cancel()


@pytest.mark.parametrize("round_", range(5))
def test_lease_granted_kept_alive_and_revoked(channel: grpc.Channel, round_: int) -> None:
    lease = _first_int(unary(channel, "/etcdserverpb.Lease/LeaseGrant", _int(1, 60)), 2)  # TTL 60 s; its ID
    pings = channel.stream_stream("/etcdserverpb.Lease/LeaseKeepAlive")(iter([_int(1, lease)]))
    next(pings)
    pings.cancel()
    unary(channel, "/etcdserverpb.Lease/LeaseRevoke", _int(1, lease))
