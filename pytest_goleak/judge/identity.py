"""Goroutine identity: which function a goroutine was started with, and which goroutines are the plugin's own.

Goroutines are compared by *identity*, not by current stack. A live
goroutine's current stack changes from one reading to the next (parked in
``syscall.Read``, then in ``runtime_pollWait``; a loop at ``+0x148``, then at
``+0xfb``), but the function it was started with never does.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from fnmatch import fnmatchcase

from pytest_goleak.judge import grpcgo
from pytest_goleak.read.pprof import DumpedGoroutine, GoroutineProfile, Stack

# The goroutine serving the plugin's own profile request, and the reader
# net/http starts beside any in-flight request (present in some readings and
# not others, depending on timing). Neither belongs to the test. Before Go 1.22
# `go cr.backgroundRead()` compiled into a closure, startBackgroundRead.funcN,
# which is the reader's outermost frame, and all a dump shows of it before it runs.
OWN_FRAME_PREFIXES = ("net/http/pprof.",)
OWN_START_FUNCTIONS = ("net/http.(*connReader).backgroundRead", "net/http.(*connReader).startBackgroundRead.func*")
# Outermost runtime frames that tracebacks hide: text dumps start the main
# goroutine at main.main where profiles show runtime.main below it.
_HIDDEN_ROOTS = frozenset({"runtime.goexit", "runtime.main"})
_EXITING = frozenset({"runtime.goexit1", "runtime.goexit0"})
# The wrapper Go 1.22+ compiles `go f(x)` into: a goroutine not yet running shows
# only it (and runtime.goexit) in a dump, where a profile shows no frames at all.
_GO_WRAPPER = re.compile(r"\.gowrap\d+$")
# Generic launchers run the function they are given: every goroutine of
# Go 1.25's WaitGroup.Go starts in sync.(*WaitGroup).Go.func1, created by
# sync.(*WaitGroup).Go. The function one frame in is the one that tells them apart.
LAUNCHERS = (
    "sync.(*WaitGroup).Go.func*",
    "golang.org/x/sync/errgroup.(*Group).Go.func*",
    "golang.org/x/sync/errgroup.(*Group).TryGo.func*",
    "github.com/sourcegraph/conc.(*WaitGroup).Go.func*",
    *grpcgo.HANDLER_LAUNCHERS,  # looked through past grpc-go's frames and the interceptors: see grpcgo.handler_of
)


def _package(function: str) -> str:
    """``golang.org/x/sync/errgroup`` for ``golang.org/x/sync/errgroup.(*Group).Go.func1``."""
    slash = function.rfind("/")
    return function[: function.index(".", slash + 1)] if "." in function[slash + 1 :] else function


@functools.lru_cache(maxsize=8192)
def identity(stack: Stack) -> str:
    """The function a goroutine was started with: its outermost frame, looking through launchers.

    A launcher's own work (``wg.Done`` in its defer) is not the goroutine's
    function: that goroutine keeps the launcher as its identity.
    """
    outer = [frame.function for frame in reversed(stack) if frame.function not in _HIDDEN_ROOTS]
    if not outer:
        return stack[-1].function if stack else "?"
    name = outer[0]
    if grpcgo.launches_handler(name):
        return grpcgo.handler_of(outer[1:]) or name
    for inner in outer[1:]:
        if not any(fnmatchcase(name, pattern) for pattern in LAUNCHERS) or _package(inner) == _package(name):
            break
        name = inner
    return name


@functools.lru_cache(maxsize=8192)
def is_own(stack: Stack) -> bool:
    """Whether a goroutine is the plugin's own, or one only passing through.

    A sample with no frames is a goroutine caught mid-creation while the
    profile was taken (in practice, the profile request's own reader), and
    one in ``runtime.goexit1`` is already exiting: neither stays alive.
    """
    if not stack or any(fnmatchcase(identity(stack), pattern) for pattern in OWN_START_FUNCTIONS):
        return True
    if _not_running(stack):
        return True  # not running yet, as a profile's sample with no frames
    if any(frame.function in _EXITING for frame in stack):
        return True
    return any(frame.function.startswith(OWN_FRAME_PREFIXES) for frame in stack)


def _not_running(stack: Stack) -> bool:
    """A goroutine made and not yet run: no frames in a profile, or only the ``go`` statement's wrapper."""
    return all(frame.function in _HIDDEN_ROOTS or _GO_WRAPPER.search(frame.function) for frame in stack)


def background_readers(profile: GoroutineProfile) -> int:
    """The goroutines of ``profile`` that net/http's background reader of a request accounts for (0 or 1).

    net/http starts it beside every request it serves and ends it once the
    next request's first byte arrives. A reading whose heap request was sent
    with its goroutine request (pipelined) may have it or not; the pprof index,
    asked alone, always has it. A goroutine not yet running is it.
    """
    return sum(group.count for group in profile.groups if _background_reader(group.stack))


@functools.lru_cache(maxsize=8192)
def _background_reader(stack: Stack) -> bool:
    return _not_running(stack) or any(fnmatchcase(identity(stack), pattern) for pattern in OWN_START_FUNCTIONS)


def matches(patterns: Sequence[str], functions: Iterable[str]) -> bool:
    """Whether any function name matches any ignore pattern (shell-style, exact without wildcards)."""
    names = tuple(functions)
    return any(fnmatchcase(name, pattern) for pattern in patterns for name in names)


def left_out(stack: Stack, ignore: Sequence[str] = ()) -> bool:
    """Whether a profile's stack is left out of the count: the plugin's own, or matched by an ignore pattern."""
    return is_own(stack) or bool(ignore and matches(ignore, (frame.function for frame in stack)))


def dumped_identity(goroutine: DumpedGoroutine) -> str:
    """A dumped goroutine's identity: its start function, or its creator where the dump lost the start function.

    Only Go 1.20 and older lose it (they print the innermost 100 frames of a
    deeper stack); the creator is then the one name that does not depend on
    how deep the stack is.
    """
    if goroutine.outer_missing and goroutine.created_by is not None:
        return goroutine.created_by.function
    return identity(goroutine.stack)


def _functions(goroutine: DumpedGoroutine) -> Iterator[str]:
    yield from (frame.function for frame in goroutine.stack)
    if goroutine.created_by is not None:
        yield goroutine.created_by.function


def counted(profile: GoroutineProfile, ignore: Sequence[str] = ()) -> Iterator[tuple[str, int, Stack]]:
    """The goroutines a reading counts, as (identity, count, stack): the plugin's own and ignored ones left out.

    A profile that may have cut a stack at the runtime's depth limit is
    counted from the dump read with it, goroutine by goroutine: a cut stack's
    outermost frame is wherever the cut fell, so naming it by that frame
    would give a goroutine whose depth changes between two readings a new
    identity (a false leak) and could merge a real leak into another kind.
    The dump names each by its start function, or its creator, whatever the
    depth, and lets ignore patterns match the creator here too.
    """
    if profile.dumped is None:
        for group in profile.groups:
            if not left_out(group.stack, ignore):
                yield identity(group.stack), group.count, group.stack
        return
    groups: Counter[tuple[str, Stack]] = Counter()
    for goroutine in profile.dumped:
        if is_own(goroutine.stack) or (ignore and matches(ignore, _functions(goroutine))):
            continue
        groups[(dumped_identity(goroutine), goroutine.stack)] += 1
    for (name, stack), count in groups.items():
        yield name, count, stack


def count_by_identity(profile: GoroutineProfile, ignore: Sequence[str] = ()) -> Mapping[str, int]:
    """How many goroutines of each identity a reading counts.

    Kept on the profile and given as it is kept, not copied: a kept reading is counted again by every test
    that adopts it, as its before-reading.
    """
    key = tuple(ignore)
    known = profile.counts.get(key)
    if known is None:
        counts: Counter[str] = Counter()
        for name, count, _ in counted(profile, ignore):
            counts[name] += count
        known = profile.counts[key] = counts
    return known
