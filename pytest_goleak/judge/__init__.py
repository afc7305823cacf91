"""Judging one test: what grew, against which budget, and the evidence of a failure.

Pure, except ``watch.py``: the one module that runs a test's sequence against the service
(``check_one_test``, to be read first). The rest decides from readings it is handed.

Modules:
    watch       one test's sequence: start-up wait, before-reading, the test, settle, verdict, evidence
    measures    the table of measures: one row each (name, default budget, reader, format, JUnit name, chart)
    budget      ``Budget``: per-measure limits and the check's knobs, with their validation
    identity    goroutine identity (start function, launchers looked through) and the plugin's own goroutines
    grpcgo      grpc-go's goroutines: the launchers that run a handler, and the goroutines of one connection
    diff        ``Delta``: each measure's growth between two readings; heap growth by allocation site
    verdict     ``Verdict`` and the one computation that decides it
    settle      ``Reader`` (the readings one budget needs) and ``settle``: the after-reading, retaken while over
    evidence    a failed verdict's evidence, one gatherer per measure
    reuse       when the previous test's after-reading stands as the next before-reading (an untouched gap)
    startup     waiting out a start-up until the service is quiet
    steady      steady-state mode: trends across repeated runs

Imports: ``judge``, ``read``, the ``Service`` protocol, ``errors``/``units``; ``watch.py`` also ``service``
(``tests/unit/test_layers.py`` enforces it).
"""
