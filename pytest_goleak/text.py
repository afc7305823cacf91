"""Showing text the service controls: escaped, so it cannot forge a log line, and bounded.

Function and file names, fd targets, TMPDIR entries, child command lines and
the service's own output all come from the service. Written raw, a newline in
one starts a line of its own in a CI log (``FAILED test_x - forged``) and an
escape sequence rewrites the terminal. So every report line passes through
:func:`line`, and a block of the service's output through :func:`block`:

* a character that is not printable (controls, escapes, line and paragraph
  separators, bidirectional overrides) becomes a Python-style escape
  (``\\n``, ``\\x1b``, ``\\u202e``), and a backslash becomes ``\\\\``, so the
  escaped text reads back to exactly the bytes the service sent;
* a line longer than :data:`MAX_LINE` characters is cut in the middle, with a
  marker that says how much was left out.

The artifacts (``--goleak-artifacts``) keep the exact bytes.
"""

from __future__ import annotations

MAX_LINE = 1000  # characters of one report line; a Go function name is rarely over 300


_NAMED = {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape(char: str) -> str:
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def escaped(text: str) -> str:
    """``text`` with every character that is not printable, and every backslash, written as an escape."""
    if text.isprintable() and "\\" not in text:
        return text  # the common case, at the cost of one scan
    return "".join(char if char.isprintable() and char != "\\" else _escape(char) for char in text)


def cut(text: str, limit: int = MAX_LINE) -> str:
    """``text``, or its start and end around a marker when it is longer than ``limit`` characters."""
    if len(text) <= limit:
        return text
    keep = max(1, (limit - 40) // 2)
    return f"{text[:keep]} ...[{len(text) - 2 * keep} characters cut]... {text[-keep:]}"


def line(text: str, limit: int = MAX_LINE) -> str:
    """One report line: escaped, then cut to ``limit`` characters."""
    return cut(escaped(text), limit)


def lines(texts: list[str] | tuple[str, ...]) -> str:
    """Report lines joined by newlines, each through :func:`line`: nothing in one can start another."""
    return "\n".join(line(text) for text in texts)


def block(text: str, indent: str = "    ", max_lines: int = 200) -> str:
    """The service's own output, one escaped and indented line per line, so none starts at column 0."""
    rows = text.splitlines()
    shown = [indent + line(row) for row in rows[-max_lines:]]
    if len(rows) > max_lines:
        shown.insert(0, f"{indent}... {len(rows) - max_lines} earlier lines left out")
    return "\n".join(shown)
