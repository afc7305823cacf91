"""Waiting out a service's start-up before the first test (its hint, when that test fails anyway, is in report/).

Many servers go on starting after pprof answers: a database opens, a scrape
manager starts, a pool fills. Whatever starts during the first test would be
charged to it. So after each start (and an attached service's first use),
once the readiness probes have passed, the plugin waits until the service is
quiet before the first test's before-reading. The rule:

* A reading is cheap: the goroutine profile counted by identity (the
  plugin's own goroutines and the budget's ignore patterns left out) and the
  fd count. No heap, so no forced GC.
* Readings are ``quiet_for`` seconds apart. A reading differs from the one
  before it when any identity's count or the fd count differs, up or down:
  the service is still changing, and the wait goes on from the newer
  reading. The service is quiet once a reading equals the one before it.
* A service that is already quiet pays two readings and one pause; each
  change seen costs one more of each.
* The wait ends ``timeout`` (``goleak_start_timeout``) after the start,
  quiet or not, but always leaves room for one pause, so that a first test
  long after the start still gets two readings. A service that never became
  quiet runs its first test anyway, and that test's report says so.

Only whole readings are compared: a goroutine that comes and goes between
two of them leaves nothing behind for the first test to be charged with.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from pytest_goleak.judge.identity import count_by_identity
from pytest_goleak.judge.measures import FDS, Ignores
from pytest_goleak.read.snapshot import Part, Snapshot

DEFAULT_QUIET = 0.3  # seconds; long enough for Prometheus' managers, which start ~40 ms after its pprof answers
PARTS = frozenset({Part.GOROUTINES, Part.PROCESS})  # what one reading of the rule reads: no heap


@dataclass(frozen=True)
class Activity:
    """What the quiet rule compares: goroutines by identity, and the fd count (None without a local PID)."""

    goroutines: Mapping[str, int]
    fds: int | None = None

    @classmethod
    def of(cls, reading: Snapshot, ignores: Ignores) -> Activity:
        """``reading`` counted the way the test's budget counts it."""
        return cls(count_by_identity(reading.goroutines, ignores.ignore), FDS.read(reading, ignores))

    def changes_from(self, earlier: Activity) -> tuple[str, ...]:
        """What differs from ``earlier``, e.g. ``("main.worker +2", "fds +1")``; empty when nothing does."""
        names = sorted(set(self.goroutines) | set(earlier.goroutines))
        counts = ((name, self.goroutines.get(name, 0) - earlier.goroutines.get(name, 0)) for name in names)
        found = [f"{name} {grew:+d}" for name, grew in counts if grew]
        if self.fds is not None and earlier.fds is not None and self.fds != earlier.fds:
            found.append(f"fds {self.fds - earlier.fds:+d}")
        return tuple(found)


@dataclass(frozen=True)
class Startup:
    """How the wait after one start ended."""

    quiet_for: float  # the rule's pause (goleak_startup_quiet); 0: the wait is off
    quiet: bool  # two readings a pause apart were equal
    after_start: float  # seconds from the start to the end of the wait
    readings: int = 0
    changing: tuple[str, ...] = ()  # the last change seen, if it never became quiet


def wait_quiet(
    read: Callable[[], Activity],
    quiet_for: float,
    started_at: float,
    timeout: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Startup:
    """Take readings ``quiet_for`` apart until two in a row are equal, or ``timeout`` after ``started_at``.

    ``started_at`` is a ``clock()`` value. With ``quiet_for`` 0 nothing is read.
    """
    if quiet_for <= 0:
        return Startup(quiet_for, False, clock() - started_at)
    last, readings = read(), 1
    deadline = max(started_at + timeout, clock() + quiet_for)
    changing: tuple[str, ...] = ()
    while clock() + quiet_for <= deadline:
        sleep(quiet_for)
        now = read()
        readings += 1
        changing = now.changes_from(last)
        if not changing:
            return Startup(quiet_for, True, clock() - started_at, readings)
        last = now
    return Startup(quiet_for, False, clock() - started_at, readings, changing)
