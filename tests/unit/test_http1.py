"""Reading one HTTP/1.1 answer (``read/http1.py``): lengths, chunks, answers back to back, and what is refused."""

from __future__ import annotations

import http.client
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_goleak.read.http1 import Head, read_body, read_head


def _answers(*raw: bytes) -> io.BufferedReader:
    return io.BufferedReader(io.BytesIO(b"".join(raw)))


def _read(file: io.BufferedReader, limit: int = 1 << 20) -> tuple[Head, bytes]:
    head = read_head(file)
    return head, bytes(read_body(file, head, limit))


LENGTH = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"
CHUNKED = (
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n4;ext=1\r\ndefg\r\n0\r\nX-Trailer: 1\r\n\r\n"
)
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found"


def test_answers_back_to_back_are_each_read_whole_and_no_further() -> None:
    file = _answers(LENGTH, CHUNKED, NOT_FOUND)
    assert _read(file) == (Head(200, 5, False, False), b"hello")
    assert _read(file) == (Head(200, None, True, False), b"abcdefg")
    assert _read(file) == (Head(404, 9, False, False), b"not found")
    with pytest.raises(http.client.RemoteDisconnected):
        read_head(file)  # nothing more: the service closed the connection


@pytest.mark.parametrize(
    ("raw", "closing"),
    [
        (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", True),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", True),
        (b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", False),
        (b"HTTP/1.1 200 OK\r\n\r\n", True),  # no length, no chunks: the body ends with the connection
        (b"HTTP/1.1 204 No Content\r\n\r\n", False),
    ],
)
def test_an_answer_says_whether_the_connection_closes_after_it(raw: bytes, closing: bool) -> None:
    assert read_head(_answers(raw)).closing is closing


def test_a_body_that_ends_with_the_connection_is_read_to_its_end() -> None:
    assert _read(_answers(b"HTTP/1.1 200 OK\r\n\r\nto the end")) == (Head(200, None, False, True), b"to the end")


def test_informational_answers_before_the_real_one_are_skipped() -> None:
    assert _read(_answers(b"HTTP/1.1 100 Continue\r\n\r\n", LENGTH))[1] == b"hello"


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", http.client.IncompleteRead),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", http.client.IncompleteRead),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", http.client.IncompleteRead),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX\r\n", http.client.IncompleteRead),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", http.client.HTTPException),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 1e3\r\n\r\n", http.client.HTTPException),
        (b"HTTP/1.1 200 OK\r\nContent-Le", http.client.IncompleteRead),
        (b"HTTP/2 200\r\n\r\n", http.client.BadStatusLine),
        (b"<html>not http</html>\r\n", http.client.BadStatusLine),
        (b"HTTP/1.1 2x0 OK\r\n\r\n", http.client.BadStatusLine),
        (b"HTTP/1.1 200 OK\r\nX: " + b"a" * (70 << 10) + b"\r\n\r\n", http.client.LineTooLong),
        (b"HTTP/1.1 200 OK\r\n" + b"X: a\r\n" * 60_000 + b"\r\n", http.client.LineTooLong),
        (b"HTTP/1.1 100 Continue\r\n\r\n" * 9, http.client.HTTPException),
    ],
)
def test_a_broken_answer_is_refused_with_http_clients_errors(raw: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        _read(_answers(raw))


def test_a_body_over_the_limit_stops_one_byte_past_it() -> None:
    for raw in (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 100, CHUNKED):
        head = read_head(file := _answers(raw))
        assert len(read_body(file, head, 2)) == 3


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.integers(0, 200))
def test_any_bytes_give_an_answer_or_an_http_client_error(noise: bytes, cut: int) -> None:
    for raw in (noise, (LENGTH + CHUNKED)[:cut] + noise):
        try:
            _read(_answers(raw))
        except http.client.HTTPException:
            pass
