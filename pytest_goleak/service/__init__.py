"""Running the service under test: start it, attach to it, stop it, and say what went wrong with it.

Modules:
    protocol    the ``Service`` protocol that started and attached services implement
    started     ``GoService``: start, stop, restart, logs, and its own failure diagnosis
    attached    ``AttachedService``: a service the plugin did not start; never signalled
    config      ``ServiceConfig``, placeholders and the ports they pick
    toolchain   finding ``go`` and the binary, building a package once, reading a binary's Go version
    readiness   the readiness probes and the one bounded wait both kinds of service use
    listening   where a started service listens, and the error for one that listens elsewhere
    loopback    the loopback rule
    lifeline    a watchdog process that kills the services if pytest is killed

Imports: ``service``, ``read``, and ``errors``/``units``; nothing that judges or reports
(``tests/unit/test_layers.py`` enforces it).
"""
