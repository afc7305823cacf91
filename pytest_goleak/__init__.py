"""pytest-goleak: per-test leak checks for Go services, from the outside.

The names below are the plugin's public face: what its hooks hand to
implementers (readings, verdicts, the service), what a budget is made of, and
the few tools that soaks and benchmarks build on. Everything else, in the
``service``, ``read``, ``judge`` and ``report`` packages, may change without
notice; import it from here or connect through the hooks (``hooks.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

# Where each public name lives. They load on first use (PEP 562), so that importing the package (the
# watchdog process does, ``python -m pytest_goleak.service.lifeline``) loads nothing else.
_PUBLIC = {
    "Budget": "pytest_goleak.judge.budget",
    "CHILDREN": "pytest_goleak.judge.measures",
    "ConfigError": "pytest_goleak.errors",
    "Delta": "pytest_goleak.judge.diff",
    "FDS": "pytest_goleak.judge.measures",
    "GOROUTINES": "pytest_goleak.judge.measures",
    "GoService": "pytest_goleak.service.started",
    "GoleakError": "pytest_goleak.errors",
    "GoroutineGrowth": "pytest_goleak.judge.diff",
    "HEAP": "pytest_goleak.judge.measures",
    "Known": "pytest_goleak.judge.budget",
    "LeakedGroup": "pytest_goleak.judge.verdict",
    "MEASURES": "pytest_goleak.judge.measures",
    "Measure": "pytest_goleak.judge.measures",
    "OFFHEAP": "pytest_goleak.judge.measures",
    "Part": "pytest_goleak.read.snapshot",
    "Phase": "pytest_goleak.judge.verdict",
    "ProfileError": "pytest_goleak.errors",
    "Service": "pytest_goleak.service.protocol",
    "ServiceConfig": "pytest_goleak.service.config",
    "ServiceError": "pytest_goleak.errors",
    "SiteGrowth": "pytest_goleak.judge.diff",
    "Snapshot": "pytest_goleak.read.snapshot",
    "THREADS": "pytest_goleak.judge.measures",
    "TMPFILES": "pytest_goleak.judge.measures",
    "Verdict": "pytest_goleak.judge.verdict",
    "build_package": "pytest_goleak.service.toolchain",
    "diff": "pytest_goleak.judge.diff",
    "render": "pytest_goleak.report.failure",
}


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'pytest_goleak' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


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
