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
  after a forced GC, ``bound`` read without one, ``kept`` the reading before's,
  a settle retake that waited on goroutines or fds alone, ``none`` not read). A
  before-reading the plugin adopted from the previous test is not told, so a
  test that took none has no ``before`` entry.

* ``py_before_ms`` / ``py_after_ms`` / ``py_verdict_ms`` / ``py_hooks_ms``,
  ``wait_ms`` and ``py_cpu_ms``, for a test that uses the ``pytest_goleak`` fixture: the
  plugin's own Python time per phase, the waits on the service left out (see
  "The plugin's Python side" below). Absent when the plugin under test lacks
  one of the functions in ``report.TIMED`` (an older commit under ``--ref``).

With ``GOLEAK_BENCH_PROFILE=PATH`` it also runs cProfile around every
``test_check_*`` item (stats written to ``PATH``) and every ``test_leak_*``
item (``PATH.leak``), and nothing else.

The plugin's Python side
------------------------
At configure, every function in ``report.TIMED`` is replaced, where the
plugin looks it up, by a wrapper that adds its wall time to one of three
process-wide sums: ``wait`` (``keepalive.Answer.read``, through which every
wait of the plugin on the service goes: the status and body of one pprof
answer), ``verdict`` (judging and rendering) and, from a hook wrapper here,
``hooks`` (the dispatch of ``pytest_goleak_reading`` / ``pytest_goleak_verdict``
to their implementations). The originals are put back at unconfigure. If one
is missing, none is replaced and the session record says which
(``timed_missing``).

Per test, four regions are timed, each with the sums read at its start and
end:

* ``setup``: the ``pytest_goleak`` fixture's setup (``pytest_fixture_setup``);
* ``outer``: a ``pytest_runtest_call`` wrapper registered right after the
  plugin (so it runs just outside the plugin's own call wrapper);
* ``inner``: this module's ``pytest_runtest_call`` wrapper, registered right
  before the plugin (run.py passes ``-p goleak_bench_timing -p goleak``), so
  it runs just inside it: the test body as the plugin's wrapper sees it;
* ``teardown``: the ``pytest_goleak`` fixture's teardown, where the plugin
  judges the test, the test's other fixtures torn down before it. It starts
  in a finalizer added to the fixture right after its setup (pytest runs a
  fixture's finalizers last added first, so it runs just before the
  fixture's own) and ends in ``pytest_fixture_post_finalizer``. The rest of
  pytest's teardown phase (capture, logging, the other fixtures' teardowns)
  is left out: a test without the plugin pays it too.

Besides, the plugin's other per-test pytest hooks (``pytest_runtest_setup``,
``pytest_runtest_makereport``, ``pytest_runtest_logreport``) are timed by
wrapping their implementations (:func:`time_own_hooks`), each call counted in
before when it is about the setup phase, in after otherwise.

