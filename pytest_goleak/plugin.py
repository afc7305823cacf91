"""pytest hooks, options, fixtures and markers. Thin: it wires the other modules together.

The check spans the test's own function-scoped fixtures: ``pytest_goleak`` is
made the first function-scoped fixture each test sets up (the collection hook
reorders ``item.fixturenames``, which pytest fills in order), so it is torn
down last, and its teardown takes the after-reading and the verdict. A leak is
then reported as pytest reports any failure found after the body: an error at
teardown of the test, under the test's own node id (terminal, JUnit, JSON,
baseline). A steady-state test (``goleak(repeat=N)``) reruns only its body, so
it is still judged in the call phase (a ``pytest_runtest_call`` wrapper), where
a leak fails the test itself.
"""

from __future__ import annotations

import os
import shutil
import warnings
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import pytest
from _pytest._code.code import ExceptionRepr

from pytest_goleak import hooks, settings
from pytest_goleak.errors import ConfigError, GoleakError, ServiceMisconfigured
from pytest_goleak.judge.budget import Budget
from pytest_goleak.judge.measures import MEASURES
from pytest_goleak.read.snapshot import Part
from pytest_goleak.report.compare import Comparison, compare
from pytest_goleak.report.session import record
from pytest_goleak.service.config import ServiceConfig
from pytest_goleak.state import GoleakState
from pytest_goleak.text import line as escaped_line

if TYPE_CHECKING:
    # What a session that never uses the plugin does not import: the check, the services, the CI reports.
    from pytest_goleak.handle import GoleakHandle
    from pytest_goleak.judge.verdict import Phase, Verdict
    from pytest_goleak.judge.watch import Listeners
    from pytest_goleak.read.snapshot import Snapshot
    from pytest_goleak.service.protocol import Service
    from pytest_goleak.service.started import GoService

FIXTURES = frozenset({"goleak_service", "pytest_goleak"})


class GoleakWarning(UserWarning):
    """Something about the service the user should know, that fails no test."""


STATE = pytest.StashKey[GoleakState]()
BUDGET = pytest.StashKey[Budget]()
HANDLE = pytest.StashKey["GoleakHandle"]()
LEAK_TEXT = pytest.StashKey[str]()
REPORT_TEXT = pytest.StashKey[str]()  # the leak report, for pytest-html's row
RECORD = pytest.StashKey[dict[str, object]]()
BODY_RAN = pytest.StashKey[bool]()  # the body ran to an end that is judged (not skipped, xfailed or interrupted)
BODY_FAILED = pytest.StashKey[bool]()


def _usage_error(exc: GoleakError) -> pytest.UsageError:
    return pytest.UsageError(f"pytest-goleak: {exc}")


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hooks)


