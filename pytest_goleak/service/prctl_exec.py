"""Run as a script between pytest and the service: two Linux process attributes, then the service itself.

``GoService`` starts a service on Linux as ``python -S -I prctl_exec.py FD PID COMMAND...``
rather than with a ``preexec_fn``. A ``preexec_fn`` makes Python fork pytest,
threads and all, and run Python code in the child: other libraries' fork
handlers run there too (grpcio's abort the child while a test's gRPC channel
has its pollers running), and a lock another thread held at the fork is never
released there. Without one, the start is a ``vfork``, which runs nothing in
the child but the exec. This script, then, in a process of its own, sets

* ``PR_SET_PDEATHSIG``: SIGKILL once the pytest thread that started it is gone;
* ``PR_SET_CHILD_SUBREAPER``: a process the service spawned whose parent exits
  (``sh -c 'cmd &'``) is reparented to the service, not to init, so it stays the
  service's descendant, counted as its child and stopped with it;

both of which outlive the exec. It imports nothing but the standard library
(``-S -I``: a start takes about 8 ms longer than an exec of the service alone). It tells an exec that failed as
``subprocess`` does: the errno, written to the pipe ``FD``, which a successful
exec closes (see ``started.py``).
"""

from __future__ import annotations

import ctypes
import os
import sys

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
_SIGKILL = 9  # not signal.SIGKILL: importing signal imports enum, ~5 ms more per start
FAILED = 127  # the exit code of a command that could not be run, as the shells give it


def main(argv: list[str]) -> None:
    errors, parent, command = int(argv[1]), int(argv[2]), argv[3:]
    os.set_inheritable(errors, False)  # closed by the exec: pytest then reads the end of the pipe
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, _SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # pytest ended before the signal was set: none will come
        os._exit(FAILED)
    libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    try:
        os.execvp(command[0], command)
    except OSError as exc:
        os.write(errors, str(exc.errno).encode())
        os._exit(FAILED)


if __name__ == "__main__":
    main(sys.argv)
