"""One kept-alive connection to a pprof endpoint, with the standard library's ``http.client``.

Every reading fetches two or three profiles, so what a request costs on the
Python side is paid on every test: ``http.client`` costs a fraction of a
general-purpose client. It also lets a request be sent and its answer read
later (:meth:`Connection.send`), so that the plugin can decode one profile and
read ``/proc`` while the service computes the next (its forced GC).

A connection is opened on first use and kept; one that the service closed
while idle is opened again, once, for the next request (a GET of a profile
is safe to send twice).

Every answer is read within one deadline, status line, headers and body
together, however slowly the service writes: the connection's socket sets its
timeout to what is left of the deadline before each ``recv`` (a per-``recv``
timeout alone lets a service that drips a byte a second hold a read for hours).
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import time
import weakref
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, NoReturn
from urllib.parse import urlencode, urlsplit

from pytest_goleak.errors import ProfileError, ServiceError, ServiceUnresponsive
from pytest_goleak.read.http import ssl_context

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

_CHUNK = 1 << 16

# The connection each socket belongs to, whose ``deadline`` bounds its reads: see _time_left.
_OWNERS: weakref.WeakKeyDictionary[socket.socket, Connection] = weakref.WeakKeyDictionary()


def _time_left(sock: socket.socket) -> None:
    """Before a ``recv``: wait at most until the answer's deadline (see the module docstring)."""
    owner = _OWNERS.get(sock)
    deadline = owner.deadline if owner is not None else None
    if deadline is not None:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        sock.settimeout(left)


class _DeadlinedSocket(socket.socket):
    __slots__ = ()

    def recv_into(self, buffer: WriteableBuffer, nbytes: int = 0, flags: int = 0) -> int:
        _time_left(self)
        return super().recv_into(buffer, nbytes, flags)


class _DeadlinedSSLSocket(ssl.SSLSocket):
    __slots__ = ()

    def recv_into(self, buffer: WriteableBuffer, nbytes: int | None = None, flags: int = 0) -> int:
        _time_left(self)
        return super().recv_into(buffer, nbytes, flags)


def _deadlined(sock: socket.socket, owner: Connection) -> socket.socket:
    # The class of a connected socket is swapped, not the socket wrapped: http.client reads it through makefile().
    sock.__class__ = _DeadlinedSSLSocket if isinstance(sock, ssl.SSLSocket) else _DeadlinedSocket
    _OWNERS[sock] = owner
    return sock


class Answer:
    """A request sent and not yet read: :meth:`read` waits for the answer's status and body."""

    def __init__(self, connection: Connection, url: str, target: str, reused: bool) -> None:
        self._connection = connection
        self.url = url
        self._target = target
        self._reused = reused

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
            try:
                response = connection.http().getresponse()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                if not self._reused:
                    raise
                # The service closed the idle connection before this request reached it: send it again.
                connection.close()
                connection.send(self._target)
                response = connection.http().getresponse()
            body = bytearray()
            while chunk := response.read(min(_CHUNK, limit + 1 - len(body))):
                body += chunk
                if len(body) > limit:
                    if over is not None:
                        over(limit)
                    connection.close()
                    return response.status, bytes(body[:limit])
            if response.length:  # http.client reads a body cut short of its Content-Length as a short body
                raise http.client.IncompleteRead(bytes(body), response.length)
            if response.will_close:
                connection.close()
            return response.status, bytes(body)


class _UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over a unix socket: the URL's host is only the Host header, as with ``curl --unix-socket``."""

    def __init__(self, path: str, host: str, timeout: float) -> None:
        super().__init__(host, timeout=timeout)
        self._socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self._socket_path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


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
        self._port = parts.port or (443 if self._https else 80)
        self._path = parts.path
        self._unix_socket = unix_socket
        self._http: http.client.HTTPConnection | None = None
        self._used = False  # whether the open connection carried a request already
        self.deadline: float | None = None  # while an answer is read: when it must have ended

    def http(self) -> http.client.HTTPConnection:
        if self._http is None:
            # Connecting is bounded more tightly than answering: a service that is up accepts at once.
            connect = min(self.timeout, 2.0)
            if self._unix_socket is not None:
                self._http = _UnixHTTPConnection(self._unix_socket, self._host, connect)
            elif self._https:
                self._http = http.client.HTTPSConnection(self._host, self._port, timeout=connect, context=ssl_context())
            else:
                self._http = http.client.HTTPConnection(self._host, self._port, timeout=connect)
            self._used = False
        return self._http

    def send(self, target: str) -> bool:
        """Send a GET of ``target``; whether it went over a connection used before (the service may have closed it)."""
        connection = self.http()
        if connection.sock is None:
            connection.connect()
            assert connection.sock is not None
            connection.sock = _deadlined(connection.sock, self)
            connection.sock.settimeout(self.timeout)
        reused = self._used
        try:
            connection.request("GET", target)
        except (ConnectionResetError, BrokenPipeError):
            if not reused:
                raise
            self.close()
            return self.send(target)
        self._used = True
        return reused

    def get(self, path: str, params: dict[str, str | int] | None = None) -> Answer:
        """Send a GET of ``path`` (relative to the base URL); read the answer with :meth:`Answer.read`."""
        target = self._path + path + (f"?{urlencode(params)}" if params else "")
        url = self._origin + target
        with self.failing_as_unanswered(url):
            reused = self.send(target)
        return Answer(self, url, target, reused)

    @contextlib.contextmanager
    def failing_as_unanswered(self, url: str, deadline: float | None = None) -> Iterator[None]:
        """Turn a timeout or a broken connection into :class:`ServiceUnresponsive`; close on any failure.

        With ``deadline`` (``time.monotonic()``), every read of the socket meanwhile ends by then.
        A half-read answer would otherwise be read as the next request's.
        """
        self.deadline = deadline
        try:
            yield
        except TimeoutError:
            self.close()
            why = f"no answer within {self.timeout:g}s (status, headers and body together)"
            raise ServiceUnresponsive(f"service did not answer {url} within {self.timeout:g}s", why) from None
        except http.client.IncompleteRead as exc:
            self.close()
            why = f"the answer ended early ({exc})"
            raise ServiceUnresponsive(f"service ended its answer to {url} early: {exc}", why) from None
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            why = str(exc) or type(exc).__name__
            raise ServiceUnresponsive(f"service did not answer {url}: {why}", why) from None
        except BaseException:
            self.close()
            raise
        finally:
            self.deadline = None

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None


def get_once(url: str, timeout: float, limit: int = 1 << 16, unix_socket: str | None = None) -> tuple[int, bytes]:
    """One GET of ``url`` on a connection of its own: the status and at most ``limit`` bytes of the body.

    All of it within ``timeout`` seconds, however slowly the service writes; the
    probes of a starting service use it. Raises :class:`ServiceUnresponsive`.
    """
    parts = urlsplit(url)
    connection = Connection(f"{parts.scheme}://{parts.netloc}", timeout, unix_socket)
    try:
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        with connection.failing_as_unanswered(url):
            connection.send(target)
        return Answer(connection, url, target, reused=False).receive(limit)
    finally:
        connection.close()
