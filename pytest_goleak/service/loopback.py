"""The loopback rule: the plugin talks to this machine only, unless the user opts in.

pprof exposes a process's memory contents, so a URL that leaves the machine
is refused unless ``goleak_allow_remote`` (or its keyword) says otherwise.
"""

from __future__ import annotations

import ipaddress

from pytest_goleak.errors import ConfigError

_LOOPBACK_NAMES = {"localhost", "ip6-localhost", "ip6-loopback"}


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine's loopback interface."""
    host = host.strip("[]").lower()
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def require_loopback(host: str, source: str, why: str, allow_remote: bool, opt_in: str) -> None:
    """Refuse ``host`` (named by ``source``) unless it is loopback or ``opt_in`` allowed remote hosts."""
    if not allow_remote and not is_loopback(host):
        raise ConfigError(
            f"{source} points at {host}, not loopback; {why}, so opt in with {opt_in} = true if you mean it"
        )
