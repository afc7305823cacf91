"""GitHub Actions annotations: one ``::error`` workflow command per leaking test, at the test's file and line.

A leak in a CI log is one line among hundreds; an annotation shows on the
pull request's diff and on the run's page. GitHub reads workflow commands
from the job's output (``::error file=F,line=L,title=T::message``); it shows
at most 10 error annotations per step, so the commands are capped at
:data:`MAX_ANNOTATIONS`, the last saying how many more there are.

Everything in a command may come from the service (goroutine function
names, a headline): data is escaped as GitHub's runner unescapes it (``%``,
CR, LF), properties also ``,`` and ``:``, so nothing can end a property or
start a command of its own. Other CI systems read the JUnit XML instead
(docs/ci.md says what GitLab shows of it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pytest_goleak.judge.measures import BY_NAME, GOROUTINES
from pytest_goleak.report.compare import Comparison
from pytest_goleak.report.session import Point

MAX_ANNOTATIONS = 10  # GitHub shows 10 error annotations per step
MAX_KINDS = 5  # leaked kinds listed in one annotation's body
MAX_LINE = 200  # characters of one listed kind


def escape_data(text: str) -> str:
    """A command's message, as GitHub's runner unescapes it (actions/toolkit ``escapeData``)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A command's property value (file, title): also ``:`` and ``,``, which would end it."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def command(message: str, *, file: str | None = None, line: int | None = None, title: str | None = None) -> str:
    """One ``::error`` workflow command; every part escaped."""
    properties = []
    if file is not None:
        properties.append(f"file={escape_property(file)}")
        if line is not None:
            properties.append(f"line={line}")
    if title is not None:
        properties.append(f"title={escape_property(title)}")
    joined = ",".join(properties)
    return f"::error{' ' + joined if joined else ''}::{escape_data(message)}"


def _bounded(text: str, limit: int = MAX_LINE) -> str:
    text = " ".join(text.split())  # one line: a kind's name is data, not layout
    return text if len(text) <= limit else text[: limit - 3] + "..."


def leaked_kinds(point: Point) -> list[str]:
    """What a leaking test left behind, one kind a line, at most :data:`MAX_KINDS` and a count of the rest."""
    kinds: list[str] = []
    goroutines = point.leaked_goroutines or dict((point.leaks or {}).get(GOROUTINES.name) or {})
    for identity, count in sorted(goroutines.items(), key=lambda item: (-item[1], item[0])):
        kinds.append(f"{count} x {identity}")
    for name, grew in (point.leaks or {}).items():
        measure = BY_NAME.get(name)
        if measure is not None and measure is not GOROUTINES and isinstance(grew, int):
            kinds.append(measure.phrase(grew))
    shown = [_bounded(kind) for kind in kinds[:MAX_KINDS]]
    if len(kinds) > MAX_KINDS:
        shown.append(f"... and {len(kinds) - MAX_KINDS} more kinds (the test's failure report lists them all)")
    return shown


Locate = Callable[[str], str]  # a test file as pytest names it -> as the repository names it


def workflow_commands(
    points: Sequence[Point],
    drift: Sequence[str] = (),
    comparison: Comparison | None = None,
    locate: Locate = str,
) -> list[str]:
    """The session's annotations: drift first (it names no test), then each leaking test, then comparisons."""
    commands = [command(problem, title="goleak: session drift past its budget") for problem in drift]
    for point in points:
        if not point.failure:
            continue
        body = "\n".join([point.nodeid, *leaked_kinds(point)])
        commands.append(_at(point, body, _bounded(point.failure), locate))
    if comparison is not None:
        by_test = {point.nodeid: point for point in points}
        title = f"goleak: grew more than in {comparison.other.name}"
        for change in comparison.failing:
            said = change.phrase(comparison.other.name)
            found = by_test.get(change.test) if change.test is not None else None
            if found is None:
                commands.append(command(f"session: {said}", title=title))
            else:
                commands.append(_at(found, f"{found.nodeid}\n{said}", title, locate))
    if len(commands) > MAX_ANNOTATIONS:
        rest = len(commands) - (MAX_ANNOTATIONS - 1)
        commands = commands[: MAX_ANNOTATIONS - 1]
        commands.append(command(f"{rest} more goleak failures; the log's goleak section and the job summary list them"))
    return commands


def _at(point: Point, body: str, title: str, locate: Locate) -> str:
    if point.location is None:
        return command(body, title=title)
    path, line = point.location
    return command(body, file=locate(path), line=line, title=title)
