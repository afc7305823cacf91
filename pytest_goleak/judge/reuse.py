"""When the previous test's after-reading can stand as this test's before-reading.

Two tests in a row against an idle service see the same service between
them: test N's after-reading already is test N+1's before-reading, and taking
it again costs a second goroutine profile and a second forced GC. So the
plugin keeps each passing test's after-reading and, before the next test,
checks cheaply that nothing has happened to the service since:

1. it has read no byte (``rchar`` of ``/proc/PID/io``) but the Go runtime's
   own wake-ups of its network poller (8 bytes each, at most two): no request
   reached it over any connection, and it read no file or pipe. A fixture that
   calls the service between the tests, over a new or a kept-alive connection,
   moves it;
2. its fds (number and target) and child processes are the same, and its
   thread count too where threads are checked;
3. its TMPDIR holds the same entries (when temp files are checked);
4. after a long gap (over 10 ms since the reading was kept: a slow fixture, tests
   without the check in between), its goroutine count, from the pprof index
   page (which counts without walking a single stack), equals the kept
   reading's, net/http's background reader of the request counted once on
   both sides (a pipelined reading may not have it; the index always does: see
   identity.background_readers). A service whose pprof is not served by
   net/http then reads afresh after each long gap.

   A short gap is the one pytest alone fills between two tests in a row
   (0.6-1.2 ms on the third-party soaks). The service is not asked there:
   without a byte read, only its own clock could change its goroutines, and
   it is as likely to strike during the test and its reading, which are
   longer. The request cost 0.2-0.3 ms of a clean test's 3.5-4 ms check at
   ~10 goroutines.

The gap is then *untouched*, and the kept reading is adopted. Anything else takes a fresh reading, as
every test did before: a failed test (its evidence fetches touched the
service), another run of the service, a service without a PID to read, a
reading that lacks a part the new budget checks (then only the missing parts
are read fresh), a backend that cannot read bytes read (the portable one: psutil has no
``io_counters`` on macOS), or ``goleak_fresh_readings``.

What the rule cannot see: a service that changes on its own between two
tests without reading a byte and without changing its fds, children or
threads, nor, after a long gap, its goroutine count: a timer that grows a
cache or swaps one goroutine for another, or in a short gap one that starts
or ends a goroutine. That change is then charged to the next test, as it
would be had it happened during the test.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Literal

from pytest_goleak.judge.budget import Budget
from pytest_goleak.judge.identity import background_readers
from pytest_goleak.judge.measures import THREADS
from pytest_goleak.judge.verdict import Verdict
from pytest_goleak.read.backend import Lack
from pytest_goleak.read.procfs import ProcessState
from pytest_goleak.read.snapshot import Snapshot, Snapshotter
from pytest_goleak.read.tmpdir import read_tmpdir

# The Go runtime wakes its network poller by an 8-byte eventfd write and read, which count as bytes
# read; a request never reads as little as two of them (the shortest HTTP request is 18 bytes).
_WAKEUP = 8
_WAKEUPS = 2
_SHORT_GAP = 0.010  # seconds since the reading was kept: a gap without time for the service to change on its own
_TOUCHED_GAPS = 2  # gaps in a row that were touched, before after-readings bound the heap instead


class KeptReadings:
    """The policy for keeping readings: which after-reading is kept, and when it stands as a before-reading.

    Keyed by a run of a service (its pprof URL and PID: a restart starts afresh).
    """

    def __init__(self, fresh: bool = False, clock: Callable[[], float] = time.monotonic) -> None:
        self.fresh = fresh  # goleak_fresh_readings: never keep one
        self._clock = clock
        self._last: dict[str, tuple[Snapshot, float]] = {}  # the kept reading, and when it was kept
        self._touched: dict[str, int] = {}  # how many gaps between tests in a row were touched

    def recall(self, key: str, budget: Budget, snapshotter: Snapshotter) -> Snapshot | None:
        """The previous test's after-reading, if the gap since was untouched (the rule above); else None."""
        kept, kept_at = self._last.pop(key, (None, 0.0))  # never kept with goleak_fresh_readings (see remember)
        if kept is None:
            return None
        if not sees_gaps(snapshotter):
            return None  # no PID, or no bytes read (the portable backend): the gap cannot be seen, read afresh
        if budget.describes_sockets and kept.process is not None and kept.process.sockets is None:
            return None  # its sockets were not described, so fd patterns cannot match them
        long_gap = self._clock() - kept_at > _SHORT_GAP  # the service's own clock had time to act: ask the count
        why = changed(kept, read_now(snapshotter, kept, count=long_gap), threads=THREADS in budget.checked)
        self._touched[key] = 0 if why is None else self._touched.get(key, 0) + 1
        return kept if why is None else None

    def exact_after(self, key: str, sees: bool) -> bool:
        """Whether the after-reading should force a GC: when the next test is likely to adopt it.

        Where the last two gaps between tests were touched (a fixture calls
        the service before each test), or readings are never kept, or no gap
        can be seen at all (``sees``: :func:`sees_gaps`, no PID or no bytes
        read), the next test reads afresh anyway; the after-reading then
        bounds the heap without a GC (see settle.py) and forces one only if that bound is over budget.
        One touched gap is not enough: a test that adopts a reading without a
        GC'd heap has to read the heap itself.
        """
        touched = self._touched.get(key, 0) >= _TOUCHED_GAPS
        return not self.fresh and sees and not touched

    def remember(self, key: str, verdict: Verdict) -> None:
        """Keep a passing test's after-reading for the next test; a failure's evidence fetches touched the service."""
        if not self.fresh and not verdict.failed:
            self._last[key] = verdict.after, self._clock()


