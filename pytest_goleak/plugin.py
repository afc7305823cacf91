"""pytest hooks, options, fixtures and markers. Thin: it wires the other modules together.

The verdict is taken inside the test's call phase (a ``pytest_runtest_call``
wrapper), so a leak fails the test itself rather than erroring its teardown,
and a test that failed on its own keeps its failure with the leak appended.
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import pytest
from _pytest._code.code import ExceptionRepr

from pytest_goleak import http, options
from pytest_goleak.artifacts import ArtifactWriter
from pytest_goleak.attach import AttachedService
from pytest_goleak.budget import Budget, format_size
from pytest_goleak.check import LeakCheck, Verdict, gather_evidence
from pytest_goleak.diff import diff
from pytest_goleak.errors import ConfigError, GoleakError, ServiceUnresponsive
from pytest_goleak.lifeline import Lifeline
from pytest_goleak.pprof import PprofClient
from pytest_goleak.report import junit_properties, render
from pytest_goleak.service import (
    GoService,
    ServiceConfig,
    build_package,
    check_binary,
    describe_exit,
    go_version,
)
from pytest_goleak.session import SessionRecorder, record
from pytest_goleak.snapshot import Snapshot, Snapshotter
from pytest_goleak.steady import noise_floor, trends
from pytest_goleak.timeline import write_timeline

Service = GoService | AttachedService

MARKER = (
    "goleak(goroutines=0, heap='1MiB', fds=0, children=0, threads=None, settle=2.0, ignore=[], check=True): "
    "leak budget for this test (pytest-goleak); None leaves a measure unchecked"
)
FIXTURES = frozenset({"goleak_service", "pytest_goleak"})


class GoleakWarning(UserWarning):
    """Something about the service the user should know, that fails no test."""


class GoleakState:
    """Per pytest process: the resolved options, built binaries, running services."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.enabled = options.checks_enabled(config)
        self.defaults = options.default_budget(config)
        self.attached = options.attached(config)
        self.service_config = options.service_config(config) if options.configured(config) else None
        artifacts = options.output_path(config, "artifacts")
        self.artifacts = ArtifactWriter(artifacts) if artifacts is not None else None
        self.timeline = options.output_path(config, "timeline")
        self.recorder = SessionRecorder(options.session_budget(config))
        self.readers = Readers()
        self._binaries: dict[tuple[str, Path], Path] = {}
        self._build_dir: Path | None = None
        self._services: list[GoService] = []
        self._main: Service | None = None
        self._lifeline: Lifeline | None = None

    def require_config(self) -> ServiceConfig:
        # With nothing configured this raises the one-line "set goleak_package" error.
        return self.service_config if self.service_config is not None else options.service_config(self.config)

    def binary_for(self, service: ServiceConfig) -> Path:
        """The binary of ``service``: checked, or built on first use and reused for the session."""
        if service.binary is not None:
            return check_binary(service.base_dir / service.binary)
        assert service.package is not None
        key = (service.package, service.base_dir)
        if key not in self._binaries:
            if self._build_dir is None:
                self._build_dir = Path(tempfile.mkdtemp(prefix="pytest-goleak-build-"))
            out = self._build_dir / str(len(self._binaries))
            self._binaries[key] = build_package(service.package, service.base_dir, out)
        return self._binaries[key]

    def prepare(self) -> None:
        """Fail early on anything wrong with the main service's binary."""
        if self.attached is None:
            self.binary_for(self.require_config())

    def main_binary(self) -> Path | None:
        if self.attached is not None or self.service_config is None:
            return None
        return self.binary_for(self.service_config)

    def start(self, config: ServiceConfig, workdir: Path) -> GoService:
        if self._lifeline is None:
            self._lifeline = Lifeline()
        service = GoService(config, self.binary_for(config), workdir, self._lifeline)
        self._services.append(service)
        service.start()
        return service

    def main_service(self, workdir: Path) -> Service:
        if self._main is None:
            if self.attached is not None:
                self.attached.start()
                self._main = self.attached
            else:
                self._main = self.start(self.require_config(), workdir)
        return self._main

    def shutdown(self) -> None:
        self.readers.close()
        for service in self._services:
            service.stop()
        if self._lifeline is not None:
            self._lifeline.close()
        if self._build_dir is not None:
            shutil.rmtree(self._build_dir, ignore_errors=True)


STATE = pytest.StashKey[GoleakState]()
BUDGET = pytest.StashKey[Budget]()
HANDLE = pytest.StashKey["GoleakHandle"]()
LEAK_TEXT = pytest.StashKey[str]()
RECORD = pytest.StashKey[dict[str, object]]()


def _usage_error(exc: GoleakError) -> pytest.UsageError:
    return pytest.UsageError(f"pytest-goleak: {exc}")


