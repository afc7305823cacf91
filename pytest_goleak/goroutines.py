"""Goroutine identity: which function a goroutine was started with, and which goroutines are the plugin's own.

Goroutines are compared by *identity*, not by current stack. A live
goroutine's current stack changes from one reading to the next (parked in
``syscall.Read``, then in ``runtime_pollWait``; a loop at ``+0x148``, then at
``+0xfb``), but the function it was started with never does.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from fnmatch import fnmatchcase

from pytest_goleak.pprof import GoroutineProfile, Stack

# The goroutine serving the plugin's own profile request, and the reader
# net/http starts beside any in-flight request (present in some readings and
# not others, depending on timing). Neither belongs to the test.
OWN_FRAME_PREFIXES = ("net/http/pprof.",)
OWN_START_FUNCTIONS = frozenset({"net/http.(*connReader).backgroundRead"})
# Outermost runtime frames that tracebacks hide: text dumps start the main
# goroutine at main.main where profiles show runtime.main below it.
_HIDDEN_ROOTS = frozenset({"runtime.goexit", "runtime.main"})
_EXITING = frozenset({"runtime.goexit1", "runtime.goexit0"})
# Generic launchers run the function they are given: every goroutine of
# Go 1.25's WaitGroup.Go starts in sync.(*WaitGroup).Go.func1, created by
# sync.(*WaitGroup).Go. The function one frame in is the one that tells them apart.
LAUNCHERS = (
    "sync.(*WaitGroup).Go.func*",
    "golang.org/x/sync/errgroup.(*Group).Go.func*",
    "golang.org/x/sync/errgroup.(*Group).TryGo.func*",
    "github.com/sourcegraph/conc.(*WaitGroup).Go.func*",
)


def _package(function: str) -> str:
    """``golang.org/x/sync/errgroup`` for ``golang.org/x/sync/errgroup.(*Group).Go.func1``."""
    slash = function.rfind("/")
    return function[: function.index(".", slash + 1)] if "." in function[slash + 1 :] else function


def identity(stack: Stack) -> str:
    """The function a goroutine was started with: its outermost frame, looking through launchers.

    A launcher's own work (``wg.Done`` in its defer) is not the goroutine's
    function: that goroutine keeps the launcher as its identity.
    """
    outer = [frame.function for frame in reversed(stack) if frame.function not in _HIDDEN_ROOTS]
    if not outer:
        return stack[-1].function if stack else "?"
    name = outer[0]
    for inner in outer[1:]:
        if not any(fnmatchcase(name, pattern) for pattern in LAUNCHERS) or _package(inner) == _package(name):
            break
        name = inner
    return name


def is_own(stack: Stack) -> bool:
    """Whether a goroutine is the plugin's own, or one only passing through.

    A sample with no frames is a goroutine caught mid-creation while the
    profile was taken (in practice, the profile request's own reader), and
    one in ``runtime.goexit1`` is already exiting: neither stays alive.
    """
    if not stack or identity(stack) in OWN_START_FUNCTIONS:
        return True
    if any(frame.function in _EXITING for frame in stack):
        return True
    return any(frame.function.startswith(OWN_FRAME_PREFIXES) for frame in stack)


def matches(patterns: Sequence[str], functions: Iterable[str]) -> bool:
    """Whether any function name matches any ignore pattern (shell-style, exact without wildcards)."""
    names = tuple(functions)
    return any(fnmatchcase(name, pattern) for pattern in patterns for name in names)


def count_by_identity(profile: GoroutineProfile, ignore: Sequence[str] = ()) -> Counter[str]:
    counts: Counter[str] = Counter()
    for group in profile.groups:
        if is_own(group.stack) or (ignore and matches(ignore, (f.function for f in group.stack))):
            continue
        counts[identity(group.stack)] += group.count
    return counts
