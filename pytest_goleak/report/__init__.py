"""Everything a user reads, rendered from what ``judge`` decided; nothing here calls the service.

Modules:
    failure       the failure text of one test (one section per measure) and its JUnit properties
    connections   grpc-go's per-connection goroutines folded into the connections they serve
    hints         the end of a report: the lines that ignore a leaked kind, and the start-up hint
    session       the session's records, the terminal summary and the drift check
    baseline      the baseline file of known leaks per test: reading it, what a test adds, rewriting it
    json_report   the session's readings and verdicts as one JSON document (``--goleak-json``)
    timeline      the self-contained HTML timeline
    artifacts     each failing test's profiles, dump and log on disk
    annotations   GitHub Actions ``::error`` annotations at each leaking test's file and line
    markdown      the session's summary as Markdown (``--goleak-md``, the job summary)
    html_report   the fragments pytest-html's report gets: a growth column, a leak's chart, the summary
    compare       this run's growth against another run's JSON (``--goleak-compare``, ``--goleak-compare-fail``)
    merge         ``python -m pytest_goleak.report.merge OUT IN...``: shards' JSON documents as one

Imports: ``report``, ``judge``, ``read``, the ``Service`` protocol, ``errors``/``units``
(``tests/unit/test_layers.py`` enforces it).
"""
