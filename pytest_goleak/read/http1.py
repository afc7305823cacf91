"""One HTTP/1.1 answer read from a connection's buffered reader: its status line, headers and body.

What ``read/keepalive.py`` reads every answer with. It is the part of
``http.client.HTTPResponse`` a GET needs (a length, chunks, or a body that ends
with the connection), without its header parser: that one builds an
``email.message`` per answer, a third of what reading a small profile cost. Every
line and the head as a whole are bounded, so a service cannot grow pytest
with them; a body is bounded by its caller. Its errors are ``http.client``'s,
which the connection already turns into the plugin's own.
"""

from __future__ import annotations

import http.client
from dataclasses import dataclass
from typing import IO

_MAX_LINE = 64 << 10  # a status line, a header or a chunk's size line
_MAX_HEAD = 256 << 10  # the status line and every header together
_INFORMATIONAL = 8  # 1xx answers skipped before the real one: net/http sends one at most


@dataclass(frozen=True, slots=True)
class Head:
    """What the status line and headers of an answer say."""

    status: int
    length: int | None  # Content-Length; None for chunks, or a body that ends with the connection
    chunked: bool
    closing: bool  # the service closes the connection after this answer


def _line(file: IO[bytes], what: str) -> bytes:
    line = file.readline(_MAX_LINE + 1)
    if len(line) > _MAX_LINE:
        raise http.client.LineTooLong(what)
    return line


def read_head(file: IO[bytes]) -> Head:
    """Read one answer's status line and headers (1xx answers before it skipped)."""
    for _ in range(_INFORMATIONAL):
        head = _read_one_head(file)
        if not 100 <= head.status < 200:
            return head
    raise http.client.HTTPException(f"more than {_INFORMATIONAL} informational (1xx) answers in a row")


def _read_one_head(file: IO[bytes]) -> Head:
    status_line = _line(file, "status line")
    if not status_line:
        raise http.client.RemoteDisconnected("the service closed the connection without an answer")
    version, _, rest = status_line.partition(b" ")
    code = rest[:3]
    if version not in (b"HTTP/1.1", b"HTTP/1.0") or len(code) != 3 or not code.isdigit():
        raise http.client.BadStatusLine(status_line[:80].decode("latin-1"))
    length: int | None = None
    chunked = False
    closing = version == b"HTTP/1.0"
    size = len(status_line)
    while (line := _line(file, "header")) not in (b"\r\n", b"\n"):
        size += len(line)
        if not line:
            raise http.client.IncompleteRead(b"")  # the connection ended in the headers
        if size > _MAX_HEAD:
            raise http.client.LineTooLong("headers")
        name, _, value = line.partition(b":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == b"content-length":
            if not value.isdigit() or len(value) > 20:
                raise http.client.HTTPException(f"bad Content-Length {value[:40]!r}")
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = value.endswith(b"chunked")
        elif name == b"connection":
            closing = b"close" in value or (closing and b"keep-alive" not in value)
    status = int(code)
    if chunked:
        length = None
    elif status in (204, 304) or 100 <= status < 200:
        length = 0
    return Head(status, length, chunked, closing or (length is None and not chunked))


def read_body(file: IO[bytes], head: Head, limit: int) -> bytearray:
    """The answer's body, read to its end, or its first ``limit + 1`` bytes where it is longer.

    A body of more than ``limit`` bytes is left half-read: the caller refuses it and closes the connection.
    """
    if head.chunked:
        return _chunks(file, limit)
    if head.length is None:  # it ends with the connection
        return bytearray(file.read(limit + 1))
    body = bytearray(file.read(min(head.length, limit + 1)))
    if len(body) < min(head.length, limit + 1):
        raise http.client.IncompleteRead(bytes(body), head.length - len(body))
    return body


def _chunks(file: IO[bytes], limit: int) -> bytearray:
    body = bytearray()
    while True:
        line = _line(file, "chunk size")
        size_text = line.split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise http.client.IncompleteRead(bytes(body)) from None  # cut off, or not chunks at all
        if size == 0:
            break
        if size > limit - len(body):  # the last chunk read: a byte past the limit says it is over
            body += file.read(limit + 1 - len(body))
            if len(body) <= limit:
                raise http.client.IncompleteRead(bytes(body))
            return body
        chunk = file.read(size + 2)  # its data and the CRLF that ends it, in one read
        if len(chunk) < size + 2 or chunk[size:] != b"\r\n":
            raise http.client.IncompleteRead(bytes(body + chunk[:size]))
        body += memoryview(chunk)[:size]
    for _ in range(_MAX_HEAD // 2):  # trailers, then the blank line that ends the answer
        if _line(file, "trailer") in (b"\r\n", b"\n", b""):
            return body
    raise http.client.LineTooLong("trailers")