before = setup wall - its waits, verdict and hooks + the setup phase's own
hooks; after = (outer - inner) wall + teardown wall - the waits, verdict and
hooks in them + the other phases' own hooks; verdict, hooks and waits = their
sums over setup, (outer - inner) and teardown. ``py_cpu_ms`` is this thread's
CPU time (``time.thread_time``) over the same regions and hooks: the same
Python work, all four phases and the reading of the answers together, without
the time spent waiting for a CPU on a busy machine; ``py_cpu_own_ms`` is the
same less the CPU time spent in the waits (receiving and reading the answers):
the plugin's own work, which neither a busy machine nor the service stretches.
Whether the two call wrappers really sit next to the plugin's is checked at
configure and written to the session record (``call_wrappers``).
"""

from __future__ import annotations

import cProfile
import functools
import importlib
import json
import os
import sys
import time
from collections.abc import Callable, Generator, Mapping
from typing import TYPE_CHECKING, Any

import psutil
import pytest
from report import TIMED

if TYPE_CHECKING:  # at run time a --ref of an older plugin may lack these modules
    from pytest_goleak import Service, Snapshot, Verdict

_OUT = os.environ.get("GOLEAK_BENCH_OUT", "")
_PROFILE = os.environ.get("GOLEAK_BENCH_PROFILE", "")
_TEXT_CHARS = 1500
_FIXTURE = "pytest_goleak"

# Seconds spent in the timed functions of the plugin, summed over the process: the waits on the service,
# judging and rendering, and the dispatch of the plugin's hooks. A list indexed by SLOTS: cheap to add to.
SLOTS = ("wait", "verdict", "hooks")
_SUMS = [0.0, 0.0, 0.0]
_WAIT, _VERDICT, _HOOKS = range(3)
# The current test's timed regions: name -> (wall seconds, CPU seconds of this thread, the sums' growth).
_REGIONS: dict[str, tuple[float, float, list[float]]] = {}
# The current test's CPU seconds in its waits: receiving and reading the answers (see timed).
_WAIT_CPU = [0.0]
# The current test's time in the plugin's other per-test hooks (time_own_hooks): wall seconds in its setup
# phase, wall seconds in the others, CPU seconds in all.
_OWN = [0.0, 0.0, 0.0]
_OWN_BEFORE, _OWN_AFTER, _OWN_CPU = range(3)
# The plugin's per-test hooks besides its call wrapper (timed by the outer and inner regions).
OWN_HOOKS = ("pytest_runtest_setup", "pytest_runtest_makereport", "pytest_runtest_logreport")


def timed(function: Callable[..., Any], slot: int) -> Callable[..., Any]:
    """``function``, adding its wall time to ``_SUMS[slot]``: two ``perf_counter`` calls.

    A wait adds its CPU time to ``_WAIT_CPU`` too (two ``thread_time`` calls more): the plugin's own CPU
    time is the rest.
    """
    clock = time.perf_counter
    if slot == _WAIT:
        cpu_clock = time.thread_time

        @functools.wraps(function)
        def waiting(*args: Any, **kwargs: Any) -> Any:
            start, cpu = clock(), cpu_clock()
            try:
                return function(*args, **kwargs)
            finally:
                _SUMS[slot] += clock() - start
                _WAIT_CPU[0] += cpu_clock() - cpu

        return waiting

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = clock()
        try:
            return function(*args, **kwargs)
        finally:
            _SUMS[slot] += clock() - start

    return wrapper


def install(table: Mapping[str, tuple[str, str, str, str]]) -> tuple[list[tuple[Any, str, Any]], list[str]]:
    """Replace every function in ``table`` where it is looked up by a :func:`timed` wrapper.

    Returns (what to put back: owner, attribute, original), and the names not
    found; if any is missing nothing is replaced, so that no figure reads as
    zero for a function that was never timed.
    """
    found: list[tuple[Any, str, Any, int]] = []
    missing: list[str] = []
    for module_name, name, _defined_in, slot in table.values():
        try:
            owner: Any = importlib.import_module(module_name)
            *path, attribute = name.split(".")
            for part in path:
                owner = getattr(owner, part)
            original = getattr(owner, attribute)
            if not callable(original):
                raise AttributeError(name)
        except Exception:  # an older plugin (--ref): the module or the name does not exist
            missing.append(f"{module_name}.{name}")
            continue
        found.append((owner, attribute, original, SLOTS.index(slot)))
    if missing:
        return [], missing
    for owner, attribute, original, slot_index in found:
        setattr(owner, attribute, timed(original, slot_index))
    return [(owner, attribute, original) for owner, attribute, original, _ in found], []


def uninstall(installed: list[tuple[Any, str, Any]]) -> None:
    for owner, attribute, original in reversed(installed):
        setattr(owner, attribute, original)


def _own_slot(args: tuple[Any, ...]) -> int:
    """Before or after: the setup hook, and a report or call of the setup phase, count in before."""
    when = next((arg.when for arg in args if hasattr(arg, "when")), "setup")
    return _OWN_BEFORE if when == "setup" else _OWN_AFTER


def _add_own(slot: int, wall: float, cpu: float) -> None:
    _OWN[slot] += time.perf_counter() - wall
    _OWN[_OWN_CPU] += time.thread_time() - cpu


def timed_hook(function: Callable[..., Any], wrapper: bool) -> Callable[..., Any]:
    """A hook implementation's ``function``, its time added to ``_OWN``; a wrapper's two halves timed apart."""
    if not wrapper:

        @functools.wraps(function)
        def plain(*args: Any) -> Any:
            wall, cpu = time.perf_counter(), time.thread_time()
            try:
                return function(*args)
            finally:
                _add_own(_own_slot(args), wall, cpu)

        return plain

    @functools.wraps(function)
    def halves(*args: Any) -> Generator[Any, Any, Any]:
        slot = _own_slot(args)
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            inner = function(*args)
            first = next(inner)
        finally:
            _add_own(slot, wall, cpu)
        try:
            sent = yield first  # the other implementations run here, untimed
        except BaseException as exc:
            resume: Callable[[], Any] = functools.partial(inner.throw, exc)
        else:
            resume = functools.partial(inner.send, sent)
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            resume()
        except StopIteration as stop:
            return stop.value
        finally:
            _add_own(slot, wall, cpu)
        raise RuntimeError(f"{function.__name__} yielded twice")

    return halves


def time_own_hooks(config: pytest.Config) -> list[tuple[Any, Any]]:
    """Wrap the plugin's implementations of OWN_HOOKS (see :func:`timed_hook`); returns what to put back."""
    replaced = []
    for name in OWN_HOOKS:
        for impl in getattr(config.pluginmanager.hook, name).get_hookimpls():
            if getattr(impl.function, "__module__", "").startswith("pytest_goleak."):
                replaced.append((impl, impl.function))
                impl.function = timed_hook(impl.function, impl.wrapper or impl.hookwrapper)
    return replaced