def pytest_addoption(parser: pytest.Parser) -> None:
    options.register(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER)
    try:
        state = config.stash[STATE] = GoleakState(config)
    except ConfigError as exc:
        raise _usage_error(exc) from None
    config.pluginmanager.register(SessionHooks(config, state), "goleak-session")


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(STATE, None)
    if state is not None:
        state.shutdown()


def pytest_report_header(config: pytest.Config) -> list[str]:
    state = config.stash[STATE]
    if not state.enabled:
        return ["goleak: checks disabled"]
    budget = state.defaults
    limits = ", ".join(
        f"{name} {('unchecked' if value is None else format_size(value) if name == 'heap' else value)}"
        for name, value in [
            ("goroutines", budget.goroutines),
            ("heap", budget.heap),
            ("fds", budget.fds),
            ("children", budget.children),
            ("threads", budget.threads),
        ]
    )
    if state.attached is not None:
        what = f"attached to {state.attached.url}"
        if state.attached.unmeasured:
            *most, last = state.attached.unmeasured
            unmeasured = f"{', '.join(most)} and {last}" if most else last
            what += f" (no local PID: {unmeasured} not measured; set goleak_attach_pid)"
    elif state.service_config is not None:
        service = state.service_config
        source = f"binary {service.binary}" if service.binary else f"package {service.package}"
        what = f"service {service.display_name} ({source}, {go_version(service) or 'Go version unknown'})"
    else:
        what = "no service configured"
    return [f"goleak: {what}", f"goleak: budgets per test: {limits}; settle {budget.settle:g}s"]


def _budget_for(item: pytest.Item, defaults: Budget) -> Budget:
    budget = defaults
    # iter_markers yields the closest marker first; apply it last so it wins.
    for mark in reversed(list(item.iter_markers("goleak"))):
        source = f"{item.nodeid}: @pytest.mark.goleak"
        if mark.args:
            raise ConfigError(f"{source} takes keyword arguments only, e.g. goleak(goroutines=2)")
        budget = budget.updated(mark.kwargs, source)
    return budget


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    state = config.stash[STATE]
    try:
        for item in items:
            item.stash[BUDGET] = _budget_for(item, state.defaults)
    except ConfigError as exc:
        raise _usage_error(exc) from None


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


class Readers:
    """What outlives one test for each service run: its pprof client and its heap noise floor.

    One pprof client per run keeps one keep-alive connection for the whole
    session; a new connection per test would leave a winding-down server
    goroutine behind each time.
    """

    def __init__(self) -> None:
        self._clients: dict[str, PprofClient] = {}
        self.noise: dict[str, int] = {}

    @staticmethod
    def key(service: Service) -> str:
        return f"{service.pprof_url} {service.pid}"

    def pprof(self, service: Service) -> PprofClient:
        key = self.key(service)
        if key not in self._clients:
            self._clients[key] = PprofClient(service.pprof_url, service.request_timeout)
        return self._clients[key]

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()


class _Watch:
    """The leak check of one service during one test."""

    def __init__(self, service: Service, budget: Budget, checking: bool, readers: Readers) -> None:
        self.service = service
        self.budget = budget
        self.pprof = readers.pprof(service)
        self.snapshotter = Snapshotter(self.pprof, service.pid)
        self.check = LeakCheck(self.snapshotter, budget) if checking else None
        self.verdict: Verdict | None = None
        self._noise = readers.noise

    def begin(self) -> None:
        if self.check is None:
            return
        if self.budget.steady and self.budget.heap is not None:
            self.heap_noise()
        self.check.begin()

    def heap_noise(self) -> int:
        """How much the live heap moves between readings of this service at rest (measured once)."""
        key = Readers.key(self.service)
        if key not in self._noise:
            self._noise[key] = noise_floor([self.snapshotter.take() for _ in range(4)])
        return self._noise[key]

    def _failure(self, error: GoleakError | None = None) -> str:
        if not self.service.alive():
            return _crash_text(self.service)
        assert error is not None
        return _unreadable_text(self.service, error, "after")

    def finish(self) -> str | None:
        if self.check is None:
            return None
        if not self.service.alive():
            return self._failure()
        try:
            self.verdict = self.check.finish()
        except GoleakError as exc:
            return self._failure(exc)
        return render(self.verdict) if self.verdict.failed else None

    def judge_steady(self, readings: list[Snapshot]) -> str | None:
        """Steady-state verdict: a measure leaks only if it grew in every measured run."""
        before, after = readings[0], readings[-1]
        growing = [t for t in trends(readings, self.budget, self.heap_noise()) if t.grows_every_run]
        delta = diff(before, after, self.budget.ignore)
        self.verdict = Verdict(
            before,
            after,
            delta,
            tuple(t.phrase() for t in growing),
            self.budget,
            over=tuple(t.measure for t in growing),
        )
        if not growing:
            return None
        try:
            self.verdict = gather_evidence(self.snapshotter, self.verdict)
        except GoleakError as exc:
            return self._failure(exc)
        return render(self.verdict)


