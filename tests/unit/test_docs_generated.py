"""The docs' generated parts (docs/hooks/generate.py) cover every option, measure, marker argument and hook.

Pure: the generator's renderers are called directly; neither MkDocs nor Go is needed.
"""

from __future__ import annotations

import importlib.util
import inspect
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

from pytest_goleak import hooks, settings
from pytest_goleak.judge.budget import KNOBS
from pytest_goleak.judge.measures import MEASURES
from pytest_goleak.read.backend import PORTABLE

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


@pytest.fixture(scope="module")
def generate() -> ModuleType:
    spec = importlib.util.spec_from_file_location("goleak_docs_generate", DOCS / "hooks" / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


def _rows(table: str) -> dict[str, str]:
    """A markdown table's rows by the code span in their first cell."""
    rows = {}
    for line in table.splitlines():
        found = re.match(r"\| `([^`]+)` \|", line)
        if found:
            rows[found[1]] = line
    return rows


def test_the_options_table_has_every_ini_option_with_its_flag(generate: ModuleType) -> None:
    rows = _rows(generate.options_table())
    assert {"goleak", "goleak_summary"} <= rows.keys()
    assert "`--no-goleak`" in rows["goleak"]
    assert "`--no-goleak-summary`" in rows["goleak_summary"]
    for option in settings.OPTIONS:
        assert option.ini in rows, f"{option.ini} missing from the generated options table"
        assert f"`{option.flag}`" in rows[option.ini]


def test_the_options_table_names_what_pytest_knows(generate: ModuleType, pytestconfig: pytest.Config) -> None:
    # The table is recorded from settings.register; here pytest itself, with the plugin loaded, knows each row.
    for option in generate.registered_options():
        pytestconfig.getini(option.name)  # ValueError for an ini option pytest does not know
        assert option.flags, f"{option.name} has no flag in the table"
    for option in settings.OPTIONS:
        assert pytestconfig.getoption(option.dest, default="unknown") != "unknown"


def test_the_options_table_shows_defaults_as_users_write_them(generate: ModuleType) -> None:
    rows = _rows(generate.options_table())
    assert "| `1MiB` |" in rows["goleak_heap"]
    assert "| `8MiB` |" in rows["goleak_offheap"]
    assert "| `-addr {addr}` |" in rows["goleak_args"]
    assert "| `none` |" in rows["goleak_threads"]
    assert "(default:" not in generate.options_table()


def test_the_measures_table_has_every_measure(generate: ModuleType) -> None:
    rows = _rows(generate.measures_table())
    assert list(rows) == [m.name for m in MEASURES]
    for m in MEASURES:
        assert f"`{m.junit}`" in rows[m.name]
        assert rows[m.name].endswith(f"| {m.availability(PORTABLE.lacks) or 'as on Linux'} |")


def test_the_marker_section_has_every_argument(generate: ModuleType) -> None:
    section = generate.marker_section()
    assert settings.marker_help() in section
    rows = _rows(section)
    assert list(rows) == [m.name for m in MEASURES] + [knob.name for knob in KNOBS]


def test_the_hooks_page_has_every_hookspec(generate: ModuleType) -> None:
    specs = [name for name, _ in inspect.getmembers(hooks, inspect.isfunction) if name.startswith("pytest_goleak_")]
    assert specs, "pytest_goleak/hooks.py declares no pytest_goleak_* hookspec"
    page = generate.hooks_page()
    for name in specs:
        assert f"### `{name}`" in page
        assert f"def {name}(" in page
        for param in inspect.signature(getattr(hooks, name)).parameters:
            assert re.search(rf"def {name}\(.*\b{param}\b", page), f"{name}'s {param} missing from its signature"
    assert ":class:" not in page


def test_every_generated_part_is_shown_on_some_page(generate: ModuleType) -> None:
    asked = {found["part"] for page in DOCS.glob("*.md") for found in generate.MARKER.finditer(page.read_text())}
    assert asked == set(generate.PARTS)


def test_fill_renders_between_the_markers_and_refuses_an_unknown_part(generate: ModuleType) -> None:
    page = "before\n<!-- generated: x -->\nnote\n<!-- /generated -->\nafter\n"
    assert generate.fill(page, parts={"x": lambda: "TABLE"}) == (
        "before\n<!-- generated: x -->\nTABLE\n<!-- /generated -->\nafter\n"
    )
    with pytest.raises(Exception, match="'x'"):
        generate.fill(page, "a.md", parts={})


def test_the_demo_needs_go_and_says_so_in_one_line(generate: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(generate.shutil, "which", lambda name: None)
    with pytest.raises(Exception, match=r"put Go >= 1.22 on PATH") as raised:
        generate.demo_output()
    assert "\n" not in str(raised.value)


def test_the_readme_keeps_the_sections_failure_reports_name() -> None:
    # pytest_goleak/report/hints.py sends readers to these README sections.
    readme = (ROOT / "README.md").read_text()
    headings = re.findall(r"^#+ (.*)$", readme, re.MULTILINE)
    assert "Waiting out start-up" in headings
    assert any(heading.startswith("Stateful APIs") for heading in headings)
    assert "gRPC" in headings  # a gRPC connection left open
    assert "python -m pytest" in readme


def test_every_junit_property_is_listed_in_the_ci_page() -> None:
    from pytest_goleak.judge.measures import MEASURES

    page = (Path(__file__).resolve().parents[2] / "docs" / "ci.md").read_text()
    missing = [m.junit for m in MEASURES if f"`{m.junit}`" not in page]
    assert not missing, f"docs/ci.md does not list the JUnit properties {missing}"
