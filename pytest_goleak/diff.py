"""``Delta``: what grew between two snapshots, and whether a budget allows it.

Goroutines are compared by *identity*, not by current stack. A live
goroutine's current stack changes from one reading to the next (parked in
``syscall.Read``, then in ``runtime_pollWait``; a loop at ``+0x148``, then at
``+0xfb``), but the function it was started with never does. So:

    leaked goroutines = sum over identities of max(0, after - before)

and a test that ends one goroutine but leaks another still leaks one.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from pytest_goleak.budget import Budget, format_size
from pytest_goleak.pprof import GoroutineProfile, HeapProfile, Stack
from pytest_goleak.procfs import ChildInfo, new_children, new_fds
from pytest_goleak.snapshot import Snapshot
from pytest_goleak.tmpdir import new_entries

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


@dataclass(frozen=True)
class GoroutineGrowth:
    """Goroutines of one identity that a test left behind."""

    identity: str
    before: int
    after: int
    stacks: tuple[tuple[int, Stack], ...]  # current stacks in the later reading, with counts

    @property
    def leaked(self) -> int:
        return self.after - self.before


@dataclass(frozen=True)
class SiteGrowth:
    """Live heap that one allocation stack gained."""

    stack: Stack
    bytes: int
    objects: int


@dataclass(frozen=True)
class Delta:
    """Growth between two snapshots. A measure not read is None."""

    goroutines: tuple[GoroutineGrowth, ...]
    goroutine_total: int  # plain count difference, for information
    heap_bytes: int | None = None
    fds: int | None = None
    new_fds: tuple[tuple[int, str], ...] = ()
    children: int | None = None
    new_children: tuple[ChildInfo, ...] = ()
    threads: int | None = None
    tmpfiles: int | None = None
    new_tmpfiles: tuple[tuple[str, int], ...] = ()  # (path under TMPDIR, size or DIRECTORY)

    @property
    def goroutines_leaked(self) -> int:
        return sum(growth.leaked for growth in self.goroutines)

    def measures(self) -> dict[str, int | None]:
        """Each measure's growth, by the budget field that limits it."""
        return {
            "goroutines": self.goroutines_leaked,
            "heap": self.heap_bytes,
            "fds": self.fds,
            "children": self.children,
            "threads": self.threads,
            "tmpfiles": self.tmpfiles,
        }

    def exceeded(self, budget: Budget) -> list[str]:
        """The measures whose growth exceeds ``budget``."""
        over = []
        for name, grew in self.measures().items():
            allowed: int | None = getattr(budget, name)
            if allowed is not None and grew is not None and grew > allowed:
                over.append(name)
        return over

    def over(self, budget: Budget) -> list[str]:
        """The measures that exceed ``budget``, as report phrases; empty if within it."""
        measures = self.measures()
        return [describe(name, measures[name] or 0, getattr(budget, name)) for name in self.exceeded(budget)]


def describe(name: str, grew: int, allowed: int | None = None) -> str:
    """``3 goroutines leaked (budget 0)``, ``heap +4.0 MiB (budget 1.0 MiB)``, ``fds +1``."""
    if name == "goroutines":
        text = f"{grew} goroutine{'s' if grew != 1 else ''} leaked"
    elif name == "heap":
        text = f"heap {'+' if grew >= 0 else ''}{format_size(grew)}"
    else:
        text = f"{name} {grew:+d}"
    if allowed is not None:
        text += f" (budget {format_size(allowed) if name == 'heap' else allowed})"
    return text


def goroutine_growth(before: GoroutineProfile, after: GoroutineProfile, ignore: Sequence[str]) -> list[GoroutineGrowth]:
    old = count_by_identity(before, ignore)
    new = count_by_identity(after, ignore)
    grown = {name: count for name, count in new.items() if count > old.get(name, 0)}
    stacks: dict[str, list[tuple[int, Stack]]] = defaultdict(list)
    for group in after.groups:
        name = identity(group.stack)
        if name in grown and not is_own(group.stack):
            stacks[name].append((group.count, group.stack))
    growth = [
        GoroutineGrowth(name, old.get(name, 0), count, tuple(sorted(stacks[name], key=lambda s: -s[0])))
        for name, count in grown.items()
    ]
    return sorted(growth, key=lambda g: (-g.leaked, g.identity))


def heap_growth(before: HeapProfile, after: HeapProfile, limit: int = 10) -> list[SiteGrowth]:
    """Allocation stacks whose live bytes grew, largest first."""
    old: Counter[Stack] = Counter()
    for site in before.sites():
        old[site.stack] += site.inuse_bytes
    new: Counter[Stack] = Counter()
    objects: Counter[Stack] = Counter()
    for site in after.sites():
        if is_own(site.stack):  # the profile request's own buffers, live during its GC
            continue
        new[site.stack] += site.inuse_bytes
        objects[site.stack] += site.inuse_objects
    grown = [SiteGrowth(stack, size - old.get(stack, 0), objects[stack]) for stack, size in new.items()]
    grown = [site for site in grown if site.bytes > 0]
    grown.sort(key=lambda site: -site.bytes)
    return grown[:limit]


_ALL = Budget()  # no ignore patterns


def _minus(after: int | None, before: int | None) -> int | None:
    return None if after is None or before is None else after - before


def fd_count(snapshot: Snapshot, ignore_fds: Sequence[str] = ()) -> int | None:
    """The fds the budget counts in one reading: those no fd ignore pattern matches."""
    return None if snapshot.process is None else len(snapshot.process.counted_fds(ignore_fds))


def diff(before: Snapshot, after: Snapshot, budget: Budget = _ALL) -> Delta:
    """What grew from ``before`` to ``after``, leaving out what the budget's ignore patterns match."""
    ignore, ignore_fds = budget.ignore, budget.ignore_fds
    fds: tuple[tuple[int, str], ...] = ()
    children: tuple[ChildInfo, ...] = ()
    if before.process is not None and after.process is not None:
        fds = tuple(sorted(new_fds(before.process, after.process, ignore_fds).items()))
        children = tuple(new_children(before.process, after.process))
    return Delta(
        goroutines=tuple(goroutine_growth(before.goroutines, after.goroutines, ignore)),
        goroutine_total=after.goroutine_count - before.goroutine_count,
        heap_bytes=_minus(after.heap_bytes, before.heap_bytes),
        fds=_minus(fd_count(after, ignore_fds), fd_count(before, ignore_fds)),
        new_fds=fds,
        children=_minus(after.child_count, before.child_count),
        new_children=children,
        threads=_minus(after.thread_count, before.thread_count),
        tmpfiles=_minus(after.tmpfile_count, before.tmpfile_count),
        new_tmpfiles=new_entries(before.tmpfiles or {}, after.tmpfiles or {}),
    )