class GoleakHandle:
    """What a test gets from the ``pytest_goleak`` fixture."""

    def __init__(self, service: Service, budget: Budget, checking: bool, readers: Readers) -> None:
        self.service = service
        self.url = service.url
        self.budget = budget
        self._checking = checking
        self._readers = readers
        self.client = http.client(service.request_timeout, base_url=service.url)
        self._watches = [_Watch(service, budget, checking, readers)]

    @property
    def checking(self) -> bool:
        return self._checking

    @property
    def verdict(self) -> Verdict | None:
        """The main service's verdict, once the test body has ended."""
        return self._watches[0].verdict

    def snapshot(self) -> Snapshot:
        """A reading of the service now: goroutines, live heap, fds, children, threads."""
        return self._watches[0].snapshotter.take()

    def watch(self, service: Service) -> None:
        """Check another service for leaks during this test too (see ``goleak_service_factory``)."""
        watch = _Watch(service, self.budget, self._checking, self._readers)
        watch.begin()
        self._watches.append(watch)

    def begin(self) -> None:
        self._watches[0].begin()

    def _combine(self, texts: list[str | None]) -> str | None:
        named = [
            f"[{watch.service.name}] {text}" if len(self._watches) > 1 else text
            for watch, text in zip(self._watches, texts, strict=True)
            if text
        ]
        return "\n\n".join(named) or None

    def finish(self) -> str | None:
        """Close the test's connections and judge every watched service; the failure text, or None."""
        self.client.close()
        return self._combine([watch.finish() for watch in self._watches])

    def finish_steady(self, rerun: Callable[[], object]) -> str | None:
        """Run the test again (warm-up, then measured runs) and judge it by the steady-state rule.

        The first run has already happened. Readings start after the last
        warm-up run (or before the first run, with no warm-up).
        """
        warmup, repeat = self.budget.warmup, self.budget.repeat
        readings: list[list[Snapshot]] = [[] for _ in self._watches]
        if warmup == 0:
            for watch, series in zip(self._watches, readings, strict=True):
                assert watch.check is not None
                assert watch.check.before is not None
                series.append(watch.check.before)
        for run in range(1, warmup + repeat + 1):
            if run > 1:
                rerun()
            if run < warmup:
                continue
            for index, watch in enumerate(self._watches):
                if not watch.service.alive():
                    self.client.close()
                    return self._combine([w._failure() if w is watch else None for w in self._watches])
                try:
                    readings[index].append(watch.snapshotter.take(heap=self.budget.heap is not None))
                except GoleakError as exc:
                    self.client.close()
                    return self._combine([w._failure(exc) if w is watch else None for w in self._watches])
        self.client.close()
        return self._combine(
            [watch.judge_steady(series) for watch, series in zip(self._watches, readings, strict=True)]
        )

    def close(self) -> None:
        self.client.close()


def _crash_text(service: Service) -> str:
    service.exit_reported = True
    if isinstance(service, AttachedService):
        return f"goleak: attached {service.name} (pid {service.pid}) exited during this test"
    code = service.returncode
    status = describe_exit(code) if code is not None else "stopped"
    output = service.crash_output()
    return f"goleak: {service.name} {status} during this test\nits output ({service.log_path}):\n{output}"


def _unreadable_text(service: Service, error: GoleakError, when: str) -> str:
    """The service could not be read: it crashed, or it is wedged and gets killed with a stack dump."""
    if isinstance(service, GoService) and service.wait_exit(0.5) is not None:
        return _crash_text(service)
    text = f"goleak: could not read the service {when} the test: {error}"
    if isinstance(service, GoService) and isinstance(error, ServiceUnresponsive) and service.alive():
        dump = service.kill_with_dump()
        service.exit_reported = True
        lines = dump.splitlines()
        shown = "\n".join(lines[:120]) + (f"\n... {len(lines) - 120} more lines" if len(lines) > 120 else "")
        text += (
            f"\n{service.name} was killed after a SIGQUIT goroutine dump "
            f"(in full in {service.log_path}); the next test gets a fresh service.\n{shown}"
        )
    return text


def _fail(message: str | None) -> None:
    # Called outside any except block, so the failure carries no chained traceback.
    if message is not None:
        pytest.fail(message, pytrace=False)


