"""pytest-goleak: per-test leak checks for Go services, from the outside.

The names below are the plugin's public face: what its hooks hand to
implementers (readings, verdicts, the service), what a budget is made of, and
the few tools that soaks and benchmarks build on. Everything else, in the
``service``, ``read``, ``judge`` and ``report`` packages, may change without
notice; import it from here or connect through the hooks (``hooks.py``).
"""

from __future__ import annotations

from pytest_goleak.errors import ConfigError, GoleakError, ProfileError, ServiceError
from pytest_goleak.judge.budget import Budget, Known
from pytest_goleak.judge.diff import Delta, GoroutineGrowth, SiteGrowth, diff
from pytest_goleak.judge.measures import (
    CHILDREN,
    FDS,
    GOROUTINES,
    HEAP,
    MEASURES,
    OFFHEAP,
    THREADS,
    TMPFILES,
    Measure,
)
from pytest_goleak.judge.verdict import LeakedGroup, Phase, Verdict
from pytest_goleak.read.snapshot import Part, Snapshot
from pytest_goleak.report.failure import render
from pytest_goleak.service.config import ServiceConfig
from pytest_goleak.service.protocol import Service
from pytest_goleak.service.started import GoService
from pytest_goleak.service.toolchain import build_package

__version__ = "0.1.0"

__all__ = [
    "CHILDREN",
    "FDS",
    "GOROUTINES",
    "HEAP",
    "MEASURES",
    "OFFHEAP",
    "THREADS",
    "TMPFILES",
    "Budget",
    "ConfigError",
    "Delta",
    "GoService",
    "GoleakError",
    "GoroutineGrowth",
    "Known",
    "LeakedGroup",
    "Measure",
    "Part",
    "Phase",
    "ProfileError",
    "Service",
    "ServiceConfig",
    "ServiceError",
    "SiteGrowth",
    "Snapshot",
    "Verdict",
    "__version__",
    "build_package",
    "diff",
    "render",
]
