"""``benchmarks/report.py`` and its timing plugin, loaded for the unit tests: the benchmarks are scripts."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


def load_report() -> ModuleType:
    """The module, loaded once under a name of its own."""
    name = "goleak_benchmark_report"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / "report.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


def load_timing(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """``benchmarks/goleak_bench_timing.py``, loaded afresh: its sums start at zero."""
    monkeypatch.setitem(sys.modules, "report", load_report())  # the timing plugin imports TIMED from report
    spec = importlib.util.spec_from_file_location(
        "goleak_bench_timing_under_test", ROOT / "benchmarks" / "goleak_bench_timing.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