@pytest.fixture(scope="session", name="goleak_service")
def goleak_service_fixture(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Service:
    """The service under test, started once per session (and restarted if it dies)."""
    problem = None
    try:
        return request.config.stash[STATE].main_service(tmp_path_factory.mktemp("goleak"))
    except GoleakError as exc:
        problem = str(exc)
    _fail(problem)
    raise AssertionError("unreachable")


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
        problem = None
        try:
            config = ServiceConfig(**fields)  # type: ignore[arg-type]
            return state.start(config, tmp_path_factory.mktemp("goleak"))
        except GoleakError as exc:
            problem = str(exc)
        _fail(problem)
        raise AssertionError("unreachable")

    return start


@pytest.fixture(name="pytest_goleak")
def goleak_fixture(request: pytest.FixtureRequest, goleak_service: Service) -> Iterator[GoleakHandle]:
    """Snapshot the service before the test and fail the test if it leaked past its budget."""
    state = request.config.stash[STATE]
    problem = None
    if not goleak_service.alive():
        if isinstance(goleak_service, GoService) and not goleak_service.exit_reported:
            code = goleak_service.returncode
            status = describe_exit(code) if code is not None else "stopped"
            warnings.warn(GoleakWarning(f"{goleak_service.name} {status} between tests; restarted it"), stacklevel=1)
        try:
            goleak_service.restart()
        except GoleakError as exc:
            problem = str(exc)
    _fail(problem)
    budget = request.node.stash.get(BUDGET, state.defaults)
    handle = GoleakHandle(goleak_service, budget, state.enabled and budget.check, state.readers)
    try:
        handle.begin()
    except GoleakError as exc:
        problem = _unreadable_text(goleak_service, exc, "before")
    if problem is not None:
        handle.close()
        _fail(problem)
    request.node.stash[HANDLE] = handle
    try:
        yield handle
    finally:
        del request.node.stash[HANDLE]
        handle.close()


def _judge(item: pytest.Item, handle: GoleakHandle, body_passed: bool) -> str | None:
    """The leak verdict of ``item``, with artifacts written and JUnit properties set."""
    if handle.budget.steady and body_passed:
        text = handle.finish_steady(item.runtest)
    else:
        text = handle.finish()
    verdict = handle.verdict
    headline = text.splitlines()[0] if text else None
    if verdict is not None:
        item.user_properties.extend(junit_properties(verdict))
        item.stash[RECORD] = record(f"{handle.service.name} pid {handle.service.pid}", verdict, headline)
    if text is None:
        return None
    item.user_properties.append(("goleak_failure", headline))
    state = item.config.stash[STATE]
    if state.artifacts is not None:
        service = handle.service
        log = service.output_since_start() if isinstance(service, GoService) else ""
        binary = state.main_binary() if isinstance(service, GoService) else None
        lines = state.artifacts.write(item.nodeid, verdict, text, log, binary)
        text += "\n\n" + "\n".join(lines)
    return text


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    handle = item.stash.get(HANDLE, None)
    if handle is None or not handle.checking:
        return (yield)
    try:
        result = yield
    except (pytest.skip.Exception, pytest.xfail.Exception, KeyboardInterrupt, SystemExit):
        raise
    except BaseException:
        text = _judge(item, handle, body_passed=False)
        if text:
            item.stash[LEAK_TEXT] = text
        raise
    _fail(_judge(item, handle, body_passed=True))
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, object, object]:
    report = yield
    if call.when == "call":
        text = item.stash.get(LEAK_TEXT, None)
        longrepr = getattr(report, "longrepr", None)
        if text and isinstance(longrepr, ExceptionRepr):
            # The test failed on its own: keep its failure and append the leak to it.
            longrepr.addsection("goleak: the service also leaked", text)
        facts = item.stash.get(RECORD, None)
        if facts is not None:
            # Plain JSON data: it travels from xdist workers to the controller with the report.
            report.goleak = facts  # type: ignore[attr-defined]
    return report


class SessionHooks:
    """Whole-session output: the summary, the drift check and the timeline.

    They run where reports are shown: on an xdist controller the reports come
    from the workers, so everything covers the whole run; workers stay quiet.
    """

    def __init__(self, config: pytest.Config, state: GoleakState) -> None:
        self.config = config
        self.state = state
        self.worker = hasattr(config, "workerinput")

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.state.recorder.add(report)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.worker:
            return
        if self.state.recorder.drift() and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        if self.state.timeline is not None:
            write_timeline(self.state.timeline, self.state.recorder)

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self.worker:
            return
        recorder = self.state.recorder
        lines = recorder.lines(self.config.get_verbosity()) if options.summary_enabled(self.config) else []
        if not lines and recorder.drift():
            lines = [f"SESSION DRIFT {problem}" for problem in recorder.drift()]
        if self.state.timeline is not None and recorder.points:
            lines.append(f"timeline: {self.state.timeline}")
        if lines:
            terminalreporter.write_sep("=", "goleak")
            for line in lines:
                terminalreporter.write_line(line)
