"""The backend this run of the suite reads processes with: /proc, or psutil's portable calls.

CI runs the detection and fault suites a second time with ``GOLEAK_BACKEND=portable``; a test whose
expectation depends on what the backend can read asks here, rather than reading the variable itself.
"""

from __future__ import annotations

import os

from pytest_goleak.read.backend import ENV, Backend, Lack, choose

BACKEND: Backend = choose(os.environ.get(ENV, "auto"))


def lacks(lack: Lack) -> bool:
    """Whether the backend in use cannot read ``lack``'s thing."""
    return lack in BACKEND.lacks