class _Region:
    """Times one region of a test: its wall time, this thread's CPU time, and how much each of ``_SUMS`` grew."""

    __slots__ = ("cpu", "name", "start", "sums")

    def __init__(self, name: str) -> None:
        self.name = name
        self.sums = list(_SUMS)
        self.cpu = time.thread_time()
        self.start = time.perf_counter()

    def end(self) -> None:
        wall = time.perf_counter() - self.start
        cpu = time.thread_time() - self.cpu
        _REGIONS[self.name] = (wall, cpu, [now - then for now, then in zip(_SUMS, self.sums, strict=True)])


def phases() -> dict[str, float]:
    """The current test's plugin phases in ms, from its regions; empty if it did not set up ``pytest_goleak``."""
    if not {"setup", "outer", "inner"} <= _REGIONS.keys():
        return {}
    setup_wall, setup_cpu, setup = _REGIONS["setup"]
    outer_wall, outer_cpu, outer = _REGIONS["outer"]
    inner_wall, inner_cpu, inner = _REGIONS["inner"]
    # The plugin judges a test in its fixture's teardown, after the test's own fixtures (a steady-state test
    # in its call wrapper).
    down_wall, down_cpu, down = _REGIONS.get("teardown", (0.0, 0.0, [0.0] * len(setup)))
    around = [o - i for o, i in zip(outer, inner, strict=True)]  # in the plugin's call wrapper, not in the body
    after = [a + d for a, d in zip(around, down, strict=True)]
    cpu = setup_cpu + outer_cpu - inner_cpu + down_cpu + _OWN[_OWN_CPU]
    return {
        "py_before_ms": (setup_wall - sum(setup) + _OWN[_OWN_BEFORE]) * 1000,
        "py_after_ms": (outer_wall - inner_wall + down_wall - sum(after) + _OWN[_OWN_AFTER]) * 1000,
        "py_verdict_ms": (setup[_VERDICT] + after[_VERDICT]) * 1000,
        "py_hooks_ms": (setup[_HOOKS] + after[_HOOKS]) * 1000,
        "wait_ms": (setup[_WAIT] + after[_WAIT]) * 1000,
        # The plugin's CPU time in the same regions, waits, verdict and hooks included: unlike the wall
        # figures above, not stretched when the machine is busy and this process waits for a CPU.
        "py_cpu_ms": cpu * 1000,
        # The same less the waits' own CPU time: the plugin's own work alone, before, after, verdict and hooks.
        "py_cpu_own_ms": (cpu - _WAIT_CPU[0]) * 1000,
    }


class _Recorder:
    def __init__(self) -> None:
        self.process = psutil.Process()
        self.profiles: dict[str, cProfile.Profile] = {}
        self.file = open(_OUT, "a", encoding="utf-8") if _OUT else None
        self.installed: list[tuple[Any, str, Any]] = []
        self.hooks: list[tuple[Any, Any]] = []  # the plugin's hook implementations wrapped, and their functions
        self.timing = False  # whether the TIMED functions are wrapped: the phase figures are written only then

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
        uninstall(self.installed)
        self.installed = []
        for impl, function in self.hooks:
            impl.function = function
        self.hooks = []
        for kind, profile in self.profiles.items():
            profile.dump_stats(_PROFILE if kind == "check" else _PROFILE + ".leak")
        if self.file is not None:
            self.file.close()


_REC = pytest.StashKey[_Recorder]()


class _OuterCall:
    """The ``outer`` region: registered right after the plugin, its call wrapper runs just outside the plugin's."""

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, object, object]:
        region = _Region("outer")
        try:
            return (yield)
        finally:
            region.end()


_OUTER = _OuterCall()
_OUTER_NAME = "goleak-bench-outer-call"


def pytest_plugin_registered(plugin: object, plugin_name: str, manager: pytest.PytestPluginManager) -> None:
    # Registered right after the plugin, _OUTER's call wrapper runs just outside the plugin's. run.py loads
    # the plugin with "-p goleak" right after this module, so that no other plugin's wrapper sits between.
    if getattr(plugin, "__name__", "") == "pytest_goleak.plugin" and manager.get_plugin(_OUTER_NAME) is None:
        manager.register(_OUTER, _OUTER_NAME)


