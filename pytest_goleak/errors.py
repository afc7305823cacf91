"""The plugin's own error types.

Everything the plugin raises on purpose derives from :class:`GoleakError`, so
callers (and the fuzz tests) can tell a diagnosed problem from a bug.
"""

from __future__ import annotations


class GoleakError(Exception):
    """Base class for every error pytest-goleak raises on purpose."""


class ConfigError(GoleakError):
    """The user's configuration (ini, CLI flag or marker) is invalid.

    The message is one line that names the cause and the fix.
    """


class ServiceError(GoleakError):
    """The Go service could not be built, started, reached or kept alive."""


class ServiceUnresponsive(ServiceError):
    """The service did not answer in time, or dropped the connection: frozen, wedged or dying."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason or message  # what happened, without the URL: "within 1s", "Connection refused"


class PprofNotServed(ServiceError):
    """The service answers, but not with pprof (HTTP 404): waiting will not help."""


class ReadyRefused(ServiceError):
    """The ready URL answers a 4xx that waiting will not change (404: no such path): the URL is wrong."""


class ServiceMisconfigured(ServiceError):
    """A service's first start showed that its configuration is wrong, not that it died.

    pprof or the ready URL is not where the configuration says, the binary
    exits before it is ready, or it listens on ports nobody told it. The same
    configuration would fail the same way for every test, so the session
    stops. The first line names the cause and the fix.
    """


class ProfileError(GoleakError):
    """A pprof endpoint answered with something that is not a usable profile."""


class ProcessGone(GoleakError):
    """The process being inspected through /proc no longer exists."""
