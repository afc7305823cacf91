"""One kept-alive connection to a pprof endpoint, with the standard library's ``http.client``.

Every reading fetches two or three profiles, so what a request costs on the
Python side is paid on every test: ``http.client`` costs a fraction of a
general-purpose client. It also lets a request be sent and its answer read
later (:meth:`Connection.send`), so that the plugin can decode one profile and
read ``/proc`` while the service computes the next (its forced GC).

A connection is opened on first use and kept; one that the service closed
while idle is opened again, once, for the next request (a GET of a profile
is safe to send twice).
"""

from __future__ import annotations

import contextlib
import http.client
import time
from collections.abc import Callable, Iterator
from typing import NoReturn
from urllib.parse import urlencode, urlsplit

from pytest_goleak.errors import ProfileError, ServiceError, ServiceUnresponsive
from pytest_goleak.read.http import ssl_context

_CHUNK = 1 << 16


class Answer:
    """A request sent and not yet read: :meth:`read` waits for the answer's status and body."""

    def __init__(self, connection: Connection, url: str, target: str, reused: bool) -> None:
        self._connection = connection
        self.url = url
        self._target = target
        self._reused = reused

    def read(self, limit: int, refuse: Callable[[int, bytes], NoReturn]) -> bytes:
        """The body of a 200 answer, at most ``limit`` bytes; ``refuse(status, body)`` raises for any other status."""
        connection = self._connection
        deadline = time.monotonic() + connection.timeout
        refused: tuple[int, bytes] | None = None
        with connection.failing_as_unanswered(self.url):
            try:
                response = connection.http().getresponse()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                if not self._reused:
                    raise
                # The service closed the idle connection before this request reached it: send it again.
                connection.close()
                connection.send(self._target)
                response = connection.http().getresponse()
            if response.status != 200:
                # Read to its end, so that the connection stays usable: a new one would leave the service
                # winding down the old one's goroutine and fd, where the next reading would count them.
                refused = response.status, response.read(_CHUNK)
                if not response.isclosed() or response.will_close:
                    connection.close()
        if refused is not None:
            refuse(*refused)
        with connection.failing_as_unanswered(self.url):
            body = bytearray()
            while chunk := response.read(_CHUNK):
                body += chunk
                if len(body) > limit:
                    raise ProfileError(f"pprof {self.url} sent more than {limit >> 20} MiB; refusing it")
                if time.monotonic() > deadline:
                    raise TimeoutError
            if response.will_close:
                connection.close()
            return bytes(body)


class Connection:
    """One HTTP/1.1 connection to ``base_url``'s host, opened on first use and kept alive."""

    def __init__(self, base_url: str, timeout: float) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ServiceError(f"pprof URL {base_url} is not an http:// or https:// URL")
        self.timeout = timeout
        self._origin = f"{parts.scheme}://{parts.netloc}"
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._https else 80)
        self._path = parts.path
        self._http: http.client.HTTPConnection | None = None
        self._used = False  # whether the open connection carried a request already

    def http(self) -> http.client.HTTPConnection:
        if self._http is None:
            # Connecting is bounded more tightly than answering: a service that is up accepts at once.
            connect = min(self.timeout, 2.0)
            if self._https:
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
    def failing_as_unanswered(self, url: str) -> Iterator[None]:
        """Turn a timeout or a broken connection into :class:`ServiceUnresponsive`; close on any failure.

        A half-read answer would otherwise be read as the next request's.
        """
        try:
            yield
        except TimeoutError:
            self.close()
            raise ServiceUnresponsive(f"service did not answer {url} within {self.timeout:g}s") from None
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise ServiceUnresponsive(f"service did not answer {url}: {str(exc) or type(exc).__name__}") from None
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None
