"""pytest-html: the fragments the plugin puts into a pytest-html report, escaped HTML.

Most suites already publish pytest-html's report; a leak should be in it,
not only in the terminal and the timeline file. Each checked test's row gets
a ``goleak`` cell with its measures' growth, a leaking test's row the leak
report with a small chart of its readings before and after, and the
report's summary section the session's goleak summary. The full report is
the test's failure, which pytest-html shows as the row's log. pytest-html is
optional: the plugin registers its hooks only where pytest-html is loaded
(plugin.py), and nothing here imports it.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

from pytest_goleak.judge.measures import BY_NAME, MEASURES

BAR_WIDTH, BAR_HEIGHT = 320, 18


def growth_text(grew: Mapping[str, object]) -> str:
    """``goroutines +0, heap +12.0 KiB, fds +0, ...``: every measure read, in the table's order."""
    said = [
        f"{m.name} {m.signed(value)}"
        for m in MEASURES
        if isinstance(value := grew.get(m.name), int) and not isinstance(value, bool)
    ]
    return ", ".join(said) or "not read"


def header_cell() -> str:
    return '<th class="col-goleak">goleak growth</th>'


def row_cell(record: Mapping[str, object] | None) -> str:
    """The row's goleak cell: the growth of a checked test, empty for one that was not checked."""
    if record is None:
        return '<td class="col-goleak"></td>'
    grew = record.get("grew")
    said = growth_text(grew if isinstance(grew, dict) else {})
    leaked = " goleak-leaked" if record.get("failure") else ""
    return f'<td class="col-goleak{leaked}">{html.escape(said)}</td>'


def _bars(record: Mapping[str, object]) -> str:
    """An SVG of each leaking measure's reading before and after the test, scaled to the larger."""
    before, after, leaks = record.get("before"), record.get("after"), record.get("leaks")
    if not isinstance(before, dict) or not isinstance(after, dict):
        return ""
    names = [name for name in (leaks if isinstance(leaks, dict) else {}) if name in BY_NAME]
    rows: list[str] = []
    for name in names:
        old, new = before.get(name), after.get(name)
        if not isinstance(old, int) or not isinstance(new, int):
            continue
        measure, top = BY_NAME[name], max(old, new, 1)
        y = len(rows) * (2 * BAR_HEIGHT + 12)
        for i, (label, value, color) in enumerate((("before", old, "#9aa5b1"), ("after", new, "#c0392b"))):
            width = max(1.0, value / top * BAR_WIDTH)
            top_y = y + i * BAR_HEIGHT
            rows.append(
                f'<rect x="150" y="{top_y}" width="{width:.1f}" height="{BAR_HEIGHT - 4}" fill="{color}"/>'
                f'<text x="0" y="{top_y + 12}">{html.escape(measure.name)} {label}</text>'
                f'<text x="{156 + width:.1f}" y="{top_y + 12}">{html.escape(measure.show(value))}</text>'
            )
    if not rows:
        return ""
    height = len(rows) // 2 * (2 * BAR_HEIGHT + 12)
    return (
        f'<svg class="goleak-bars" width="{150 + BAR_WIDTH + 90}" height="{height}" role="img" '
        f'aria-label="readings before and after the test" font-size="12" font-family="sans-serif">'
        + "".join(rows)
        + "</svg>"
    )


def leak_extra(record: Mapping[str, object], report: str) -> str:
    """The leaking test's extra: the headline over a chart of what grew (the report is in the row's log)."""
    headline = report.splitlines()[0] if report else ""
    return (
        '<div class="goleak-report"><h4>goleak: the leak check failed</h4>'
        f"<p>{html.escape(headline)}</p>{_bars(record)}</div>"
    )


def summary_html(lines: Sequence[str]) -> str:
    """The session's goleak summary for the report's summary section: the terminal's lines, preformatted."""
    body = html.escape("\n".join(lines))
    return f'<div class="goleak-summary"><h2>goleak</h2><pre>{body}</pre></div>'
