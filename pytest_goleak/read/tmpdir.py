"""The service's private ``TMPDIR``: what temp files and directories it holds.

Go's ``os.CreateTemp`` and ``os.MkdirTemp`` put their files there; a service
that never removes them fills the disk, even when every fd is closed. The
plugin gives each service it starts a ``TMPDIR`` of its own, so any entry
there belongs to that service.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pytest_goleak.units import format_size

# A reading walks the whole tree; a service that leaked this many entries has
# failed anyway, and the walk must stay cheap.
MAX_ENTRIES = 100_000
DIRECTORY = -1  # the size recorded for a directory


def read_tmpdir(root: Path) -> Mapping[str, int]:
    """Every entry under ``root``, by path relative to it: a file's size, or ``DIRECTORY``.

    A vanished root reads as empty: the service may remove its own tree.
    """
    found: dict[str, int] = {}
    for directory, dirnames, filenames in os.walk(root):
        base = os.path.relpath(directory, root)
        for name in dirnames:
            found[os.path.normpath(os.path.join(base, name))] = DIRECTORY
        for name in filenames:
            path = os.path.join(directory, name)
            try:
                size = os.lstat(path).st_size
            except OSError:
                continue  # removed between listing and stat
            found[os.path.normpath(os.path.join(base, name))] = size
        if len(found) >= MAX_ENTRIES:
            break
    return found


def new_entries(before: Mapping[str, int], after: Mapping[str, int]) -> tuple[tuple[str, int], ...]:
    """Entries of ``after`` that ``before`` did not have, sorted by path."""
    return tuple(sorted((path, size) for path, size in after.items() if path not in before))


def describe_entry(path: str, size: int) -> str:
    """One report line: ``spool-123.json (4.0 KiB)`` or ``upload-42/`` for a directory."""
    return f"{path}/" if size == DIRECTORY else f"{path} ({format_size(size)})"
