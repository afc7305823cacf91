"""The service's private ``TMPDIR``: what temp files and directories it holds.

Go's ``os.CreateTemp`` and ``os.MkdirTemp`` put their files there; a service
that never removes them fills the disk, even when every fd is closed. The
plugin gives each service it starts a ``TMPDIR`` of its own, so any entry
there belongs to that service.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from pathlib import Path

from pytest_goleak.units import format_size

# A reading walks the whole tree; a service that leaked this many entries has
# failed anyway, and the walk must stay cheap.
MAX_ENTRIES = 100_000
MAX_DEPTH = 64  # deeper directories are counted, not entered
DIRECTORY = -1  # the size recorded for a directory
SYMLINK_ROOT = -2  # the size recorded for the TMPDIR itself, replaced by a symlink
_DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def read_tmpdir(root: Path) -> Mapping[str, int]:
    """Every entry under ``root``, by path relative to it: a file's size, or ``DIRECTORY``.

    The walk never leaves ``root``: each directory is opened relative to its
    parent without following a symlink (``O_NOFOLLOW``), so a symlink, or a
    directory swapped for one mid-walk, is an entry, never a way out. A root
    that is itself a symlink now reads as one entry, ``.`` (``SYMLINK_ROOT``).
    A vanished root reads as empty: the service may remove its own tree.
    """
    found: dict[str, int] = {}
    try:
        top = os.open(root, _DIRECTORY_FLAGS)
    except FileNotFoundError:
        return found
    except OSError:
        return {".": SYMLINK_ROOT} if os.path.islink(root) else found
    todo = [(top, "", 0)]  # open directory fds, their path under root, their depth
    try:
        while todo and len(found) < MAX_ENTRIES:
            fd, base, depth = todo.pop()
            try:
                _list(fd, base, depth, found, todo)
            finally:
                os.close(fd)
    finally:
        for fd, _, _ in todo:  # left open by a full reading or an error
            os.close(fd)
    return found


def _list(fd: int, base: str, depth: int, found: dict[str, int], todo: list[tuple[int, str, int]]) -> None:
    with os.scandir(fd) as entries:
        for entry in entries:
            if len(found) >= MAX_ENTRIES:
                return
            path = base + entry.name
            try:
                if entry.is_dir(follow_symlinks=False):
                    found[path] = DIRECTORY
                    if depth < MAX_DEPTH:
                        todo.append((os.open(entry.name, _DIRECTORY_FLAGS, dir_fd=fd), path + "/", depth + 1))
                else:
                    found[path] = entry.stat(follow_symlinks=False).st_size
            except OSError:
                continue  # removed, or swapped for a symlink, between listing and opening


def remove_tmpdir(root: Path) -> None:
    """Remove ``root`` and everything under it, without following a symlink and however deep it is.

    ``shutil.rmtree`` recurses (a tree 1,000 deep raises ``RecursionError``)
    and will not remove a root that was replaced by a symlink. What cannot be
    removed (a permission, a service still writing) is left, never retried forever.
    """
    try:
        top = os.open(root, _DIRECTORY_FLAGS)
    except FileNotFoundError:
        return
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(root)  # a symlink or a file where the directory was
        return
    # Directories being emptied, deepest last: (fd, its name in the one below, subdirectories tried).
    stack: list[tuple[int, str, set[str]]] = [(top, "", set())]
    while stack:
        fd, _, tried = stack[-1]
        child = _empty_but_subdirectories(fd, tried)
        if child is not None:
            tried.add(child)
            try:
                stack.append((os.open(child, _DIRECTORY_FLAGS, dir_fd=fd), child, set()))
            except OSError:
                with contextlib.suppress(OSError):
                    os.unlink(child, dir_fd=fd)  # swapped for a symlink meanwhile
            continue
        os.close(fd)
        _, name, _ = stack.pop()
        if stack:
            with contextlib.suppress(OSError):
                os.rmdir(name, dir_fd=stack[-1][0])
    with contextlib.suppress(OSError):
        os.rmdir(root)


def _empty_but_subdirectories(fd: int, tried: set[str]) -> str | None:
    """Unlink every entry of directory ``fd`` but its subdirectories; one not yet ``tried``, or None."""
    with os.scandir(fd) as entries:
        for entry in entries:
            try:
                if not entry.is_dir(follow_symlinks=False):
                    os.unlink(entry.name, dir_fd=fd)
                elif entry.name not in tried:
                    return entry.name
            except OSError:
                continue
    return None


def new_entries(before: Mapping[str, int], after: Mapping[str, int]) -> tuple[tuple[str, int], ...]:
    """Entries of ``after`` that ``before`` did not have, sorted by path."""
    return tuple(sorted((path, size) for path, size in after.items() if path not in before))


def describe_entry(path: str, size: int) -> str:
    """One report line: ``spool-123.json (4.0 KiB)`` or ``upload-42/`` for a directory."""
    if size == SYMLINK_ROOT:
        return "the TMPDIR itself, replaced by a symlink (not followed)"
    return f"{path}/" if size == DIRECTORY else f"{path} ({format_size(size)})"
