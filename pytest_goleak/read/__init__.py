"""Reading one process: goroutines and heap through pprof; fds, children, threads, memory through /proc or psutil.

Knows no budget and no verdict: a reading is what the service held, nothing more.

Modules:
    snapshot    ``Snapshot``, one reading, and ``Snapshotter``, which takes the parts asked for
    pprof       fetching and parsing pprof profiles and goroutine dumps; artifacts' protobuf profiles
    keepalive   the one kept-alive connection to pprof, its requests pipelined: send now, read the answer later
    http1       reading one HTTP/1.1 answer (status, headers, body) from a connection's buffered reader, bounded
    backend     the one choice between procfs and portable (GOLEAK_BACKEND), and what the portable one lacks
    procfs      fds, children, threads, resident memory and bytes read of a process (psutil, /proc; the
                service's /proc directory held open and its files read in place)
    portable    the same through psutil's portable calls only (macOS; forced on Linux for tests)
    tmpdir      the service's private ``TMPDIR`` and what it holds
    http        bounded, proxy-free httpx clients (the tests' ``pytest_goleak.client``, the readiness probes)
    _proto      pprof's ``profile.proto``, compiled (for the protobuf profiles a failure's artifacts hold)

Imports: ``read`` only, and ``errors``/``units`` (``tests/unit/test_layers.py`` enforces it).
"""
