"""When the previous test's after-reading can stand as this test's before-reading.

Two tests in a row against a quiet service see the same service between
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
   walking a single stack), equals the kept reading's.

Only then is the kept reading adopted. Anything else takes a fresh reading, as
every test did before: a failed test (its evidence fetches touched the
service), another run of the service, a service without a PID to read, a
reading that lacks a part the new budget checks (then only the missing parts
are read fresh), or ``goleak_fresh_readings``.

What the rule cannot see: a service that changes on its own between two
tests without reading a byte and without changing its goroutine count, fds,
children or threads, such as a timer that grows a cache or swaps one
goroutine for another. That change is then charged to the next test, as it
would be had it happened during the test.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pytest_goleak.read.procfs import ProcessState, bytes_read, read_process
from pytest_goleak.read.snapshot import Snapshot, Snapshotter
from pytest_goleak.read.tmpdir import read_tmpdir

# The Go runtime wakes its network poller by an 8-byte eventfd write and read, which count as bytes
# read; a request never reads as little as two of them (the shortest HTTP request is 18 bytes).
_WAKEUP = 8
_WAKEUPS = 2


@dataclass(frozen=True)
class Now:
    """The cheap parts of the service now: what a kept reading is checked against."""

    read_bytes: int | None
    process: ProcessState | None
    tmpfiles: Mapping[str, int] | None
    goroutines: int | None  # the pprof index's count; None where the index is not served


def read_now(snapshotter: Snapshotter, kept: Snapshot) -> Now:
    """The service now, read as cheaply as it can be: /proc first, then one small pprof page."""
    pid, pprof = snapshotter.pid, snapshotter.pprof
    # Bytes read first: the index request is itself read by the service. /proc is read while it answers.
    read = bytes_read(pid) if pid is not None else None
    index = pprof.send("")
    try:
        process = read_process(pid) if pid is not None and kept.process is not None else None
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
    if now.goroutines != kept.goroutines.total:
        return f"its goroutines went from {kept.goroutines.total} to {now.goroutines}"
    old, new = kept.process, now.process
    if (old is None) != (new is None):
        return "the process can no longer be read"
    if old is not None and new is not None:
        if dict(old.fds) != dict(new.fds):
            return "its fds changed"
        if [(c.pid, c.start_time) for c in old.children] != [(c.pid, c.start_time) for c in new.children]:
            return "its child processes changed"
        if threads and old.threads != new.threads:
            return f"its threads went from {old.threads} to {new.threads}"
    if kept.tmpfiles is not None and now.tmpfiles != kept.tmpfiles:
        return "its TMPDIR changed"
    return None
