"""pytest plugin loaded into every benchmark session (``-p goleak_bench_timing``).

It only observes. For each test it appends one JSON line to the file named by
``GOLEAK_BENCH_OUT``:

* ``wall_ms``: wall time of the whole ``pytest_runtest_protocol`` of the item
  (setup + call + teardown + report logging): what a user waits per test;
* ``setup_ms`` / ``call_ms`` / ``teardown_ms``: pytest's ``report.duration``;
* ``reported_at``: ``perf_counter()`` when the teardown report reached
  ``pytest_runtest_logreport`` (the check ends in ``pytest_goleak``'s teardown, so
  the failure text is rendered by then);
* ``props``: the test's ``record_property`` values (the floor and leak tests
  record their own request timings and the moment their body ended);
* ``rss``: this pytest process's resident set size after the test (psutil),
  read outside the timed region;
* ``text``: the start of the failure text, for failed tests;
* ``settle_ms``: read-only from the plugin's verdict (``Verdict.waited``), how
  long the after-test reading(s) took, settle retakes included;
* ``readings``: the readings the plugin took for the test, in order, each as
  ``phase:heap`` (phase ``before``/``after``/``settle``/``steady``; heap ``gc``
  after a forced GC, ``bound`` read without one, ``none`` not read). A
  before-reading the plugin adopted from the previous test is not told, so a
  test that took none has no ``before`` entry.

With ``GOLEAK_BENCH_PROFILE=PATH`` it also runs cProfile around every
``test_check_*`` item (stats written to ``PATH``) and every ``test_leak_*``
item (``PATH.leak``), and nothing else.
"""

from __future__ import annotations

import cProfile
import json
import os
import time
from collections.abc import Generator
from typing import TYPE_CHECKING

import psutil
import pytest

if TYPE_CHECKING:  # at run time a --ref of an older plugin may lack these modules
    from pytest_goleak import Service, Snapshot, Verdict

_OUT = os.environ.get("GOLEAK_BENCH_OUT", "")
_PROFILE = os.environ.get("GOLEAK_BENCH_PROFILE", "")
_TEXT_CHARS = 1500


class _Recorder:
    def __init__(self) -> None:
        self.process = psutil.Process()
        self.profiles: dict[str, cProfile.Profile] = {}
        self.file = open(_OUT, "a", encoding="utf-8") if _OUT else None

    def profile_for(self, name: str) -> cProfile.Profile | None:
        if not _PROFILE:
            return None
        kind = "check" if name.startswith("test_check_") else "leak" if name.startswith("test_leak_") else ""
        if not kind:
            return None
        if kind not in self.profiles:
            self.profiles[kind] = cProfile.Profile()
        return self.profiles[kind]

    def write(self, record: dict[str, object]) -> None:
        if self.file is not None:
            self.file.write(json.dumps(record) + "\n")
            self.file.flush()

    def close(self) -> None:
        for kind, profile in self.profiles.items():
            profile.dump_stats(_PROFILE if kind == "check" else _PROFILE + ".leak")
        if self.file is not None:
            self.file.close()


_REC = pytest.StashKey[_Recorder]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_REC] = _Recorder()


def pytest_unconfigure(config: pytest.Config) -> None:
    recorder = config.stash.get(_REC, None)
    if recorder is not None:
        recorder.close()


# nodeid -> what its reports said, filled by pytest_runtest_logreport and
# taken by the protocol wrapper once the item is done (logreport gets no item).
_REPORTS: dict[str, dict[str, object]] = {}


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, object, object]:
    recorder = item.config.stash[_REC]
    profile = recorder.profile_for(item.name)
    _REPORTS.pop(item.nodeid, None)
    if profile is not None:
        profile.enable()
    start = time.perf_counter()
    try:
        return (yield)
    finally:
        end = time.perf_counter()
        if profile is not None:
            profile.disable()
        info = _REPORTS.pop(item.nodeid, {})
        recorder.write(
            {
                "type": "item",
                "name": item.name,
                "wall_ms": (end - start) * 1000,
                "start": start,
                "end": end,
                "rss": recorder.process.memory_info().rss,
                **info,
            }
        )


@pytest.hookimpl(optionalhook=True)  # an older plugin (--ref) has no such hook
def pytest_goleak_verdict(item: pytest.Item, service: Service, verdict: Verdict) -> None:
    # How long the after-test readings took (settle retakes included) and what the check saw.
    info = _REPORTS.setdefault(item.nodeid, {"outcome": "passed"})
    info["settle_ms"] = verdict.waited * 1000
    info["goroutines_grew"] = verdict.delta.goroutine_total


@pytest.hookimpl(optionalhook=True)
def pytest_goleak_reading(item: pytest.Item, service: Service, reading: Snapshot, phase: str) -> None:
    heap = reading.heap
    kind = "none" if heap is None else ("gc" if getattr(heap, "collected", True) else "bound")
    info = _REPORTS.setdefault(item.nodeid, {"outcome": "passed"})
    readings = info.setdefault("readings", [])
    assert isinstance(readings, list)
    readings.append(f"{phase}:{kind}")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    info = _REPORTS.setdefault(report.nodeid, {"outcome": "passed"})
    info[f"{report.when}_ms"] = report.duration * 1000
    if report.failed:
        # A leak is reported at the teardown of pytest_goleak, the benchmarks' only function-scoped fixture.
        info["outcome"] = "failed" if report.when in ("call", "teardown") else f"error-{report.when}"
        info["text"] = report.longreprtext[:_TEXT_CHARS]
    elif report.skipped and info["outcome"] == "passed":
        info["outcome"] = "skipped"
    if report.when == "call":
        info["props"] = dict(report.user_properties)
    if report.when == "teardown":
        info["reported_at"] = time.perf_counter()