def pytest_addoption(parser: pytest.Parser) -> None:
    settings.register(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", settings.marker_help())
    try:
        state = config.stash[STATE] = GoleakState(config, settings.resolve(config))
    except ConfigError as exc:
        raise _usage_error(exc) from None
    if not hasattr(config, "workerinput"):  # an xdist worker's reports are summed up on the controller
        session_hooks = SessionHooks(config, state)
        config.pluginmanager.register(session_hooks, "goleak-session")
        if config.pluginmanager.hasplugin("html"):  # pytest-html, optional
            config.pluginmanager.register(HtmlHooks(session_hooks), "goleak-html")


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(STATE, None)
    if state is not None:
        state.shutdown()


def pytest_report_header(config: pytest.Config) -> list[str]:
    state = config.stash[STATE]
    if not state.enabled:
        return ["goleak: checks disabled"]
    if state.attached is not None:
        what = f"attached to {state.attached.url}"
        if state.attached.pid is None:
            *most, last = [measure.name for measure in MEASURES if Part.PROCESS in measure.parts]
            unmeasured = f"{', '.join(most)} and {last}" if most else last
            what += f" (no local PID: {unmeasured} not measured; set goleak_attach_pid)"
    elif state.service_config is not None:
        service = state.service_config
        source = f"binary {service.binary}" if service.binary else f"package {service.package}"
        from pytest_goleak.service.toolchain import go_version

        version = go_version(service) or (
            "not a Go binary: the summary names the Go binary it runs" if service.binary else "Go version unknown"
        )
        what = f"service {service.display_name} ({source}, {version})"
    else:
        what = "no service configured"
    settings = state.settings
    return [
        f"goleak: {what}",
        f"goleak: {settings.header_backend}",
        f"goleak: budgets per test: {settings.header_budgets}",
    ]


def _budget_for(item: pytest.Item, defaults: Budget) -> Budget:
    budget = defaults
    # iter_markers yields the closest marker first; apply it last so it wins.
    for mark in reversed(list(item.iter_markers("goleak"))):
        if mark.args:
            raise ConfigError(
                f"@pytest.mark.goleak on {item.nodeid} takes keyword arguments only, e.g. goleak(goroutines=2)"
            )
        budget = budget.updated(mark.kwargs, settings.marker_where(item.nodeid))
    return budget


@pytest.hookimpl(trylast=True)  # after other plugins have added their fixtures to the items
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    state = config.stash[STATE]
    try:
        for item in items:
            item.stash[BUDGET] = state.budget_for(item.nodeid, _budget_for(item, state.defaults))
            first_function_fixture(item)
    except ConfigError as exc:
        raise _usage_error(exc) from None


def first_function_fixture(item: pytest.Item) -> None:
    """Make ``pytest_goleak`` the first function-scoped fixture ``item`` sets up, so it is torn down last.

    pytest sorts a test's fixture closure by scope (session first) and sets the
    fixtures up in that order; teardown runs in reverse. Moving the name to just
    before the first function-scoped one keeps every higher-scoped fixture (a
    module's database, a session's channel) before the before-reading, and puts
    every function-scoped one (the test's own client, its table) inside the check.
    """
    names = getattr(item, "fixturenames", None)
    if not isinstance(names, list) or "pytest_goleak" not in names:
        return
    defs = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {})

    def scope(name: str) -> str:
        found = defs.get(name)
        return str(getattr(found[-1], "scope", "function")) if found else "function"

    names.remove("pytest_goleak")
    at = next((index for index, name in enumerate(names) if scope(name) == "function"), len(names))
    names.insert(at, "pytest_goleak")


def pytest_collection_finish(session: pytest.Session) -> None:
    # Build (or find) the binary now, once, so a bad path or a compile error
    # stops the run with one message instead of erroring every test.
    if session.config.option.collectonly:
        return
    if not any(FIXTURES & set(getattr(item, "fixturenames", ())) for item in session.items):
        return
    try:
        session.config.stash[STATE].prepare()
    except GoleakError as exc:
        raise _usage_error(exc) from None


def _fail(message: str) -> NoReturn:
    # Called outside any except block, so the failure carries no chained traceback.
    pytest.fail(message, pytrace=False)


def _start_failed(request: pytest.FixtureRequest, exc: GoleakError) -> str:
    """What a failed start fails its test with. A wrong configuration also stops the session after that test.

    The same configuration would fail every later test the same way (a
    session fixture's error repeats for each), so the first start's
    configuration error is reported once, by the test that needed the
    service, and ``session.shouldstop`` ends the run after it, xdist workers
    included. A service that started once and died later is restarted per
    test, as before.
    """
    if isinstance(exc, (ConfigError, ServiceMisconfigured)):
        request.session.shouldstop = f"pytest-goleak stopped the session: {str(exc).splitlines()[0]}"
    return str(exc)