def sees_gaps(snapshotter: Snapshotter) -> bool:
    """Whether the gap between two tests can be seen untouched at all: it takes a PID and its bytes read."""
    return snapshotter.pid is not None and Lack.BYTES_READ not in snapshotter.backend.lacks


class _Uncounted(Enum):
    UNCOUNTED = "the gap was short: the index was not asked"


UNCOUNTED = _Uncounted.UNCOUNTED


@dataclass(frozen=True)
class Now:
    """The cheap parts of the service now: what a kept reading is checked against."""

    read_bytes: int | None
    process: ProcessState | None
    tmpfiles: Mapping[str, int] | None
    # The pprof index's count; None where the index is not served, UNCOUNTED where it was not asked.
    goroutines: int | Literal[_Uncounted.UNCOUNTED] | None


def read_now(snapshotter: Snapshotter, kept: Snapshot, count: bool = True) -> Now:
    """The service now, read as cheaply as it can be: its bytes read, then /proc, and one small pprof page if ``count``.

    Once the bytes read say the gap was touched, nothing more is read: the next reading is fresh anyway.
    """
    pid, pprof, backend = snapshotter.pid, snapshotter.pprof, snapshotter.backend
    # Bytes read first: the index request is itself read by the service. /proc is read while it answers.
    read = backend.bytes_read(pid) if pid is not None else None
    if _requested(kept.read_bytes, read) is not None:
        return Now(read, None, None, UNCOUNTED)
    index = pprof.send("") if count else None
    try:
        process = backend.read_process(pid) if pid is not None and kept.process is not None else None
        tmpdir = snapshotter.tmpdir
        tmpfiles = read_tmpdir(tmpdir) if tmpdir is not None and kept.tmpfiles is not None else None
    except BaseException:
        if index is not None:
            pprof.close()  # the index's answer must not be read as the next request's
        raise
    return Now(read, process, tmpfiles, UNCOUNTED if index is None else pprof.goroutine_count(index))


def _requested(kept: int | None, now: int | None) -> str | None:
    """Why the bytes the service read since ``kept`` say the gap was touched, or None when they do not."""
    if kept is None or now is None:
        return "what the service has read is not readable (/proc/PID/io)"
    read = now - kept
    if read and not (read % _WAKEUP == 0 and read <= _WAKEUPS * _WAKEUP):
        return f"the service read {read} bytes since"
    return None


def changed(kept: Snapshot, now: Now, threads: bool = False) -> str | None:
    """Why ``kept`` no longer describes the service, or None when it still does.

    The thread count is compared only where ``threads`` are checked: the Go
    runtime starts a thread of its own whenever one blocks in a system call.
    """
    requested = _requested(kept.read_bytes, now.read_bytes)
    if requested is not None:
        return requested
    if now.goroutines is None:
        return "the pprof index gives no goroutine count"
    if now.goroutines is not UNCOUNTED:
        # The index, asked alone, always counts net/http's background reader beside its own request; the kept
        # reading counts it only if its heap request had not arrived yet (see identity.background_readers).
        expected = kept.goroutines.total - background_readers(kept.goroutines) + 1
        if now.goroutines != expected:
            return f"its goroutines went from {expected} to {now.goroutines} (the index's count)"
    old, new = kept.process, now.process
    if (old is None) != (new is None):
        return "the process can no longer be read"
    if old is not None and new is not None:
        if dict(old.fds) != dict(new.fds) or old.unnamed_fds != new.unnamed_fds:
            return "its fds changed"
        if [(c.pid, c.start_time) for c in old.children] != [(c.pid, c.start_time) for c in new.children]:
            return "its child processes changed"
        if threads and old.threads != new.threads:
            return f"its threads went from {old.threads} to {new.threads}"
    if kept.tmpfiles is not None and now.tmpfiles != kept.tmpfiles:
        return "its TMPDIR changed"
    return None
