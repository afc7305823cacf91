"""The import rule of the package (written in each subpackage's ``__init__``): imports run one way.

the pytest face (plugin, hooks, settings, state, handle)  may import anything
report/   renders what judge/ decided:  report, judge, read, the Service protocol
judge/    pure, but for watch.py:      judge, read, the Service protocol (watch.py: service/ too)
service/  runs or attaches a service:  service, read
read/     reads one process:           read
every layer may import errors and units, which import nothing of the package but errors
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "pytest_goleak"
FOUNDATION = {"pytest_goleak.errors", "pytest_goleak.units", "pytest_goleak.text"}
PROTOCOL = "pytest_goleak.service.protocol"

# What each layer may import besides the foundation, as module-name prefixes.
ALLOWED: dict[str, tuple[str, ...]] = {
    "pytest_goleak.read": ("pytest_goleak.read",),
    "pytest_goleak.service": ("pytest_goleak.service", "pytest_goleak.read"),
    "pytest_goleak.judge": ("pytest_goleak.judge", "pytest_goleak.read", PROTOCOL),
    "pytest_goleak.judge.watch": ("pytest_goleak.judge", "pytest_goleak.read", "pytest_goleak.service"),
    "pytest_goleak.report": ("pytest_goleak.report", "pytest_goleak.judge", "pytest_goleak.read", PROTOCOL),
    "pytest_goleak.units": ("pytest_goleak.errors",),
    "pytest_goleak.text": (),
    "pytest_goleak.errors": (),
}


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module of the package that ``path`` imports, at any depth (TYPE_CHECKING blocks included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.startswith("pytest_goleak.") and _exists(name)}


def _exists(name: str) -> bool:
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def _rule(module: str) -> tuple[str, ...] | None:
    """The allowed prefixes of the most specific layer ``module`` belongs to; None for the pytest face."""
    layers = [layer for layer in ALLOWED if module == layer or module.startswith(layer + ".")]
    return ALLOWED[max(layers, key=len)] if layers else None


def _breaks(module: str, imported: str) -> bool:
    allowed = _rule(module)
    if allowed is None or (imported in FOUNDATION and module not in FOUNDATION):
        return False
    return not any(imported == prefix or imported.startswith(prefix + ".") for prefix in allowed)


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda path: str(path.relative_to(PACKAGE)))
def test_imports_run_one_way(path: Path) -> None:
    module = _module(path)
    wrong = sorted(name for name in _imports(path) if _breaks(module, name))
    assert not wrong, f"{module} imports {wrong} against the rule in tests/unit/test_layers.py"


@pytest.mark.parametrize(
    ("module", "imported", "broken"),
    [
        ("pytest_goleak.report.failure", "pytest_goleak.service.readiness", True),  # a network probe in a report
        ("pytest_goleak.judge.settle", "pytest_goleak.service.started", True),
        ("pytest_goleak.judge.watch", "pytest_goleak.service.readiness", False),
        ("pytest_goleak.read.snapshot", "pytest_goleak.judge.measures", True),
        ("pytest_goleak.service.started", "pytest_goleak.report.failure", True),
        ("pytest_goleak.units", "pytest_goleak.read.pprof", True),
        ("pytest_goleak.plugin", "pytest_goleak.report.failure", False),
        ("pytest_goleak.judge.diff", "pytest_goleak.units", False),
    ],
)
def test_the_rule_itself(module: str, imported: str, broken: bool) -> None:
    assert _breaks(module, imported) is broken


def test_every_subpackage_states_its_rule() -> None:
    for init in PACKAGE.glob("*/__init__.py"):
        if init.parent.name.startswith("_"):
            continue
        assert "Imports:" in init.read_text(), f"{init} does not say what it may import"
