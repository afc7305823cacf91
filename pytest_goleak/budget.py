"""Leak budgets: how much growth a test may leave behind.

A budget is resolved per test, closest source first: the ``goleak`` marker,
then a ``--goleak-*`` flag, then the ini option of the same name, then the
defaults below. Every value is validated here so that a typo fails the run
early with one line naming the cause and the fix.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from pytest_goleak.errors import ConfigError

MiB = 1 << 20

_UNITS = {
    "": 1,
    "b": 1,
    "k": 1 << 10,
    "kb": 10**3,
    "kib": 1 << 10,
    "m": 1 << 20,
    "mb": 10**6,
    "mib": 1 << 20,
    "g": 1 << 30,
    "gb": 10**9,
    "gib": 1 << 30,
    "t": 1 << 40,
    "tb": 10**12,
    "tib": 1 << 40,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-z]*)\s*$", re.IGNORECASE)
_UNCHECKED = {"none", "off", "unchecked"}


def parse_size(value: object, what: str = "size") -> int:
    """Bytes from an int or a string such as ``"512KiB"``, ``"4MiB"`` or ``"1.5 GB"``."""
    if isinstance(value, bool):
        raise ConfigError(f"{what}={value!r} is not a size; use bytes as an int or a string like '4MiB'")
    if isinstance(value, int):
        if value < 0:
            raise ConfigError(f"{what}={value} is negative; a budget is the growth allowed, 0 or more")
        return value
    if isinstance(value, float) and math.isfinite(value) and value >= 0:
        return int(value)
    match = _SIZE.match(value) if isinstance(value, str) else None
    if match is None or match.group(2).lower() not in _UNITS:
        units = "B, KiB, MiB, GiB, KB, MB, GB"
        raise ConfigError(f"{what}={value!r} is not a size; write bytes or a number with a unit ({units}), e.g. '4MiB'")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def format_size(size: float) -> str:
    """Human text for a byte count, e.g. ``4.0 MiB`` or ``-512 B``."""
    sign = "-" if size < 0 else ""
    size = abs(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{sign}{size:.0f} {unit}" if unit == "B" else f"{sign}{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def parse_count(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ConfigError(f"{what}={value!r} is not a count; use a whole number of 0 or more, or None to skip it")
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"{what}={value!r} is not a count; use a whole number of 0 or more, or 'none'") from None
    if number < 0:
        raise ConfigError(f"{what}={number} is negative; a budget is the growth allowed, 0 or more")
    return number


def _seconds(value: object, what: str) -> float:
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigError(f"{what}={value!r} is not a number of seconds; use e.g. 2.0") from None
    if isinstance(value, bool) or not math.isfinite(seconds) or seconds < 0:
        raise ConfigError(f"{what}={value!r} must be a number of seconds, 0 or more")
    return seconds


def _bool(value: object, what: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "on"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{what}={value!r} is not a boolean; use true or false")


def _patterns(value: object, what: str) -> tuple[str, ...]:
    if isinstance(value, str):
        items: Iterable[object] = value.splitlines()
    elif isinstance(value, (list, tuple)):
        items = value
    else:
        raise ConfigError(f"{what}={value!r} must be a list of patterns, e.g. ['main.(*Pool).worker'] or ['*.log']")
    patterns = []
    for item in items:
        if not isinstance(item, str):
            raise ConfigError(f"{what} holds {item!r}; each pattern must be a string")
        if item.strip():
            patterns.append(item.strip())
    return tuple(patterns)


@dataclass(frozen=True)
class Budget:
    """The growth one test may leave behind; ``None`` means "not checked"."""

    goroutines: int | None = 0
    heap: int | None = MiB
    fds: int | None = 0
    children: int | None = 0
    threads: int | None = None
    tmpfiles: int | None = 0  # entries left in the service's private TMPDIR
    settle: float = 2.0
    ignore: tuple[str, ...] = ()
    ignore_fds: tuple[str, ...] = ()  # fd targets never counted, e.g. "tcp * -> 127.0.0.1:5432 *"
    check: bool = True
    repeat: int = 0  # steady-state mode: measured runs after the warm-up (0: off)
    warmup: int = 1  # unmeasured runs first, in steady-state mode

    @property
    def steady(self) -> bool:
        return self.repeat > 0

    def updated(self, values: Mapping[str, object], source: str) -> Budget:
        """A copy with ``values`` applied; ``source`` names them in errors (e.g. ``@pytest.mark.goleak``)."""
        changes: dict[str, Any] = {}
        for key, value in values.items():
            parse = _PARSERS.get(key)
            if parse is None:
                known = ", ".join(_PARSERS)
                raise ConfigError(f"{source}: unknown argument {key!r}; use one of {known}")
            if value is None or (isinstance(value, str) and value.strip().lower() in _UNCHECKED):
                if key in _OPTIONAL:
                    changes[key] = None
                    continue
                raise ConfigError(f"{source}: {key} cannot be None")
            changes[key] = parse(value, f"{source} {key}")
        return replace(self, **changes)


_PARSERS: dict[str, Callable[[object, str], object]] = {
    "goroutines": parse_count,
    "heap": parse_size,
    "fds": parse_count,
    "children": parse_count,
    "threads": parse_count,
    "tmpfiles": parse_count,
    "settle": _seconds,
    "ignore": _patterns,
    "ignore_fds": _patterns,
    "check": _bool,
    "repeat": parse_count,
    "warmup": parse_count,
}
_OPTIONAL = {"goroutines", "heap", "fds", "children", "threads", "tmpfiles"}
BUDGET_FIELDS = tuple(f.name for f in fields(Budget))
assert set(BUDGET_FIELDS) == set(_PARSERS), "every Budget field needs a parser"