def _call_wrappers(config: pytest.Config) -> list[str]:
    """The ``pytest_runtest_call`` wrappers from the outermost in, by plugin name."""
    manager = config.pluginmanager
    impls = [impl for impl in manager.hook.pytest_runtest_call.get_hookimpls() if impl.wrapper or impl.hookwrapper]
    return [manager.get_name(impl.plugin) or repr(impl.plugin) for impl in reversed(impls)]


def pytest_configure(config: pytest.Config) -> None:
    recorder = config.stash[_REC] = _Recorder()
    recorder.installed, missing = install(TIMED)
    recorder.timing = not missing
    if recorder.timing:
        recorder.hooks = time_own_hooks(config)
    wrappers = _call_wrappers(config)
    goleak = next(
        (
            name
            for name, plugin in config.pluginmanager.list_name_plugin()
            if getattr(plugin, "__name__", "") == "pytest_goleak.plugin"
        ),
        None,
    )
    here = config.pluginmanager.get_name(sys.modules[__name__]) or __name__
    at = wrappers.index(goleak) if goleak in wrappers else -1
    adjacent = 0 < at < len(wrappers) - 1 and wrappers[at - 1 : at + 2] == [_OUTER_NAME, goleak, here]
    recorder.write(
        {"type": "timing", "timed_missing": missing, "call_wrappers": wrappers, "call_wrappers_adjacent": adjacent}
    )


def pytest_unconfigure(config: pytest.Config) -> None:
    recorder = config.stash.get(_REC, None)
    if recorder is not None:
        recorder.close()


# nodeid -> what its reports said, filled by pytest_runtest_logreport and
# taken by the protocol wrapper once the item is done (logreport gets no item).
_REPORTS: dict[str, dict[str, object]] = {}
_LAST_HEAP: dict[str, object] = {}  # per test, the heap of its last reading told (see pytest_goleak_reading)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, object, object]:
    recorder = item.config.stash[_REC]
    profile = recorder.profile_for(item.name)
    _REPORTS.pop(item.nodeid, None)
    _REGIONS.clear()
    _OWN[:] = [0.0, 0.0, 0.0]
    _WAIT_CPU[0] = 0.0
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
        _LAST_HEAP.pop(item.nodeid, None)
        recorder.write(
            {
                "type": "item",
                "name": item.name,
                "wall_ms": (end - start) * 1000,
                "start": start,
                "end": end,
                "rss": recorder.process.memory_info().rss,
                **info,
                **(phases() if recorder.timing else {}),
            }
        )


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(
    fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
) -> Generator[None, Any, Any]:
    if fixturedef.argname != _FIXTURE:
        return (yield)
    region = _Region("setup")
    try:
        return (yield)
    finally:
        region.end()
        # Finalizers run last added first: this one runs just before the fixture's own teardown.
        fixturedef.addfinalizer(_start_teardown)


_TEARDOWN: list[_Region] = []  # the region of the plugin fixture's teardown, once it has started


def _start_teardown() -> None:
    _TEARDOWN[:] = [_Region("teardown")]


def pytest_fixture_post_finalizer(fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest) -> None:
    if fixturedef.argname == _FIXTURE and _TEARDOWN:
        _TEARDOWN.pop().end()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    # Registered before the plugin (-p loads ahead of entry points): runs just inside the plugin's wrapper.
    region = _Region("inner")
    try:
        return (yield)
    finally:
        region.end()


# The plugin's own hooks. Wrappers, outermost: the time around ``yield`` is the dispatch to every other
# implementation, and what is recorded here is recorded after that time is taken.


@pytest.hookimpl(wrapper=True, tryfirst=True, optionalhook=True)  # an older plugin (--ref) has no such hook
def pytest_goleak_verdict(item: pytest.Item, service: Service, verdict: Verdict) -> Generator[None, object, object]:
    start = time.perf_counter()
    try:
        return (yield)
    finally:
        _SUMS[_HOOKS] += time.perf_counter() - start
        # How long the after-test readings took (settle retakes included) and what the check saw.
        info = _REPORTS.setdefault(item.nodeid, {"outcome": "passed"})
        info["settle_ms"] = verdict.waited * 1000
        info["goroutines_grew"] = verdict.delta.goroutine_total


@pytest.hookimpl(wrapper=True, tryfirst=True, optionalhook=True)
def pytest_goleak_reading(
    item: pytest.Item, service: Service, reading: Snapshot, phase: str
) -> Generator[None, object, object]:
    start = time.perf_counter()
    try:
        return (yield)
    finally:
        _SUMS[_HOOKS] += time.perf_counter() - start
        heap = reading.heap
        kind = "none" if heap is None else ("gc" if getattr(heap, "collected", True) else "bound")
        if heap is not None and heap is _LAST_HEAP.get(item.nodeid):
            kind = "kept"  # a settle retake carries the reading before's heap on: no GC was forced for it
        _LAST_HEAP[item.nodeid] = heap
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
