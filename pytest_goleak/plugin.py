"""pytest hooks, options, fixtures and markers. Thin: it wires the other modules together.

The verdict is taken inside the test's call phase (a ``pytest_runtest_call``
wrapper), so a leak fails the test itself rather than erroring its teardown,
and a test that failed on its own keeps its failure with the leak appended.
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
from collections.abc import Generator, Iterator
from pathlib import Path

import httpx
import pytest
from _pytest._code.code import ExceptionRepr

from pytest_goleak import options
from pytest_goleak.budget import Budget
from pytest_goleak.check import LeakCheck, Verdict
from pytest_goleak.errors import ConfigError, GoleakError, ServiceUnresponsive
from pytest_goleak.lifeline import Lifeline
from pytest_goleak.pprof import PprofClient
from pytest_goleak.report import render
from pytest_goleak.service import GoService, ServiceConfig, build_package, check_binary, describe_exit
from pytest_goleak.snapshot import Snapshot, Snapshotter

MARKER = (
    "goleak(goroutines=0, heap='1MiB', fds=0, children=0, threads=None, settle=2.0, ignore=[], check=True): "
    "leak budget for this test (pytest-goleak); None leaves a measure unchecked"
)
FIXTURES = frozenset({"goleak_service", "pytest_goleak"})


class GoleakWarning(UserWarning):
    """Something about the service the user should know, that fails no test."""


class GoleakState:
    """Per pytest process: the resolved options, the built binary, the running service."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.enabled = options.checks_enabled(config)
        self.defaults = options.default_budget(config)
        self.service_config: ServiceConfig | None = None
        if options.configured(config):
            self.service_config = options.service_config(config)
        self._binary: Path | None = None
        self._build_dir: Path | None = None
        self._service: GoService | None = None
        self._lifeline: Lifeline | None = None

    def binary(self) -> Path:
        """The service's binary, built on first use and then reused for the session."""
        if self._binary is None:
            service = self.require_config()
            if service.binary is not None:
                self._binary = check_binary(service.base_dir / service.binary)
            else:
                assert service.package is not None
                self._build_dir = Path(tempfile.mkdtemp(prefix="pytest-goleak-build-"))
                self._binary = build_package(service.package, service.base_dir, self._build_dir)
        return self._binary

    def require_config(self) -> ServiceConfig:
        if self.service_config is None:
            # Raises the one-line "nothing configured" error.
            return options.service_config(self.config)
        return self.service_config

    def lifeline(self) -> Lifeline:
        if self._lifeline is None:
            self._lifeline = Lifeline()
        return self._lifeline

    def service(self, workdir: Path) -> GoService:
        if self._service is None:
            self._service = GoService(self.require_config(), self.binary(), workdir, self.lifeline())
        return self._service

    def shutdown(self) -> None:
        if self._service is not None:
            self._service.stop()
        if self._lifeline is not None:
            self._lifeline.close()
        if self._build_dir is not None:
            shutil.rmtree(self._build_dir, ignore_errors=True)


STATE = pytest.StashKey[GoleakState]()
BUDGET = pytest.StashKey[Budget]()
HANDLE = pytest.StashKey["GoleakHandle"]()
LEAK_TEXT = pytest.StashKey[str]()


def pytest_addoption(parser: pytest.Parser) -> None:
    options.register(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER)
    try:
        config.stash[STATE] = GoleakState(config)
    except ConfigError as exc:
        raise pytest.UsageError(f"pytest-goleak: {exc}") from None


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(STATE, None)
    if state is not None:
        state.shutdown()


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
        raise pytest.UsageError(f"pytest-goleak: {exc}") from None


def pytest_collection_finish(session: pytest.Session) -> None:
    # Build (or find) the binary now, once, so a bad path or a compile error
    # stops the run with one message instead of erroring every test.
    if session.config.option.collectonly:
        return
    if not any(FIXTURES & set(getattr(item, "fixturenames", ())) for item in session.items):
        return
    try:
        session.config.stash[STATE].binary()
    except GoleakError as exc:
        raise pytest.UsageError(f"pytest-goleak: {exc}") from None


