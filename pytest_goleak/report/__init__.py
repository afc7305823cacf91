"""Everything a user reads, rendered from what ``judge`` decided; nothing here calls the service.

Modules:
    failure       the failure text of one test (one section per measure) and its JUnit properties
    hints         the end of a report: the lines that ignore a leaked kind, and the start-up hint
    session       the session's records, the terminal summary and the drift check
    baseline      the baseline file of known leaks per test: reading it, what a test adds, rewriting it
    json_report   the session's readings and verdicts as one JSON document (``--goleak-json``)
    timeline      the self-contained HTML timeline
    artifacts     each failing test's profiles, dump and log on disk

Imports: ``report``, ``judge``, ``read``, the ``Service`` protocol, ``errors``/``units``
(``tests/unit/test_layers.py`` enforces it).
"""