@pytest.fixture(scope="session", name="goleak_service")
def goleak_service_fixture(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Service:
    """The service under test, started once per session (and restarted if it dies)."""
    problem = None
    try:
        return request.config.stash[STATE].main_service(tmp_path_factory.mktemp("goleak"))
    except GoleakError as exc:
        problem = _start_failed(request, exc)
    _fail(problem)


@pytest.fixture(scope="session", name="goleak_service_factory")
def goleak_service_factory_fixture(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Callable[..., GoService]:
    """Start further Go services for this session: ``goleak_service_factory(package=..., args=...)``.

    Takes :class:`ServiceConfig` fields; relative paths start at the ini file's
    directory. Check one for leaks in a test with ``pytest_goleak.watch(service)``.
    Every service started here is stopped at the end of the session.
    """
    state = request.config.stash[STATE]

    def start(**fields: object) -> GoService:
        fields.setdefault("base_dir", state.require_config().base_dir if state.service_config else Path.cwd())
        fields.setdefault("rootdir", request.config.rootpath)
        problem = None
        try:
            fields.setdefault("memprofilerate", state.settings.memprofilerate)
            config = ServiceConfig(**fields)  # type: ignore[arg-type]
            return state.start(config, tmp_path_factory.mktemp("goleak"))
        except GoleakError as exc:
            problem = _start_failed(request, exc)
        _fail(problem)

    return start


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    item.config.stash[STATE].setting_up = item


@pytest.fixture(name="pytest_goleak")
def goleak_fixture(pytestconfig: pytest.Config, goleak_service: Service) -> Iterator[GoleakHandle]:
    """Snapshot the service before the test and fail the test if it leaked past its budget."""
    # Not ``request``: pytest 9 builds a fixture definition for it, signature and all, at every test that asks.
    state = pytestconfig.stash[STATE]
    item = state.setting_up
    assert item is not None, "pytest_runtest_setup names the test whose fixtures are set up"
    problem = None
    if not goleak_service.alive():
        ended = goleak_service.unreported_exit()
        if ended is not None:
            warnings.warn(GoleakWarning(f"{ended} between tests; restarted it"), stacklevel=1)
        try:
            goleak_service.restart()
        except GoleakError as exc:
            problem = str(exc)
    if problem is not None:
        _fail(problem)
    from pytest_goleak.handle import GoleakHandle
    from pytest_goleak.judge.watch import problem_of
    from pytest_goleak.report.failure import render_problem

    budget = item.stash.get(BUDGET, state.defaults)
    handle = GoleakHandle(goleak_service, budget, state.enabled and budget.check, state.runs, _listeners(item))
    try:
        handle.begin()
    except GoleakError as exc:
        problem = render_problem(problem_of(goleak_service, exc, "before"))
    if problem is not None:
        handle.close()
        _fail(problem)
    item.stash[HANDLE] = handle
    item.stash[BODY_RAN] = False  # a rerun (pytest-rerunfailures) sets the fixture up again: judge that run alone
    text = None
    try:
        yield handle
        # Every other function-scoped fixture of the test is torn down by now (see first_function_fixture).
        if item.stash.get(BODY_RAN, False):
            text = _judge(item, handle)
            if text:
                item.stash[REPORT_TEXT] = text
    finally:
        del item.stash[HANDLE]
        handle.close()
    if text:
        _fail(text)


def _listeners(item: pytest.Item) -> Listeners:
    """The handle's events, sent to the plugin's own hooks (pytest_goleak.hooks)."""
    from pytest_goleak.judge.watch import Listeners

    hook = item.ihook  # the item's hooks (its conftests'), looked up once per test

    def reading(service: Service, snapshot: Snapshot, phase: Phase) -> None:
        hook.pytest_goleak_reading(item=item, service=service, reading=snapshot, phase=phase)

    def verdict(service: Service, verdict: Verdict) -> None:
        hook.pytest_goleak_verdict(item=item, service=service, verdict=verdict)

    return Listeners(reading, verdict)


def _judge(item: pytest.Item, handle: GoleakHandle, body_passed: bool = False) -> str | None:
    """The leak verdict of ``item``, with artifacts written and JUnit properties set."""
    if handle.budget.steady and body_passed:
        text = handle.finish_steady(item.runtest)
    else:
        text = handle.finish()
    verdict = handle.verdict
    headline = text.splitlines()[0] if text else None
    if verdict is not None:
        from pytest_goleak.report.failure import junit_properties

        item.user_properties.extend(junit_properties(verdict))
        item.stash[RECORD] = record(f"{handle.service.name} pid {handle.service.pid}", verdict, headline)
    state = item.config.stash[STATE]
    if text is None or state.settings.update_baseline:
        return None  # recording the baseline: what it found goes into the file, not a failure
    item.user_properties.append(("goleak_failure", headline))
    if state.artifacts is not None:
        service = handle.service
        lines = state.artifacts.write(item.nodeid, verdict, text, service.output_since_start(), service.binary)
        text += "\n\n" + "\n".join(lines)
    return text


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    handle = item.stash.get(HANDLE, None)
    if handle is None or not handle.checking:
        return (yield)
    if not handle.budget.steady:
        # Judged in the fixture's teardown, once the test's own fixtures are torn down too.
        try:
            result = yield
        except (pytest.skip.Exception, pytest.xfail.Exception, KeyboardInterrupt, SystemExit):
            raise
        except BaseException:
            item.stash[BODY_RAN] = True
            raise
        item.stash[BODY_RAN] = True
        return result
    # Steady state reruns the body alone: it is judged here, in the call phase, where a leak fails the test.
    try:
        result = yield
    except (pytest.skip.Exception, pytest.xfail.Exception, KeyboardInterrupt, SystemExit):
        raise
    except BaseException:
        text = _judge(item, handle, body_passed=False)
        if text:
            item.stash[LEAK_TEXT] = text
        raise
    text = _judge(item, handle, body_passed=True)
    if text:
        item.stash[REPORT_TEXT] = text
        _fail(text)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, object, object]:
    report = yield
    if call.when == "call":
        item.stash[BODY_FAILED] = bool(getattr(report, "failed", False))
        text = item.stash.get(LEAK_TEXT, None)
        longrepr = getattr(report, "longrepr", None)
        if text and isinstance(longrepr, ExceptionRepr):
            # A steady-state test failed on its own: keep its failure and append the leak to it.
            longrepr.addsection("goleak: the leak check failed too", text)
    if call.when in ("call", "teardown"):
        facts = item.stash.get(RECORD, None)
        if facts is not None:
            del item.stash[RECORD]
            # The test's outcome: its body's, or failed when the check found a leak after its fixtures' teardown.
            failed = item.stash.get(BODY_FAILED, False) or bool(getattr(report, "failed", False))
            # Plain JSON data: it travels from xdist workers to the controller with the report.
            report.goleak = {**facts, "outcome": "failed" if failed else report.outcome}  # type: ignore[attr-defined]
            leak = item.stash.get(LEAK_TEXT, None) or item.stash.get(REPORT_TEXT, None)
            if leak and item.config.pluginmanager.hasplugin("html"):
                from pytest_goleak.report import html_report

                # pytest-html's extras (a list of plain dicts, as pytest_html.extras.html makes them).
                content = html_report.leak_extra(facts, leak)
                extra = {
                    "name": "goleak",
                    "format_type": "html",
                    "content": content,
                    "mime_type": None,
                    "extension": None,
                }
                report.extras = [*getattr(report, "extras", []), extra]  # type: ignore[attr-defined]
    return report


class SessionHooks:
    """Whole-session output: the summary, the drift check, the comparison, and the files and annotations of CI.

    Registered only where reports are shown: on an xdist controller the
    reports come from the workers, so everything covers the whole run.
    """

    def __init__(self, config: pytest.Config, state: GoleakState) -> None:
        self.config = config
        self.state = state
        self._comparison: Comparison | None = None

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.state.recorder.add(report)

    def comparison(self) -> Comparison | None:
        """This run against ``--goleak-compare``'s, once every report is in (pytest-html may ask first)."""
        other = self.state.other
        if other is None or not self.state.recorder.points:
            return None
        if self._comparison is None or self._comparison.session_tests != len(self.state.recorder.points):
            self._comparison = compare(self.state.recorder, other, self.state.settings.compare_fail)
        return self._comparison

    def stale(self) -> list[str]:
        """Under ``goleak_baseline_strict``: the baseline's entries for tests that ran and leaked nothing."""
        baseline, settings = self.state.baseline, self.state.settings
        if baseline is None or not settings.baseline_strict or settings.update_baseline:
            return []
        return baseline.stale(self.state.recorder.leaks())

    def baseline_lines(self) -> list[str]:
        recorder, baseline = self.state.recorder, self.state.baseline
        if baseline is None or not recorder.points:
            return []
        failed = [point.nodeid for point in recorder.failures]
        return baseline.summary(recorder.leaks(), failed, self.state.settings.update_baseline)

    def failed(self) -> bool:
        """Whether the session fails on a whole-session check: drift, the comparison, a stale baseline."""
        comparison = self.comparison()
        return bool(self.state.recorder.drift() or (comparison and comparison.failing) or self.stale())

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.failed() and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        recorder, settings = self.state.recorder, self.state.settings
        if self.state.timeline is not None:
            from pytest_goleak.report.timeline import write_timeline

            write_timeline(self.state.timeline, recorder)
        baseline = self.state.baseline
        if settings.json is not None:
            from pytest_goleak.report.json_report import write_json

            entries = baseline.entries if baseline else {}
            write_json(settings.json, recorder.points, entries, recorder.growth(), settings.backend)
        if settings.md is not None and recorder.points:
            from pytest_goleak.report.markdown import render_markdown

            text = render_markdown(recorder, self.baseline_lines() + self.stale_lines(), self.comparison())
            settings.md.parent.mkdir(parents=True, exist_ok=True)
            with settings.md.open("a" if settings.md_append else "w", encoding="utf-8") as out:
                out.write(text)
        if baseline is not None and settings.update_baseline:
            baseline.write(recorder.leaks())

    def stale_lines(self) -> list[str]:
        stale = self.stale()
        if not stale:
            return []
        name = self.state.baseline.path.name if self.state.baseline else "the baseline"
        shown = ", ".join(stale[:10]) + (f" and {len(stale) - 10} more" if len(stale) > 10 else "")
        return [
            f"STALE BASELINE {name} knows of leaks that did not happen ({len(stale)}): {shown}; "
            "--goleak-update-baseline removes them"
        ]

    def summary_lines(self, verbosity: int, width: int) -> list[str]:
        recorder, settings = self.state.recorder, self.state.settings
        lines = recorder.lines(verbosity, width) if settings.summary else []
        if not lines and recorder.drift():
            lines = [f"SESSION DRIFT {problem}" for problem in recorder.drift()]
        lines += self.baseline_lines() + self.stale_lines() + self.state.wrapped_lines()
        comparison = self.comparison()
        if comparison is not None:
            lines += comparison.lines(width)
        if self.state.timeline is not None and recorder.points:
            lines.append(f"timeline: {self.state.timeline}")
        if settings.json is not None and recorder.points:
            lines.append(f"json: {settings.json}")
        if settings.md is not None and recorder.points:
            lines.append(f"markdown: {settings.md}")
        return lines

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        width = shutil.get_terminal_size().columns
        lines = self.summary_lines(self.config.getoption("verbose"), width)
        if lines:
            terminalreporter.write_sep("=", "goleak")
            for line in lines:
                terminalreporter.write_line(escaped_line(line))
        if self.state.settings.annotations:
            from pytest_goleak.report.annotations import workflow_commands

            recorder = self.state.recorder
            for line in workflow_commands(recorder.points, recorder.drift(), self.comparison(), self._locate):
                terminalreporter.write_line(line)

    def _locate(self, path: str) -> str:
        """A test file as the repository names it: GitHub resolves annotation paths from the checkout's root."""
        workspace = os.environ.get("GITHUB_WORKSPACE")
        if not workspace:
            return path
        return os.path.relpath(self.config.rootpath / path, workspace)


class HtmlHooks:
    """pytest-html's hooks: a growth column, the leak report on a leaking row, the summary in the summary section.

    Registered only when pytest-html is loaded; the fragments are rendered in ``report/html_report.py``.
    """

    def __init__(self, session: SessionHooks) -> None:
        self.session = session

    def pytest_html_results_table_header(self, cells: list[str]) -> None:
        from pytest_goleak.report import html_report

        cells.insert(2, html_report.header_cell())

    def pytest_html_results_table_row(self, report: pytest.TestReport, cells: list[str]) -> None:
        from pytest_goleak.report import html_report

        # The check's facts ride on the report that carries its verdict: the call's, or the teardown's.
        cells.insert(2, html_report.row_cell(getattr(report, "goleak", None)))

    def pytest_html_results_summary(self, prefix: list[str], summary: list[str], postfix: list[str]) -> None:
        lines = self.session.summary_lines(verbosity=0, width=200)
        if lines:
            from pytest_goleak.report import html_report

            postfix.append(html_report.summary_html(lines))
