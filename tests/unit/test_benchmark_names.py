"""The functions benchmarks/report.py looks up in cProfile dumps still exist where it looks for them.

A profiled name that no longer matches anything reads as zero in RESULTS.md
rather than failing, so a rename or a move in the package must fail here.
Nothing of the package is run: each file is parsed with ``ast``.
"""

from __future__ import annotations

import ast
import cProfile
import importlib.util
import pstats
import socket
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load_report() -> ModuleType:
    name = "goleak_benchmark_report"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / "report.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


report = _load_report()
PROFILED: dict[str, tuple[str, str]] = report.PROFILED
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
