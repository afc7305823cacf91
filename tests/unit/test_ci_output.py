"""What CI reads, rendered from hand-built session records: annotations, Markdown, the comparison, pytest-html.

Pure: records are built as reports carry them; no Go, no nested pytest. The
Markdown is rendered as GitHub renders it (markdown-it-py with GFM tables) and
checked cell by cell.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from markdown_tables import as_github_renders, tables

from pytest_goleak.errors import ConfigError
from pytest_goleak.judge.measures import GOROUTINES, HEAP
from pytest_goleak.report import html_report
from pytest_goleak.report.annotations import (
    MAX_ANNOTATIONS,
    MAX_KINDS,
    command,
    escape_data,
    escape_property,
    workflow_commands,
)
from pytest_goleak.report.compare import NOISE, OtherRun, Threshold, compare, load_other, merge_documents, parse_fail
from pytest_goleak.report.json_report import document
from pytest_goleak.report.markdown import render_markdown, text
from pytest_goleak.report.merge import main as merge_main
from pytest_goleak.report.session import Point, SessionBudget, SessionRecorder, leak_lines
from pytest_goleak.report.timeline import render_timeline

SERVICE = "api pid 4242"
NASTY = "main.(*Evil).run|x\n::error::owned %0A <script>alert(1)</script> [link](http://x) $math$ `code` *b*"


def _grew(**grew: int | None) -> dict[str, int | None]:
    return {"goroutines": 0, "heap": 1024, "fds": 0, "children": 0, "threads": 0, "tmpfiles": 0, "offheap": 0} | grew


def point(
    nodeid: str,
    failure: str | None = None,
    *,
    grew: dict[str, int | None] | None = None,
    leaks: dict[str, Any] | None = None,
    leaked: dict[str, int] | None = None,
    before: int = 10,
    line: int = 7,
) -> Point:
    grown = grew or _grew()
    after = {name: (before + (value or 0)) for name, value in grown.items()}
    return Point(
        nodeid,
        SERVICE,
        dict.fromkeys(grown, before),
        after,  # type: ignore[arg-type]
        grown,
        failure,
        "failed" if failure else "passed",
        leaks,
        leaked or {},
        (nodeid.split("::")[0], line),
    )


def recorder(*points: Point, budget: SessionBudget | None = None) -> SessionRecorder:
    found = SessionRecorder(budget)
    found.points.extend(points)
    return found


LEAKY = point(
    "tests/test_api.py::test_upload[a,b]",
    "goleak: 2 goroutines leaked (budget 0), fds +1 (budget 0)",
    grew=_grew(goroutines=2, fds=1),
    leaks={"goroutines": {"main.(*Uploader).spool": 2}, "fds": 1},
    leaked={"main.(*Uploader).spool": 2},
    line=42,
)
CLEAN = point("tests/test_api.py::test_list")


# Annotations


def test_data_and_properties_are_escaped_as_the_runner_unescapes_them() -> None:
    assert escape_data("100% done\r\nnext") == "100%25 done%0D%0Anext"
    assert escape_property("a:b,c%\n") == "a%3Ab%2Cc%25%0A"


def test_a_leaking_test_gets_one_error_at_its_file_and_line_titled_by_its_headline() -> None:
    commands = workflow_commands([CLEAN, LEAKY])
    assert commands == [
        "::error file=tests/test_api.py,line=42,title=goleak%3A 2 goroutines leaked (budget 0)%2C fds +1 (budget 0)"
        "::tests/test_api.py::test_upload[a,b]%0A2 x main.(*Uploader).spool%0Afds +1"
    ]


def test_the_file_is_located_from_the_repository_root() -> None:
    (line,) = workflow_commands([LEAKY], locate=lambda path: f"service/{path}")
    assert line.startswith("::error file=service/tests/test_api.py,line=42,")


def test_nothing_from_the_service_can_start_a_command_or_end_a_property() -> None:
    evil = point("t.py::test_evil", f"goleak: 1 goroutine leaked {NASTY}", leaked={NASTY: 1}, leaks={})
    (line,) = workflow_commands([evil])
    assert "\n" not in line and "\r" not in line
    properties, message = line.removeprefix("::error ").split("::", 1)
    assert [part.split("=", 1)[0] for part in properties.split(",")] == ["file", "line", "title"]
    assert "%0A" not in properties  # the title is one line
    assert message.count("%0A") == 1  # the test id, then one kind: the kind's own newline was folded
    assert "::error::owned" in message  # as data, after the command's own "::"


def test_the_kinds_are_bounded() -> None:
    many = {f"main.worker{i:02d}" + "x" * 300: 1 for i in range(9)}
    (line,) = workflow_commands([point("t.py::test_many", "goleak: 9 goroutines leaked", leaked=many, leaks={})])
    kinds = line.split("::", 2)[2].split("%0A")[1:]
    assert len(kinds) == MAX_KINDS + 1
    assert all(len(kind) <= 200 for kind in kinds)
    assert kinds[-1].startswith("... and 4 more kinds")


def test_drift_gets_one_too_and_the_commands_stop_at_githubs_limit() -> None:
    points = [
        point(f"t.py::test_{i:02d}", "goleak: 1 goroutine leaked (budget 0)", leaked={"main.f": 1}) for i in range(15)
    ]
    commands = workflow_commands(points, drift=["api pid 1: heap grew +9.0 MiB over 15 tests"])
    assert len(commands) == MAX_ANNOTATIONS
    assert (
        commands[0]
        == "::error title=goleak%3A session drift past its budget::api pid 1: heap grew +9.0 MiB over 15 tests"
    )
    assert commands[-1] == "::error::7 more goleak failures; the log's goleak section and the job summary list them"


def test_a_command_without_a_location() -> None:
    assert command("m", title="t") == "::error title=t::m"
    assert command("m") == "::error::m"


# The -q summary


def test_a_leak_line_that_does_not_fit_keeps_the_id_whole_and_wraps_the_headline() -> None:
    nodeid = "tests/integration/test_orders_and_payments.py::test_refund_flow[card-EUR]"
    lines = leak_lines(nodeid, "goleak: 3 goroutines leaked (budget 0), heap +4.0 MiB (budget 1.0 MiB)", 60)
    assert lines[0] == f"LEAK {nodeid}:"
    assert all(len(line) <= 60 for line in lines[1:])
    assert (
        " ".join(line.strip() for line in lines[1:]) == "3 goroutines leaked (budget 0), heap +4.0 MiB (budget 1.0 MiB)"
    )
    assert leak_lines("t.py::test_a", "goleak: 1 goroutine leaked", 60) == ["LEAK t.py::test_a: 1 goroutine leaked"]


def test_quiet_lists_the_leaking_tests_without_the_charts() -> None:
    lines = recorder(CLEAN, LEAKY).lines(-1, 200)
    assert lines == [
        "2 tests checked, 1 leaked",
        "LEAK tests/test_api.py::test_upload[a,b]: 2 goroutines leaked (budget 0), fds +1 (budget 0)",
    ]


# Markdown, rendered as GitHub does


def test_the_summary_renders_the_leaking_tests_largest_growth_and_session() -> None:
    markdown = render_markdown(recorder(CLEAN, LEAKY), ["1 test with known leaks from goleak-baseline.json"])
    rendered = as_github_renders(markdown)
    leaking, largest, session = tables(rendered)
    assert leaking == [
        ["test", "verdict", "leaked"],
        [
            "tests/test_api.py::test_upload[a,b]",
            "goleak: 2 goroutines leaked (budget 0), fds +1 (budget 0)",
            "2 x main.(*Uploader).spool; fds +1",
        ],
    ]
    assert ["goroutines", "+2", "tests/test_api.py::test_upload[a,b]"] in largest
    assert ["heap", "+1.0 KiB", "tests/test_api.py::test_list"] in largest
    assert session[0] == ["service run", "tests", "goroutines", "heap", "fds", "offheap"]
    assert session[1][:2] == [SERVICE, "2"]
    assert "<h2>pytest-goleak: leaks found</h2>" in rendered
    assert "<li>1 test with known leaks from goleak-baseline.json</li>" in rendered


def test_text_from_the_service_renders_as_itself() -> None:
    evil = point(f"t.py::test_x[{NASTY}]", f"goleak: {NASTY}", leaked={NASTY: 1}, leaks={})
    rendered = as_github_renders(render_markdown(recorder(evil)))
    (leaking, *_) = tables(rendered)
    folded = " ".join(NASTY.split())
    assert leaking[1] == [f"t.py::test_x[{folded}]", f"goleak: {folded}", f"1 x {folded}"]
    for markup in ("<script", "<a ", "<code>", "<em>", "<strong>b"):
        assert markup not in rendered.split("</table>")[0].split("<table>")[1]
    assert text("a|b") == "a\\|b"


def test_drift_and_a_clean_run() -> None:
    grown = point("t.py::test_a", grew=_grew(heap=3 << 20))
    rendered = as_github_renders(render_markdown(recorder(grown, budget=SessionBudget({"heap": 1 << 20}))))
    assert "<h2>pytest-goleak: leaks found</h2>" in rendered
    assert "<strong>session drift</strong> api pid 4242: heap grew +3.0 MiB over 1 tests" in rendered
    assert "<h2>pytest-goleak: no leaks</h2>" in as_github_renders(render_markdown(recorder(CLEAN)))


# Comparing two runs


def _other(*points: Point, session: dict[str, int] | None = None) -> OtherRun:
    doc = document(points, {}, {SERVICE: session or {}})
    return OtherRun(
        (Path("main.json"),),
        {t["test"]: {n: m["delta"] for n, m in t["measures"].items()} for t in doc["tests"]},
        session or {},
        len(points),
    )


def test_a_test_that_grew_more_than_in_the_other_run_is_a_change_and_fails_past_its_threshold() -> None:
    here = recorder(
        point("t.py::test_cache", grew=_grew(heap=300 << 10)),
        point("t.py::test_same", grew=_grew(heap=20 << 10)),
        point("t.py::test_new"),
    )
    there = _other(
        point("t.py::test_cache", grew=_grew(heap=12 << 10)),
        point("t.py::test_same", grew=_grew(heap=10 << 10)),  # within the heap's noise
        point("t.py::test_gone"),
    )
    result = compare(here, there, parse_fail("heap:+256KiB,goroutines:+1", "--goleak-compare-fail"))
    (change,) = result.changes
    assert (change.test, change.measure, change.more, change.allowed) == (
        "t.py::test_cache",
        HEAP,
        288 << 10,
        256 << 10,
    )
    assert result.failing_tests == ["t.py::test_cache"]
    assert result.new == ("t.py::test_new",) and result.gone == ("t.py::test_gone",)
    assert result.lines(200) == [
        "compared 2 tests with main.json: 1 test grew more than in main.json, 1 past --goleak-compare-fail, 1 new, "
        "1 not run here",
        "COMPARE FAIL t.py::test_cache: heap +300.0 KiB here, +12.0 KiB in main.json (+288.0 KiB more; allowed "
        "+256.0 KiB)",
        "new (not in main.json): t.py::test_new",
        "not run here (in main.json): t.py::test_gone",
    ]
    # Without thresholds it is shown only past the heap's noise, and fails nothing.
    assert not compare(here, there).changes
    shown = compare(here, there, noise={**NOISE, "heap": 64 << 10})
    assert [c.test for c in shown.changes] == ["t.py::test_cache"] and not shown.failing


def test_the_session_is_compared_as_session_thresholds_say() -> None:
    here = recorder(point("t.py::test_a", grew=_grew(heap=5 << 20)))
    there = _other(point("t.py::test_a", grew=_grew(heap=5 << 20)), session={"heap": 0, "goroutines": 0})
    result = compare(here, there, parse_fail("session_heap:+4MiB", "x"))
    (session,) = result.session
    assert session.test is None and session.fails and not result.changes
    assert result.failing_tests == []
    assert result.lines(200)[-1].startswith("COMPARE FAIL session: heap +5.0 MiB here, +0 B in main.json")
    # The Markdown table has it, with a test's row after it.
    rows = tables(as_github_renders(render_markdown(here, comparison=result)))[-1]
    assert rows[0] == ["test", "measure", "here", "main.json", "more", "verdict"]
    assert rows[1] == ["session", "heap", "+5.0 MiB", "+0 B", "+5.0 MiB", "fails (allowed +4.0 MiB)"]


@pytest.mark.parametrize(
    ("spec", "said"),
    [
        ("heapp:+1", "'heapp' is not a measure; use one of goroutines, heap"),
        ("heap", "'heap' is not MEASURE:+AMOUNT"),
        ("heap:+5%", "'heap:+5%' is a percentage"),
        ("heap:+lots", "'lots' is not a size"),
        ("session_children:+1", "'session_children' is not a measure"),
    ],
)
def test_a_bad_fail_spec_names_the_cause_and_an_example(spec: str, said: str) -> None:
    with pytest.raises(ConfigError, match=r"^--goleak-compare-fail") as caught:
        parse_fail(spec, "--goleak-compare-fail")
    assert said in str(caught.value) and "\n" not in str(caught.value)


def test_a_fail_spec_reads_commas_lines_and_a_sign() -> None:
    found = parse_fail(["heap: 256KiB", "goroutines:+1, session_fds:+2"], "x")
    assert found == (Threshold(HEAP, 256 << 10), Threshold(GOROUTINES, 1), Threshold(found[2].measure, 2, True))
    assert found[2].key == "session_fds"


def _write(path: Path, *points: Point, growth: dict[str, int] | None = None) -> Path:
    path.write_text(json.dumps(document(points, {}, {SERVICE: growth or {}})))
    return path


def test_shards_are_one_run_and_merge_into_one_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    one = _write(tmp_path / "one.json", point("t.py::test_a"), growth={"heap": 1000})
    two = _write(tmp_path / "two.json", point("t.py::test_b"), growth={"heap": 24})
    other = load_other([one, two])
    assert sorted(other.tests) == ["t.py::test_a", "t.py::test_b"]
    assert other.session == {"heap": 1024} and other.session_tests == 2
    assert other.name == "one.json and 1 more"
    assert merge_main([str(tmp_path / "main.json"), str(one), str(two)]) == 0
    assert "merge: 2 tests from 2 files into" in capsys.readouterr().out
    merged = json.loads((tmp_path / "main.json").read_text())
    assert merged == merge_documents([json.loads(one.read_text()), json.loads(two.read_text())])
    assert load_other([tmp_path / "main.json"]).tests == other.tests


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (None, "does not exist; point it at a file written by --goleak-json"),
        ("{not json", "is not JSON"),
        ('{"tests": []}', "is not a pytest-goleak JSON report"),
        ('{"tool": "pytest-goleak", "version": 99, "tests": []}', "is version 99 of the JSON report"),
        ('{"tool": "pytest-goleak", "version": 1, "tests": [{"x": 1}]}', "has a test entry without"),
    ],
)
def test_a_missing_or_garbled_file_is_one_line(tmp_path: Path, content: str | None, said: str) -> None:
    path = tmp_path / "main.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError) as caught:
        load_other([path])
    assert said in str(caught.value) and "\n" not in str(caught.value)
    assert merge_main([str(tmp_path / "out.json"), str(path)]) == 2


# pytest-html fragments


def test_the_html_fragments_escape_what_they_show() -> None:
    record = {
        "before": {"goroutines": 10, "fds": 4},
        "after": {"goroutines": 12, "fds": 5},
        "grew": {"goroutines": 2, "heap": 2048, "fds": 1, "threads": None},
        "failure": "goleak: 2 goroutines leaked",
        "leaks": {"goroutines": {"x": 2}, "fds": 1},
    }
    assert html_report.row_cell(record) == (
        '<td class="col-goleak goleak-leaked">goroutines +2, heap +2.0 KiB, fds +1</td>'
    )
    assert html_report.row_cell(None) == '<td class="col-goleak"></td>'
    extra = html_report.leak_extra(record, "goleak: <b>2</b> & more\n\nthe rest")
    assert "<p>goleak: &lt;b&gt;2&lt;/b&gt; &amp; more</p>" in extra
    assert extra.count("<rect ") == 4  # goroutines and fds, before and after
    assert "<script" not in html_report.summary_html(["LEAK t.py::x: <script>"])


def test_off_heap_is_charted_as_growth_since_the_first_test() -> None:
    # Off-heap in one reading can be negative (the runtime counts memory it reserved and never
    # touched); only its growth means something, so the charts start at +0.
    points = [point(f"t.py::test_{i}", grew={"offheap": i << 20}, before=-(23 << 20)) for i in range(3)]
    (line,) = [line for line in recorder(*points).lines(0, 200) if line.lstrip().startswith("offheap")]
    assert line.endswith("+0 B -> +2.0 MiB (since the first test)"), line
    assert "-23" not in line
    page = render_timeline(recorder(*points))
    assert "off-heap memory, since the first test" in page and "-23" not in page
