"""The functions benchmarks/report.py looks up in cProfile dumps, or has the timing plugin wrap, still exist.

A profiled name that no longer matches anything reads as zero in RESULTS.md
rather than failing, so a rename or a move in the package must fail here.
The ``PROFILED`` and ``TIMED`` checks parse each file with ``ast``; only the
last tests import the package, to wrap and unwrap the ``TIMED`` functions.
"""

from __future__ import annotations

import ast
import cProfile
import importlib
import importlib.util
import math
import pstats
import socket
import time
from pathlib import Path

import pytest
from benchreport import load_report, load_timing

ROOT = Path(__file__).resolve().parents[2]


report = load_report()
PROFILED: dict[str, tuple[str, str]] = report.PROFILED
TIMED: dict[str, tuple[str, str, str, str]] = report.TIMED
PLUGIN = {what: entry for what, entry in PROFILED.items() if entry[0].startswith("pytest_goleak/")}
THIRD_PARTY = {what: entry for what, entry in PROFILED.items() if entry not in PLUGIN.values() and entry[0] != "~"}
BUILTIN = {what: entry for what, entry in PROFILED.items() if entry[0] == "~"}


def _defined(path: Path) -> set[str]:
    """Every function and method name defined in ``path``, at any depth (cProfile names nested ones too)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return {node.name for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}


def test_the_table_covers_the_plugin() -> None:
    assert len(PLUGIN) >= 10
    assert set(PROFILED) == set(PLUGIN) | set(THIRD_PARTY) | set(BUILTIN)


@pytest.mark.parametrize(("what", "entry"), sorted(PLUGIN.items()), ids=sorted(PLUGIN))
def test_plugin_function_exists(what: str, entry: tuple[str, str]) -> None:
    file, function = entry
    path = ROOT / file
    assert path.is_file(), f"PROFILED[{what!r}]: {file} does not exist; point it at where {function} lives now"
    assert function in _defined(path), f"PROFILED[{what!r}]: {file} defines no function {function!r}"


@pytest.mark.parametrize(("what", "entry"), sorted(THIRD_PARTY.items()), ids=sorted(THIRD_PARTY))
def test_third_party_function_exists(what: str, entry: tuple[str, str]) -> None:
    file, function = entry
    package = file.split("/", 1)[0]
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        pytest.skip(f"{package} is not installed")
    path = Path(spec.origin).parent.parent / file
    assert path.is_file(), f"PROFILED[{what!r}]: {file} is not in the installed {package}"
    assert function in _defined(path), f"PROFILED[{what!r}]: {file} defines no function {function!r}"


def test_builtins_are_named_as_cprofile_names_them(tmp_path: Path) -> None:
    """The builtin entries match what cProfile records for a sleep and each socket call, with their caller."""

    def calls() -> None:
        time.sleep(0)
        left, right = socket.socketpair()
        with left, right:
            left.send(b"a")
            left.sendall(b"b")
            right.recv(1)
            right.recv_into(bytearray(1))

    profile = cProfile.Profile()
    profile.runcall(calls)
    dump = tmp_path / "calls.prof"
    profile.dump_stats(dump)
    recorded = {name for (file, _line, name) in pstats.Stats(str(dump)).stats if file == "~"}  # type: ignore[attr-defined]
    for what, (_file, name) in BUILTIN.items():
        assert name in recorded, f"PROFILED[{what!r}]: cProfile records no {name!r}"
    stats = report.Stats(dump)
    assert stats.called_from(PROFILED["sleep"][1], Path(__file__).name, "calls")[0] == 1


def test_breakdowns_look_up_only_the_table(tmp_path: Path) -> None:
    """Both breakdowns run on a dump that holds none of the functions: every name they use is in the table."""
    profile = cProfile.Profile()
    profile.runcall(lambda: None)
    dump = tmp_path / "empty.prof"
    profile.dump_stats(dump)
    check = report.check_breakdown(dump, 10, 5.0)
    leak = report.leak_breakdown(dump, 1, 50.0)
    assert check[-3] == ("= profiled wall time per checked test", 5.0, "0.00 snapshots/test")
    assert leak[-1][:2] == ("= profiled wall time per leak test", 50.0)


def test_no_plugin_path_outside_the_table() -> None:
    """report.py names plugin files only in PROFILED, so that this test sees every one it looks up."""
    path = ROOT / "benchmarks" / "report.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    table = next(
        node
        for node in tree.body
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == "PROFILED"
    )
    inside = {id(node) for node in ast.walk(table)}
    stray = [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and node.value.endswith(".py")
        and "pytest_goleak/" in node.value
        and id(node) not in inside
    ]
    assert stray == []


# ---------------------------------------------------------------- TIMED: what the timing plugin wraps


def _module_file(module: str) -> Path:
    return ROOT / (module.replace(".", "/") + ".py")


@pytest.mark.parametrize(("what", "entry"), sorted(TIMED.items()), ids=sorted(TIMED))
def test_timed_function_is_looked_up_where_it_is_wrapped(what: str, entry: tuple[str, str, str, str]) -> None:
    """Each wrapped name is defined where the table says and looked up, at call time, where it is wrapped."""
    module, name, defined_in, slot = entry
    assert slot in ("wait", "verdict"), f"TIMED[{what!r}]: unknown sum {slot!r}"
    path = _module_file(module)
    assert path.is_file(), f"TIMED[{what!r}]: {module} does not exist"
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    if "." in name:  # Class.method, defined in the module itself
        assert module == defined_in, f"TIMED[{what!r}]: a method is wrapped on its own class"
        cls_name, method = name.split(".")
        classes = [node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == cls_name]
        assert classes, f"TIMED[{what!r}]: {module} defines no class {cls_name}"
        methods = {node.name for node in classes[0].body if isinstance(node, ast.FunctionDef)}
        assert method in methods, f"TIMED[{what!r}]: {cls_name} defines no method {method}"
        return
    if module == defined_in:
        # Imported inside the function that calls it (so that a session that never checks a test does not load
        # its module): looked up in its own module at each call, and wrapped there.
        top = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
        assert name in top, f"TIMED[{what!r}]: {module} defines no function {name}"
        assert any(_imports_in_a_function(file, module, name) for file in (ROOT / "pytest_goleak").rglob("*.py")), (
            f"TIMED[{what!r}]: no module imports {name} from {module} inside the function that calls it"
        )
        return
    # A function imported by name: wrapped at the import site, so it must be imported there from defined_in ...
    imported = {
        alias.asname or alias.name
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and node.module == defined_in
        for alias in node.names
        if alias.name == name
    }
    assert name in imported, f"TIMED[{what!r}]: {module} no longer does `from {defined_in} import {name}`"
    # ... called there by that name ...
    called = any(
        isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == name
        for node in ast.walk(tree)
    )
    assert called, f"TIMED[{what!r}]: {module} imports {name} but no longer calls it"
    # ... and defined where it comes from.
    source = _module_file(defined_in)
    assert source.is_file(), f"TIMED[{what!r}]: {defined_in} does not exist"
    top = {
        node.name for node in ast.parse(source.read_text(encoding="utf-8")).body if isinstance(node, ast.FunctionDef)
    }
    assert name in top, f"TIMED[{what!r}]: {defined_in} defines no function {name}"


def test_timed_covers_waits_and_verdict() -> None:
    slots = {entry[3] for entry in TIMED.values()}
    assert slots == {"wait", "verdict"}
    assert TIMED["pprof answer"][:2] == ("pytest_goleak.read.keepalive", "Answer.read")


def _resolve(module: str, name: str) -> tuple[object, str]:
    owner: object = importlib.import_module(module)
    *path, attribute = name.split(".")
    for part in path:
        owner = getattr(owner, part)
    return owner, attribute


def test_timing_plugin_wraps_every_timed_function_and_puts_it_back(monkeypatch: pytest.MonkeyPatch) -> None:
    timing = load_timing(monkeypatch)
    originals = {what: getattr(*_resolve(module, name)) for what, (module, name, _, _) in TIMED.items()}
    installed, missing = timing.install(TIMED)
    try:
        assert missing == []
        for what, (module, name, _, _) in TIMED.items():
            wrapped = getattr(*_resolve(module, name))
            assert wrapped is not originals[what] and wrapped.__wrapped__ is originals[what], what
    finally:
        timing.uninstall(installed)
    for what, (module, name, _, _) in TIMED.items():
        assert getattr(*_resolve(module, name)) is originals[what], what


def test_timing_plugin_wraps_nothing_when_one_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    """An older plugin (--ref) lacking one function: no phase figure at all, rather than one that reads zero."""
    timing = load_timing(monkeypatch)
    table = {
        **TIMED,
        "gone": ("pytest_goleak.judge.settle", "no_such_function", "pytest_goleak.judge.settle", "verdict"),
    }
    module, name = TIMED["judge"][:2]
    original = getattr(*_resolve(module, name))
    installed, missing = timing.install(table)
    assert installed == [] and missing == ["pytest_goleak.judge.settle.no_such_function"]
    assert getattr(*_resolve(module, name)) is original


def test_timed_wrapper_adds_to_its_sum(monkeypatch: pytest.MonkeyPatch) -> None:
    timing = load_timing(monkeypatch)
    slot = timing.SLOTS.index("verdict")
    before = timing._SUMS[slot]

    def slow_increment(x: int) -> int:
        time.sleep(0.002)
        return x + 1

    assert timing.timed(slow_increment, slot)(1) == 2
    assert timing._SUMS[slot] - before >= 0.002


def test_no_phase_figures_read_as_zero() -> None:
    """Items without the phase figures (an older plugin) give NaN, which the tables print as n/a."""
    side = report.python_side([{"name": "test_check_row_0001", "wall_ms": 10.0}])
    assert side.n == 0 and math.isnan(side.total.median) and math.isnan(side.before.p95)
    full = {phase: 0.25 for phase in report.PHASES} | {"wait_ms": 5.0, "py_cpu_ms": 1.0}
    side = report.python_side([full, full])
    assert side.n == 2 and side.total.median == 1.0 and side.waits.median == 5.0


def _imports_in_a_function(file: Path, module: str, name: str) -> bool:
    """Whether a function in ``file`` does ``from module import name`` and calls ``name``."""
    for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
        if isinstance(node, ast.FunctionDef):
            imports = any(
                isinstance(inner, ast.ImportFrom)
                and inner.module == module
                and any(a.name == name for a in inner.names)
                for inner in ast.walk(node)
            )
            calls = any(
                isinstance(inner, ast.Call) and isinstance(inner.func, ast.Name) and inner.func.id == name
                for inner in ast.walk(node)
            )
            if imports and calls:
                return True
    return False
