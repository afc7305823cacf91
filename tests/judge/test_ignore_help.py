"""The end of a goroutine-leak report: the runtime's word on the leaked kinds and the lines that would ignore them.

The text is checked on hand-built verdicts, and that the printed lines really
ignore the kind against the example service. What the runtime's proof adds to it
is checked with the proof itself, in test_detection.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from fnmatch import fnmatchcase

import pytest
from corefakes import snapshot

from pytest_goleak.judge.budget import Budget
from pytest_goleak.judge.diff import Delta
from pytest_goleak.judge.measures import FDS, GOROUTINES
from pytest_goleak.judge.verdict import LeakedGroup, Verdict
from pytest_goleak.read.pprof import Frame
from pytest_goleak.report.hints import ignore_help, literal

STACK = (Frame("main.worker", "/src/worker.go", 12),)


def _verdict(*groups: LeakedGroup, leak_profile: bool = False) -> Verdict:
    count = sum(group.count for group in groups)
    delta = Delta(grew={GOROUTINES.name: count})
    phrase = (GOROUTINES.phrase(count, 0),)
    verdict = Verdict(snapshot(), snapshot(), delta, phrase, Budget(), (GOROUTINES,), leaked_groups=tuple(groups))
    return replace(verdict, leak_profile=leak_profile)


def _group(identity: str, count: int = 1, proven: int = 0) -> LeakedGroup:
    return LeakedGroup(count, identity, "chan receive", STACK, Frame("main.start"), proven=proven)


def test_one_kind_gets_the_ini_line_and_the_marker_last() -> None:
    text = ignore_help(_verdict(_group("main.(*Hub).subscribe", 2)))
    assert text.startswith("\n\n")  # a paragraph of its own
    lines = text.split("\n")
    assert lines[-2:] == [
        "    goleak_ignore = main.(*Hub).subscribe",
        '    @pytest.mark.goleak(ignore=["main.(*Hub).subscribe"])',
    ]
    assert not any("proved" in line or "prove " in line for line in lines)  # no leak profile: nothing said of proof


def test_several_kinds_get_the_ini_list_form_once_each() -> None:
    text = ignore_help(_verdict(_group("main.a", 2), _group("main.b"), _group("main.a")))
    assert text.endswith(
        '    goleak_ignore =\n        main.a\n        main.b\n    @pytest.mark.goleak(ignore=["main.a", "main.b"])'
    )


@pytest.mark.parametrize(
    ("groups", "words"),
    [
        ([_group("main.a", 1, proven=1)], "The Go runtime proved it leaked: nothing can ever wake it,"),
        ([_group("main.a", 3, proven=3)], "The Go runtime proved all of them leaked: nothing can ever wake them,"),
        ([_group("main.a", 3, proven=1), _group("main.b")], "The Go runtime proved 1 of these 4 leaked"),
        ([_group("main.a", 2)], "The Go runtime's leak profile does not prove these leaked"),
    ],
)
def test_it_says_what_the_runtime_proved_when_its_leak_profile_was_read(
    groups: Sequence[LeakedGroup], words: str
) -> None:
    assert words in ignore_help(_verdict(*groups, leak_profile=True))


def test_nothing_is_added_without_leaked_goroutines() -> None:
    fds = replace(_verdict(), violations=(FDS.phrase(1, 0),), over=(FDS,))
    assert ignore_help(fds) == ""


@pytest.mark.parametrize("identity", ["main.(*S).run", "main.Cache[...].evict", "main.Map[go.shape.string].run.func1"])
def test_the_pattern_matches_exactly_its_identity(identity: str) -> None:
    assert fnmatchcase(identity, literal(identity))
    assert not fnmatchcase(identity + "x", literal(identity))


def _printed(text: str) -> tuple[str, str]:
    """The ini line and the marker line a failed run printed."""
    ini = re.search(r"^ {4}(goleak_ignore = .+)$", text, re.MULTILINE)
    marker = re.search(r"^ {4}(@pytest\.mark\.goleak\(ignore=.+\))$", text, re.MULTILINE)
    assert ini and marker, text
    return ini.group(1), marker.group(1)


LEAKY = """
def test_leaky(pytest_goleak):
    assert pytest_goleak.client.get("/leaky/chan-send").status_code == 200
"""


def test_the_printed_lines_ignore_the_leaked_kind(pytester: pytest.Pytester, write_ini: Callable[..., None]) -> None:
    write_ini()
    pytester.makepyfile(LEAKY)
    failed = pytester.runpytest()
    failed.assert_outcomes(passed=1, errors=1)
    ini, marker = _printed(failed.stdout.str())
    assert ini == "goleak_ignore = main.(*PriceService).fetchQuote"
    pytester.makepyfile("import pytest\n\n" + marker + LEAKY)
    pytester.runpytest().assert_outcomes(passed=1)
    write_ini(ini + "\n")
    pytester.makepyfile(LEAKY)
    pytester.runpytest().assert_outcomes(passed=1)
