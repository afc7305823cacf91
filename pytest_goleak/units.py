"""Parsing and showing the values a user writes: sizes, counts, seconds, booleans, patterns.

Every parser takes ``where``, the phrase that names the value's source
(``goleak_heap in pytest.ini``, ``--goleak-heap``,
``@pytest.mark.goleak(heap=...) on test_x``), so that its one-line error
tells the user which line to fix.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

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
# The words that leave a measure unchecked, everywhere a limit is written.
UNCHECKED = frozenset({"none", "off", "unchecked"})


def is_unchecked(value: object) -> bool:
    """Whether ``value`` says "do not check this": None, or one of :data:`UNCHECKED`."""
    return value is None or (isinstance(value, str) and value.strip().lower() in UNCHECKED)


def parse_size(value: object, where: str = "size") -> int:
    """Bytes from an int or a string such as ``"512KiB"``, ``"4MiB"`` or ``"1.5 GB"``."""
    if isinstance(value, bool):
        raise ConfigError(f"{where}: {value!r} is not a size; use bytes as an int or a string like '4MiB'")
    if isinstance(value, int):
        if value < 0:
            raise ConfigError(f"{where}: {value} is negative; a budget is the growth allowed, 0 or more")
        return value
    if isinstance(value, float) and math.isfinite(value) and value >= 0:
        return int(value)
    match = _SIZE.match(value) if isinstance(value, str) else None
    if match is None or match.group(2).lower() not in _UNITS:
        units = "B, KiB, MiB, GiB, KB, MB, GB"
        raise ConfigError(
            f"{where}: {value!r} is not a size; write bytes or a number with a unit ({units}), e.g. '4MiB'"
        )
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def format_size(size: float) -> str:
    """Human text for a byte count, e.g. ``4.0 MiB`` or ``-512 B``."""
    sign = "-" if size < 0 else ""
    size = abs(size)
    if size < 1024:
        return f"{sign}{size:.0f} B"
    for unit in ("KiB", "MiB", "GiB", "TiB", "PiB"):
        size /= 1024
        if size < 1024:
            return f"{sign}{size:.1f} {unit}"
    return f"{sign}{size / 1024:.1f} EiB"


def parse_count(value: object, where: str) -> int:
    """A whole number of 0 or more, from an int or its text."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ConfigError(f"{where}: {value!r} is not a count; use a whole number of 0 or more, or None to skip it")
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"{where}: {value!r} is not a count; use a whole number of 0 or more, or 'none'") from None
    if number < 0:
        raise ConfigError(f"{where}: {number} is negative; a budget is the growth allowed, 0 or more")
    return number


def parse_seconds(value: object, where: str, positive: bool = False) -> float:
    """A number of seconds: 0 or more, or more than 0 when ``positive`` (a timeout)."""
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: {value!r} is not a number of seconds; use e.g. 2.0") from None
    smallest_ok = seconds > 0 if positive else seconds >= 0
    if isinstance(value, bool) or not math.isfinite(seconds) or not smallest_ok:
        bound = "more than 0" if positive else "0 or more"
        raise ConfigError(f"{where}: {value!r} must be a number of seconds, {bound}")
    return seconds


def parse_bool(value: object, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "on"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{where}: {value!r} is not a boolean; use true or false")


def parse_patterns(value: object, where: str) -> tuple[str, ...]:
    """Shell-style patterns from a list, or from text with one per line."""
    if isinstance(value, str):
        items: Iterable[object] = value.splitlines()
    elif isinstance(value, (list, tuple)):
        items = value
    else:
        raise ConfigError(f"{where}: {value!r} must be a list of patterns, e.g. ['main.(*Pool).worker'] or ['*.log']")
    patterns = []
    for item in items:
        if not isinstance(item, str):
            raise ConfigError(f"{where} holds {item!r}; each pattern must be a string")
        if item.strip():
            patterns.append(item.strip())
    return tuple(patterns)


def parse_text(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{where}: {value!r} must be a string")
    return value.strip()


def parse_lines(value: object, where: str) -> tuple[str, ...]:
    """Lines of text (an ini linelist, or repeated flags), blank ones dropped."""
    if isinstance(value, str):
        value = value.splitlines()
    if not isinstance(value, (list, tuple)) or not all(isinstance(line, str) for line in value):
        raise ConfigError(f"{where}: {value!r} must be lines of text")
    return tuple(line.strip() for line in value if line.strip())
