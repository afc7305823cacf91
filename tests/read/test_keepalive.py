"""The kept-alive pprof connection: pipelined requests, read in order, against a real Go server.

Both requests of a reading go out at once (``read/keepalive.py``). These tests let both answers arrive before the
first is read, make the service close the connection while idle or after an answer, and check that every answer
is the one its request asked for and that a connection the service closed is opened again, once.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pytest_goleak.errors import ServiceError
from pytest_goleak.read import keepalive
from pytest_goleak.read.keepalive import Connection
from pytest_goleak.read.pprof import MAX_GOROUTINE_TEXT, PprofClient, parse_goroutine_profile, parse_heap_profile
from pytest_goleak.read.snapshot import Snapshotter
from pytest_goleak.service.started import GoService


@pytest.fixture
def hostile(go_build: Callable[[str], Path], run_service: Callable[..., GoService]) -> Callable[..., GoService]:
    """Start the hostile service with ``flags``: real pprof, misbehaving only where a flag says."""
    binary = go_build("tests/goapps/hostile")

    def run(flags: str, **fields: object) -> GoService:
        return run_service(binary, args=f"-addr {{addr}} {flags}", **fields)

    return run


@pytest.fixture
def client_of() -> Iterator[Callable[[GoService], PprofClient]]:
    """A pprof client on a service, closed after the test."""
    clients: list[PprofClient] = []

    def make(service: GoService) -> PprofClient:
        clients.append(PprofClient(service.pprof_url, service.request_timeout))
        return clients[-1]

    yield make
    for client in clients:
        client.close()


def _local_port(connection: Connection) -> int:
    assert connection._sock is not None
    return int(connection._sock.getsockname()[1])


def test_pipelined_answers_that_arrived_together_are_each_their_own(
    hostile: Callable[[str], GoService], client_of: Callable[[GoService], PprofClient]
) -> None:
    service = hostile("")
    client = client_of(service)
    for _ in range(5):
        goroutines, heap, index = client.send_goroutines(), client.send_heap(), client.send("")
        time.sleep(0.1)  # all three answers are in the socket's buffer before the first is read
        profile = parse_goroutine_profile(client.body(goroutines, MAX_GOROUTINE_TEXT))
        assert profile.total > 0
        assert parse_heap_profile(client.body(heap)).live_bytes > 0
        assert client.goroutine_count(index) is not None


def test_a_connection_closed_while_idle_is_opened_again_with_every_pending_request(
    hostile: Callable[[str], GoService],
    client_of: Callable[[GoService], PprofClient],
) -> None:
    service = hostile("-idle 200ms")
    client = client_of(service)
    snapshotter = Snapshotter(client, service.pid)
    snapshotter.take()
    before = _local_port(client._connection)
    time.sleep(0.6)  # the service closes the idle connection
    reading = snapshotter.take()  # both requests went out on the closed connection: both are sent again
    assert reading.heap is not None and reading.goroutines.total > 0
    assert _local_port(client._connection) != before


def test_answers_are_read_in_the_order_sent(
    hostile: Callable[[str], GoService], client_of: Callable[[GoService], PprofClient]
) -> None:
    service = hostile("")
    client = client_of(service)
    first, second = client.send(""), client.send("cmdline")
    with pytest.raises(ServiceError, match="read out of order"):
        client.body(second)
    # Reading out of order closed the connection: neither answer is read as another's.
    with pytest.raises(ServiceError, match="read out of order or after the connection closed"):
        client.body(first)
    assert client.goroutine_count() is not None  # and the next request opens a new one


def test_a_service_that_closes_after_an_answer_gets_the_pending_requests_again(
    hostile: Callable[[str], GoService],
    client_of: Callable[[GoService], PprofClient],
) -> None:
    # The index page is answered with "Connection: close": the requests pipelined behind it, which the service
    # will never read, are sent again on a new connection, in order.
    service = hostile("-close /debug/pprof/")
    client = client_of(service)
    for _ in range(3):
        index, cmdline, heap = client.send(""), client.send("cmdline"), client.send_heap()
        assert client.goroutine_count(index) is not None
        assert b"hostile" in client.body(cmdline)
        assert parse_heap_profile(client.body(heap)).live_bytes > 0


def test_an_https_pprof_is_read_pipelined_over_tls(
    hostile: Callable[..., GoService],
    client_of: Callable[[GoService], PprofClient],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The service makes a certificate for 127.0.0.1; the plugin trusts it here as it trusts a CA's elsewhere.
    cert = tmp_path / "cert.pem"
    monkeypatch.setattr(keepalive, "ssl_context", lambda: ssl.create_default_context(cafile=str(cert)))
    service = hostile(f"-tls-cert {cert}", pprof_url="https://{addr}/debug/pprof/")
    client = client_of(service)
    reading = Snapshotter(client, service.pid).take()
    assert reading.heap is not None and reading.goroutines.total > 0
    assert isinstance(client._connection._sock, ssl.SSLSocket)


def test_an_https_pprof_whose_certificate_is_not_trusted_says_so(hostile: Callable[..., GoService]) -> None:
    with pytest.raises(ServiceError, match="CERTIFICATE_VERIFY_FAILED"):
        hostile("-tls-cert cert.pem", pprof_url="https://{addr}/debug/pprof/", start_timeout=1.0)
