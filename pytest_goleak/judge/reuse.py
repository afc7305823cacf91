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
4. its goroutine count, from the pprof index page (which counts without
   walking a single stack), equals the kept reading's, net/http's background
   reader of the request counted once on both sides (a pipelined reading may
   not have it; the index always does: see identity.background_readers). A
   service whose pprof is not served by net/http then reads afresh each test.

The gap is then *untouched*, and the kept reading is adopted. Anything else takes a fresh reading, as
every test did before: a failed test (its evidence fetches touched the
service), another run of the service, a service without a PID to read, a
reading that lacks a part the new budget checks (then only the missing parts
are read fresh), a backend that cannot read bytes read (the portable one: psutil has no
``io_counters`` on macOS), or ``goleak_fresh_readings``.

What the rule cannot see: a service that changes on its own between two
tests without reading a byte and without changing its goroutine count, fds,
children or threads, such as a timer that grows a cache or swaps one
goroutine for another. That change is then charged to the next test, as it
would be had it happened during the test.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

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
_TOUCHED_GAPS = 2  # gaps in a row that were touched, before after-readings bound the heap instead


class KeptReadings:
    """The policy for keeping readings: which after-reading is kept, and when it stands as a before-reading.

    Keyed by a run of a service (its pprof URL and PID: a restart starts afresh).
    """

    def __init__(self, fresh: bool = False) -> None:
        self.fresh = fresh  # goleak_fresh_readings: never keep one
        self._last: dict[str, Snapshot] = {}
        self._touched: dict[str, int] = {}  # how many gaps between tests in a row were touched

    def recall(self, key: str, budget: Budget, snapshotter: Snapshotter) -> Snapshot | None:
        """The previous test's after-reading, if the gap since was untouched (the rule above); else None."""
        kept = self._last.pop(key, None)  # never kept with goleak_fresh_readings (see remember)
        if kept is None:
            return None
        if not sees_gaps(snapshotter):
            return None  # no PID, or no bytes read (the portable backend): the gap cannot be seen, read afresh
        if budget.describes_sockets and kept.process is not None and kept.process.sockets is None:
            return None  # its sockets were not described, so fd patterns cannot match them
        why = changed(kept, read_now(snapshotter, kept), threads=THREADS in budget.checked)
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
            self._last[key] = verdict.after


def sees_gaps(snapshotter: Snapshotter) -> bool:
    """Whether the gap between two tests can be seen untouched at all: it takes a PID and its bytes read."""
    return snapshotter.pid is not None and Lack.BYTES_READ not in snapshotter.backend.lacks


@dataclass(frozen=True)
class Now:
    """The cheap parts of the service now: what a kept reading is checked against."""

    read_bytes: int | None
    process: ProcessState | None
    tmpfiles: Mapping[str, int] | None
    goroutines: int | None  # the pprof index's count; None where the index is not served


def read_now(snapshotter: Snapshotter, kept: Snapshot) -> Now:
    """The service now, read as cheaply as it can be: /proc first, then one small pprof page."""
    pid, pprof, backend = snapshotter.pid, snapshotter.pprof, snapshotter.backend
    # Bytes read first: the index request is itself read by the service. /proc is read while it answers.
    read = backend.bytes_read(pid) if pid is not None else None
    index = pprof.send("")
    try:
        process = backend.read_process(pid) if pid is not None and kept.process is not None else None
        tmpdir = snapshotter.tmpdir
        tmpfiles = read_tmpdir(tmpdir) if tmpdir is not None and kept.tmpfiles is not None else None
    except BaseException:
        pprof.close()  # the index's answer must not be read as the next request's
        raise
    return Now(read, process, tmpfiles, pprof.goroutine_count(index))


def changed(kept: Snapshot, now: Now, threads: bool = False) -> str | None:
    """Why ``kept`` no longer describes the service, or None when it still does.

    The thread count is compared only where ``threads`` are checked: the Go
    runtime starts a thread of its own whenever one blocks in a system call.
    """
    if kept.read_bytes is None or now.read_bytes is None:
        return "what the service has read is not readable (/proc/PID/io)"
    read = now.read_bytes - kept.read_bytes
    if read and not (read % _WAKEUP == 0 and read <= _WAKEUPS * _WAKEUP):
        return f"the service read {read} bytes since"
    if now.goroutines is None:
        return "the pprof index gives no goroutine count"
    # The index, asked alone, always counts net/http's background reader beside its own request; the kept reading
    # counts it only if its heap request had not arrived yet (see identity.background_readers).
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
