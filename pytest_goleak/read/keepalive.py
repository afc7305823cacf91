"""One kept-alive HTTP/1.1 connection to a pprof endpoint, its requests pipelined.

Every reading fetches two profiles, so what a request costs is paid on every
test. The connection writes its GETs itself and may send one before the
previous answer is read (HTTP/1.1 pipelining, which ``net/http`` serves in
order): a reading asks for the goroutine profile and the heap profile at once,
and the service runs the heap's forced GC while the plugin still reads and
decodes the goroutines, with no round trip between the two. Every answer is
read (by ``read/http1.py``) from the one buffered reader of the connection: a
reader per answer, as ``http.client`` makes, would buffer the start of the
next answer and lose it.

A connection is opened on first use and kept; one that the service closed
while idle is opened again, once, and every request still unanswered on it is
sent again (a GET of a profile is safe to send twice).

Every answer is read within one deadline, status line, headers and body
together, however slowly the service writes: the connection's socket sets its
timeout to what is left of the deadline before each ``recv`` (a per-``recv``
timeout alone lets a service that drips a byte a second hold a read for hours).
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import io
import socket
import time
from collections import deque
from collections.abc import Callable
from types import TracebackType
from typing import IO, TYPE_CHECKING, NoReturn
from urllib.parse import urlencode, urlsplit

from pytest_goleak.errors import ProfileError, ServiceError, ServiceUnresponsive
from pytest_goleak.read.http import ssl_context
from pytest_goleak.read.http1 import Head, read_body, read_head

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer


_BUFFER = 256 << 10


class _DeadlinedReader(io.RawIOBase):
    """The socket as its buffered reader reads it: each ``recv`` waits at most until the answer's deadline.

    It holds its connection, whose ``deadline`` is set while an answer is read (see the module docstring).
    """

    def __init__(self, sock: socket.socket, connection: Connection) -> None:
        self._sock = sock
        self._connection = connection

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        deadline = self._connection.deadline
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            self._sock.settimeout(left)
        return self._sock.recv_into(buffer)


class Answer:
    """A request sent and not yet read: :meth:`read` waits for the answer's status and body.

    Answers on one connection are read in the order their requests were sent.
    """

    def __init__(self, connection: Connection, url: str, target: str, reused: bool) -> None:
        self._connection = connection
        self.url = url
        self.target = target
        self.reused = reused  # sent on a connection that carried a request before: the service may have closed it

    def read(self, limit: int, refuse: Callable[[int, bytes], NoReturn]) -> bytes:
        """The body of a 200 answer, at most ``limit`` bytes; ``refuse(status, body)`` raises for any other status."""
        status, body = self.receive(limit, over=self._too_long)
        if status != 200:
            refuse(status, body)
        return body

    def _too_long(self, limit: int) -> NoReturn:
        raise ProfileError(f"pprof {self.url} sent more than {limit >> 20} MiB; refusing it")

    def receive(self, limit: int, over: Callable[[int], NoReturn] | None = None) -> tuple[int, bytes]:
        """The answer's status and body, within the connection's timeout however slowly it comes.

        A body longer than ``limit`` bytes calls ``over(limit)``, which raises, or is cut at ``limit``
        (the connection then closed). Any status's body is read to its end, so that the connection stays
        usable: a new one would leave the service winding down the old one's goroutine and fd, where the
        next reading would count them.
        """
        connection = self._connection
        with connection.failing_as_unanswered(self.url, time.monotonic() + connection.timeout):
            head = connection.response_to(self)
            try:
                body = connection.body_of(head, limit)
            except ConnectionResetError:
                # A service that ends a connection with a pipelined request still unread on it resets it.
                raise http.client.IncompleteRead(b"") from None
            if len(body) > limit:
                if over is not None:
                    over(limit)
                connection.close()
                return head.status, bytes(body[:limit])
            connection.answered(self, closing=head.closing)
            return head.status, bytes(body)


class Connection:
    """One HTTP/1.1 connection to ``base_url``'s host (or to ``unix_socket``), opened on first use and kept alive."""

    def __init__(self, base_url: str, timeout: float, unix_socket: str | None = None) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not (parts.hostname or unix_socket):
            raise ServiceError(f"pprof URL {base_url} is not an http:// or https:// URL")
        self.timeout = timeout
        self._origin = f"{parts.scheme}://{parts.netloc}"
        self._https = parts.scheme == "https"
        self._host = parts.hostname or ""  # over a unix socket, "": an empty Host header
        default_port = 443 if self._https else 80
        self._port = parts.port or default_port
        self._path = parts.path
        self._unix_socket = unix_socket
        # The Host header as http.client writes it: the port only when it is not the scheme's own.
        host = f"[{self._host}]" if ":" in self._host else self._host
        self._host_header = host if self._port == default_port else f"{host}:{self._port}"
        self._sock: socket.socket | None = None
        self._file: IO[bytes] | None = None  # the socket's one buffered reader, every answer read from it
        self._pending: deque[Answer] = deque()  # sent and not yet read, in the order sent
        self._used = False  # whether the open connection carried a request already
        self.deadline: float | None = None  # while an answer is read: when it must have ended

    def get(self, path: str, params: dict[str, str | int] | None = None) -> Answer:
        """Send a GET of ``path`` (relative to the base URL); read the answer with :meth:`Answer.read`."""
        return self.request(self._path + path + (_query(tuple(params.items())) if params else ""))

    def request(self, target: str) -> Answer:
        """Send a GET of ``target`` (a path and query), whatever answers are still unread on this connection."""
        url = self._origin + target
        with self.failing_as_unanswered(url):
            answer = Answer(self, url, target, reused=self._sock is not None and self._used)
            self._send(answer)
        return answer

    def _send(self, answer: Answer) -> None:
        if self._sock is None:
            self._reopen()  # a first connection, or one after the service closed the last: what was pending goes first
        assert self._sock is not None
        sock = self._sock
        self._pending.append(answer)
        self._used = True
        try:
            sock.sendall(self._request_bytes(answer.target))
        except (ConnectionResetError, BrokenPipeError):
            if not answer.reused:
                raise
            # The service closed the connection. Reading the answers sent before this one finds out how far it got;
            # what it never answered is sent again then (response_to, answered).

    def _request_bytes(self, target: str) -> bytes:
        return f"GET {target} HTTP/1.1\r\nHost: {self._host_header}\r\nAccept-Encoding: identity\r\n\r\n".encode()

    def _open(self) -> socket.socket:
        # Connecting is bounded more tightly than answering: a service that is up accepts at once.
        connect = min(self.timeout, 2.0)
        if self._unix_socket is not None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.settimeout(connect)
                sock.connect(self._unix_socket)
            except BaseException:
                sock.close()
                raise
        else:
            sock = socket.create_connection((self._host, self._port), connect)
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # a GET goes out whole, at once
                if self._https:
                    sock = ssl_context().wrap_socket(sock, server_hostname=self._host)
            except BaseException:
                sock.close()
                raise
        sock.settimeout(self.timeout)
        # A large buffer: a heap profile of a few hundred KiB is then a few recv calls, not dozens.
        self._sock, self._file, self._used = sock, io.BufferedReader(_DeadlinedReader(sock, self), _BUFFER), False
        return sock

    def _reopen(self) -> None:
        """Open a new connection and send again, in order, every request still unanswered on the old one.

        A request the service refuses now (it closed this one too) fails when its answer is read: it is not sent
        a third time.
        """
        self._drop()
        sock = self._open()
        self._used = bool(self._pending)  # a request sent on it already: the next one is sent on a used connection
        for answer in self._pending:
            answer.reused = False
            with contextlib.suppress(ConnectionResetError, BrokenPipeError):
                sock.sendall(self._request_bytes(answer.target))

    def response_to(self, answer: Answer) -> Head:
        """``answer``'s status line and headers, read; its body is read next, with :meth:`body_of`."""
        if not self._pending or self._pending[0] is not answer:
            raise ServiceError(f"pprof {answer.url}: its answer was read out of order or after the connection closed")
        if self._sock is None:
            self._reopen()  # the service closed the connection after the answer before this one
        try:
            return read_head(self._reader())
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            if not answer.reused:
                raise
            # The service closed the idle connection before this request reached it: send it again.
            self._reopen()
            return read_head(self._reader())

    def body_of(self, head: Head, limit: int) -> bytearray:
        """The body of the answer whose ``head`` was just read (more than ``limit`` bytes: cut after one more)."""
        return read_body(self._reader(), head, limit)

    def _reader(self) -> IO[bytes]:
        assert self._file is not None
        return self._file

    def answered(self, answer: Answer, closing: bool) -> None:
        """``answer`` was read whole; ``closing``: the service said it closes the connection after it.

        Requests still pending on it are sent again on a new connection when the next is sent or read: a
        service that is gone by then fails that request, not the one it just answered.
        """
        self._pending.popleft()
        if closing:
            self._drop()

    def failing_as_unanswered(self, url: str, deadline: float | None = None) -> _Unanswered:
        """Turn a timeout or a broken connection into :class:`ServiceUnresponsive`; close on any failure.

        With ``deadline`` (``time.monotonic()``), every read of the socket meanwhile ends by then.
        A half-read answer would otherwise be read as the next request's.
        """
        return _Unanswered(self, url, deadline)

    def _drop(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def close(self) -> None:
        """Close the connection; an answer still unread on it can no longer be read."""
        self._drop()
        self._pending.clear()


class _Unanswered:
    """The guard :meth:`Connection.failing_as_unanswered` returns.

    A class, not a generator context manager: it wraps every request and every answer of every reading.
    """

    __slots__ = ("_connection", "_deadline", "_url")

    def __init__(self, connection: Connection, url: str, deadline: float | None) -> None:
        self._connection, self._url, self._deadline = connection, url, deadline

    def __enter__(self) -> None:
        self._connection.deadline = self._deadline

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, _: TracebackType | None) -> None:
        connection, url, timeout = self._connection, self._url, self._connection.timeout
        connection.deadline = None
        if error is None:
            return
        connection.close()
        if isinstance(error, TimeoutError):
            why = f"no answer within {timeout:g}s (status, headers and body together)"
            raise ServiceUnresponsive(f"service did not answer {url} within {timeout:g}s", why) from None
        if isinstance(error, http.client.IncompleteRead):
            why = f"the answer ended early ({error})"
            raise ServiceUnresponsive(f"service ended its answer to {url} early: {error}", why) from None
        if isinstance(error, (OSError, http.client.HTTPException)):
            why = str(error) or type(error).__name__
            raise ServiceUnresponsive(f"service did not answer {url}: {why}", why) from None


@functools.lru_cache(maxsize=64)
def _query(params: tuple[tuple[str, str | int], ...]) -> str:
    """``?a=1&b=2``: the few queries a reading sends, encoded once."""
    return "?" + urlencode(params)


def get_once(url: str, timeout: float, limit: int = 1 << 16, unix_socket: str | None = None) -> tuple[int, bytes]:
    """One GET of ``url`` on a connection of its own: the status and at most ``limit`` bytes of the body.

    All of it within ``timeout`` seconds, however slowly the service writes; the
    probes of a starting service use it. Raises :class:`ServiceUnresponsive`.
    """
    parts = urlsplit(url)
    connection = Connection(f"{parts.scheme}://{parts.netloc}", timeout, unix_socket)
    try:
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return connection.request(target).receive(limit)
    finally:
        connection.close()
