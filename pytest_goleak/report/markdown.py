"""``--goleak-md``: the session's summary as GitHub-flavoured Markdown, for a job summary or a PR comment.

A job summary (``$GITHUB_STEP_SUMMARY``) is the first thing a reviewer sees
of a run; the terminal summary is at the end of a long log. The document has
the leaking tests with their headlines and what they leaked, the largest
growth per measure, each service run's growth over the session and its drift,
the baseline's counts and, with ``--goleak-compare``, what changed.

Test ids, headlines and goroutine names come from the suite and the
service: every such text is escaped (:func:`text`) so that it renders as
itself, never as a table cell break, a link, HTML or math. GitHub keeps at
most 1 MiB of a step's summary, so the long tables stop at :data:`MAX_ROWS`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from pytest_goleak.judge.measures import BY_NAME, SESSION
from pytest_goleak.report.annotations import leaked_kinds
from pytest_goleak.report.compare import Comparison
from pytest_goleak.report.session import SessionRecorder

MAX_ROWS = 100
# Characters that start markup anywhere in GFM or on GitHub ($ is math there); CommonMark lets a backslash escape
# them. Links need "[", so "(" stays as it is.
_SPECIAL = re.compile(r"([\\`*_\[\]<>!|~$&])")
# What starts a block at the start of a line (or of a list item): a list, a heading, a setext line, a numbered list.
_LEADING = re.compile(r"^([-+#=]|\d+[.)])")


def text(value: object) -> str:
    """``value`` as literal Markdown text on one line: markup characters backslash-escaped."""
    escaped = _SPECIAL.sub(r"\\\1", " ".join(str(value).split()))
    return _LEADING.sub(lambda found: found[1][:-1] + "\\" + found[1][-1], escaped)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return [*lines, ""]


def _more(count: int, what: str) -> list[str]:
    return [f"_... and {count} more {what}_", ""] if count > 0 else []


def render_markdown(
    recorder: SessionRecorder,
    baseline: Sequence[str] = (),
    comparison: Comparison | None = None,
    title: str = "pytest-goleak",
) -> str:
    """The whole document; ``baseline`` is the baseline's summary lines, as the terminal shows them."""
    points, failures = recorder.points, recorder.failures
    drift = recorder.drift()
    verdict = "leaks found" if failures or drift else "no leaks"
    if comparison is not None and comparison.failing:
        verdict += ", grew more than the compared run"
    lines = [f"## {text(title)}: {verdict}", ""]
    lines += [f"**{len(points)} tests checked, {len(failures)} leaked**", ""]
    if failures:
        lines += ["### Leaking tests", ""]
        rows = [
            [text(p.nodeid), text(p.failure), "; ".join(text(kind) for kind in leaked_kinds(p)) or " "]
            for p in failures[:MAX_ROWS]
        ]
        lines += _table(["test", "verdict", "leaked"], rows)
        lines += _more(len(failures) - MAX_ROWS, "leaking tests (the log lists them all)")
    largest = recorder.largest()
    if largest:
        lines += ["### Largest growth in one test", ""]
        rows = [[name, text(BY_NAME[name].signed(grew)), text(nodeid)] for name, (grew, nodeid) in largest.items()]
        lines += _table(["measure", "growth", "test"], rows)
    growth = recorder.growth()
    if growth:
        lines += ["### The service over the session", ""]
        by_service = recorder.by_service()
        header = ["service run", "tests", *(m.name for m in SESSION)]
        rows = [
            [
                text(service),
                str(len(by_service[service])),
                *(text(m.signed(grown[m.name])) if m.name in grown else "not read" for m in SESSION),
            ]
            for service, grown in growth.items()
        ]
        lines += _table(header, rows)
    if drift:
        lines += [f"- **session drift** {text(problem)}" for problem in drift] + [""]
    if baseline:
        lines += ["### Baseline", ""] + [f"- {text(line)}" for line in baseline] + [""]
    if comparison is not None:
        lines += _comparison(comparison)
    return "\n".join(lines).rstrip("\n") + "\n"


def _comparison(comparison: Comparison) -> list[str]:
    other = comparison.other.name
    lines = [f"### Compared with {text(other)}", "", text(comparison.headline()), ""]
    changes = sorted(comparison.changes, key=lambda c: (not c.fails, c.test or ""))
    session = list(comparison.session)
    if changes or session:
        rows = []
        for change in [*session, *changes][:MAX_ROWS]:
            m = change.measure
            rows.append(
                [
                    text(change.test) if change.test is not None else "**session**",
                    m.name,
                    text(m.signed(change.now)),
                    text(m.signed(change.then)),
                    text(m.signed(change.more)),
                    f"**fails** (allowed {text(m.signed(change.allowed))})" if change.allowed is not None else "grew",
                ]
            )
        lines += _table(["test", "measure", "here", text(other), "more", "verdict"], rows)
        lines += _more(len(changes) + len(session) - MAX_ROWS, "changes")
    if comparison.new:
        lines += [f"- new (not in {text(other)}): " + ", ".join(text(t) for t in comparison.new[:MAX_ROWS])]
    if comparison.gone:
        lines += [f"- not run here: {len(comparison.gone)} tests of {text(other)}"]
    if comparison.new or comparison.gone:
        lines.append("")
    return lines