class GoleakHandle:
    """What a test gets from the ``pytest_goleak`` fixture."""

    def __init__(self, service: GoService, budget: Budget, checking: bool) -> None:
        self.service = service
        self.url = service.url
        self.budget = budget
        timeout = service.config.request_timeout
        self.client = httpx.Client(base_url=service.url, timeout=timeout, trust_env=False)
        self._pprof = PprofClient(service.pprof_url, timeout)
        self._snapshotter = Snapshotter(self._pprof, service.pid)
        self._check = LeakCheck(self._snapshotter, budget) if checking else None
        self.verdict: Verdict | None = None

    def snapshot(self) -> Snapshot:
        """A reading of the service now: goroutines, live heap, fds, children, threads."""
        return self._snapshotter.take()

    def begin(self) -> None:
        if self._check is not None:
            self._check.begin()

    @property
    def checking(self) -> bool:
        return self._check is not None

    def finish(self) -> str | None:
        """Close the test's connections and judge it; the failure text, or None."""
        self.client.close()
        if self._check is None:
            return None
        if not self.service.alive():
            return _crash_text(self.service)
        try:
            self.verdict = self._check.finish()
        except GoleakError as exc:
            return _unreadable_text(self.service, exc, "after")
        return render(self.verdict) if self.verdict.failed else None

    def close(self) -> None:
        self.client.close()
        self._pprof.close()


def _crash_text(service: GoService) -> str:
    service.exit_reported = True
    code = service.returncode
    status = describe_exit(code) if code is not None else "stopped"
    return (
        f"goleak: {service.config.display_name} {status} during this test\n"
        f"its output ({service.log_path}):\n{service.crash_output()}"
    )


def _unreadable_text(service: GoService, error: GoleakError, when: str) -> str:
    """The service could not be read: it crashed, or it is wedged and gets killed with a stack dump."""
    if service.wait_exit(0.5) is not None:
        return _crash_text(service)
    if isinstance(error, ServiceUnresponsive) and service.alive():
        dump = service.kill_with_dump()
        service.exit_reported = True
        lines = dump.splitlines()
        shown = "\n".join(lines[:120]) + (f"\n... {len(lines) - 120} more lines" if len(lines) > 120 else "")
        return (
            f"goleak: could not read the service {when} the test: {error}\n"
            f"{service.config.display_name} was killed after a SIGQUIT goroutine dump "
            f"(in full in {service.log_path}); the next test gets a fresh service.\n{shown}"
        )
    return f"goleak: could not read the service {when} the test: {error}"


@pytest.fixture(scope="session", name="goleak_service")
def goleak_service_fixture(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GoService]:
    """The Go service under test, started once per session (and restarted if it dies)."""
    state = request.config.stash[STATE]
    problem = None
    try:
        service = state.service(tmp_path_factory.mktemp("goleak"))
        service.start()
    except GoleakError as exc:
        problem = str(exc)
    if problem is not None:  # failed outside the except block: no chained traceback
        pytest.fail(problem, pytrace=False)
    yield service
    service.stop()


@pytest.fixture(name="pytest_goleak")
def goleak_fixture(request: pytest.FixtureRequest, goleak_service: GoService) -> Iterator[GoleakHandle]:
    """Snapshot the service before the test and fail the test if it leaked past its budget."""
    state = request.config.stash[STATE]
    if not goleak_service.alive():
        code = goleak_service.returncode
        if code is not None and not goleak_service.exit_reported:
            warnings.warn(
                GoleakWarning(f"{goleak_service.config.display_name} {describe_exit(code)}; restarted it"),
                stacklevel=1,
            )
        problem = None
        try:
            goleak_service.restart()
        except GoleakError as exc:
            problem = str(exc)
        if problem is not None:
            pytest.fail(problem, pytrace=False)
    problem = None
    budget = request.node.stash.get(BUDGET, state.defaults)
    handle = GoleakHandle(goleak_service, budget, state.enabled and budget.check)
    try:
        handle.begin()
    except GoleakError as exc:
        problem = _unreadable_text(goleak_service, exc, "before")
    if problem is not None:
        handle.close()
        pytest.fail(problem, pytrace=False)
    request.node.stash[HANDLE] = handle
    try:
        yield handle
    finally:
        del request.node.stash[HANDLE]
        handle.close()


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
        text = handle.finish()
        if text:
            item.stash[LEAK_TEXT] = text
        raise
    text = handle.finish()
    if text:
        pytest.fail(text, pytrace=False)
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
    return report
