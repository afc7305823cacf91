"""Plugin behaviour through pytester: markers, ini defaults, CLI overrides, reports, exit codes.

Each run drives the real example service (prebuilt once per session); only
the pytest side is nested.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from verdicts import by_name

LEAKY = """
def test_leaks_one(pytest_goleak):
    assert pytest_goleak.client.get("/leaky/chan-send").status_code == 200
"""
CLEAN = """
def test_clean(pytest_goleak):
    assert pytest_goleak.client.get("/fixed/chan-send").status_code == 200
"""


def test_clean_passes_and_leak_errors_at_the_tests_teardown(suite) -> None:  # type: ignore[no-untyped-def]
    result = suite(LEAKY + CLEAN).runpytest("-rA")
    # The check spans the test's fixtures: the leak is found after their teardown, and reported there.
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*_ ERROR at teardown of test_leaks_one _*",
            "goleak: 1 goroutine leaked (budget 0)",
            "*1 x [[]chan send*",
            "*created by main.*",
            "ERROR test_suite.py::test_leaks_one - Failed: goleak: 1 goroutine leaked*",
        ]
    )
    assert "FAILED" not in result.stdout.str()


def test_marker_budget_allows_the_leak(suite) -> None:  # type: ignore[no-untyped-def]
    tests = "import pytest\n\n@pytest.mark.goleak(goroutines=1)" + LEAKY
    suite(tests).runpytest("--strict-markers").assert_outcomes(passed=1)


def test_marker_check_false_opts_out(suite) -> None:  # type: ignore[no-untyped-def]
    tests = "import pytest\n\n@pytest.mark.goleak(check=False)" + LEAKY
    suite(tests).runpytest().assert_outcomes(passed=1)


def test_no_goleak_flag_and_ini_disable_checks_but_run_tests(suite) -> None:  # type: ignore[no-untyped-def]
    suite(LEAKY).runpytest("--no-goleak").assert_outcomes(passed=1)
    suite(LEAKY, ini="goleak = false\n").runpytest().assert_outcomes(passed=1)


def test_ini_default_budget_and_cli_override(suite) -> None:  # type: ignore[no-untyped-def]
    pytester = suite(LEAKY, ini="goleak_goroutines = 3\n")
    pytester.runpytest().assert_outcomes(passed=1)
    # A flag given wins over the ini value.
    pytester.runpytest("--goleak-goroutines=0").assert_outcomes(passed=1, errors=1)


def test_marker_wins_over_cli(suite) -> None:  # type: ignore[no-untyped-def]
    tests = "import pytest\n\n@pytest.mark.goleak(goroutines=1)" + LEAKY
    suite(tests).runpytest("--goleak-goroutines=0").assert_outcomes(passed=1)


def test_class_marker_applies_and_function_marker_wins(suite) -> None:  # type: ignore[no-untyped-def]
    tests = """
        import pytest

        @pytest.mark.goleak(goroutines=5)
        class TestLeaks:
            def test_class_budget(self, pytest_goleak):
                pytest_goleak.client.get("/leaky/chan-send")

            @pytest.mark.goleak(goroutines=0)
            def test_own_budget(self, pytest_goleak):
                pytest_goleak.client.get("/leaky/chan-send")
    """
    result = suite(tests).runpytest()
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["ERROR *test_own_budget*"])


@pytest.mark.parametrize("where", ["marker", "ini", "cli"])
def test_ignore_patterns_match_any_frame(suite, where: str) -> None:  # type: ignore[no-untyped-def]
    pattern = "main.(*PriceService).*"
    tests, ini, args = LEAKY, "", []
    if where == "marker":
        tests = f"import pytest\n\n@pytest.mark.goleak(ignore=[{pattern!r}])" + LEAKY
    elif where == "ini":
        ini = f"goleak_ignore =\n    {pattern}\n"
    else:
        args = [f"--goleak-ignore={pattern}"]
    suite(tests, ini=ini).runpytest(*args).assert_outcomes(passed=1)


def test_ignore_pattern_matches_created_by_frame(suite) -> None:  # type: ignore[no-untyped-def]
    # The leaked goroutine's start function is a closure; its creator is the handler method.
    tests = "import pytest\n\n@pytest.mark.goleak(ignore=['main.(*PriceService).lookup'])" + LEAKY
    suite(tests).runpytest().assert_outcomes(passed=1)


def test_own_failure_stays_visible_with_the_leak_appended(suite) -> None:  # type: ignore[no-untyped-def]
    tests = """
        def test_both(pytest_goleak):
            pytest_goleak.client.get("/leaky/chan-send")
            assert 1 + 1 == 3, "the test's own failure"
    """
    result = suite(tests).runpytest()
    # Its own failure in the call phase; the leak, found after its fixtures' teardown, as an error there.
    result.assert_outcomes(failed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_both*",  # pytest lists errors before failures
            "goleak: 1 goroutine leaked*",
            "*AssertionError: the test's own failure*",
        ]
    )


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        ("goleak(gorutines=1)", "unknown argument 'gorutines'"),
        ("goleak(goroutines=-1)", "negative"),
        ("goleak(heap='12 XB')", "is not a size"),
        ("goleak(3)", "keyword arguments only"),
    ],
)
def test_bad_marker_is_one_usage_error_at_collection(suite, marker: str, message: str) -> None:  # type: ignore[no-untyped-def]
    tests = f"import pytest\n\n@pytest.mark.{marker}" + LEAKY
    result = suite(tests).runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    # The error names its source: the marker, and the test it is on.
    result.stderr.fnmatch_lines(
        [f"ERROR: pytest-goleak: @pytest.mark.goleak* on test_suite.py::test_leaks_one*{message}*"]
    )
    assert "Traceback" not in result.stderr.str()


@pytest.mark.parametrize(
    ("ini", "message"),
    [
        ("goleak_heap = lots", "goleak_heap in tox.ini: 'lots' is not a size"),
        ("goleak_goroutines = many", "is not a count"),
        ("goleak_threads = -1", "negative"),
        ("goleak_start_timeout = soon", "goleak_start_timeout in tox.ini: 'soon' is not a number of seconds"),
        ("goleak_start_timeout = 0", "goleak_start_timeout in tox.ini: '0' must be a number of seconds, more than 0"),
        ("goleak_session_heap = lots", "goleak_session_heap in tox.ini: 'lots' is not a size"),
        ("goleak_pprof_url = http://{adr}/debug/pprof/", "unknown placeholder {adr}"),
        ("goleak_env = NOEQUALS", "not KEY=VALUE"),
        ("goleak_memprofilerate = often", "goleak_memprofilerate in tox.ini: 'often' is not a size"),
        ("goleak_pprof_url = http://10.1.2.3:6060/debug/pprof/", "not loopback"),
    ],
)
def test_bad_ini_is_one_usage_error(suite, ini: str, message: str) -> None:  # type: ignore[no-untyped-def]
    result = suite(CLEAN, ini=ini + "\n").runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: pytest-goleak: *{message}*"])
    assert len(result.stderr.str().strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("--goleak-heap=lots", "--goleak-heap: 'lots' is not a size"),
        ("--goleak-settle=-1", "--goleak-settle: '-1' must be a number of seconds, 0 or more"),
        ("--goleak-request-timeout=never", "--goleak-request-timeout: 'never' is not a number of seconds"),
    ],
)
def test_bad_flag_names_the_flag(suite, flag: str, message: str) -> None:  # type: ignore[no-untyped-def]
    result = suite(CLEAN, ini="goleak_heap = 4MiB\n").runpytest(flag)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: pytest-goleak: {message}*"])


def test_unchecked_words_are_the_same_everywhere(suite) -> None:  # type: ignore[no-untyped-def]
    ini = "goleak_heap = unchecked\ngoleak_session_heap = unchecked\ngoleak_session_fds = off\ngoleak_fds = none\n"
    result = suite(CLEAN, ini=ini).runpytest()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["goleak: budgets per test: goroutines 0, heap unchecked, fds unchecked, *"])


def test_strict_markers_accepts_goleak(suite) -> None:  # type: ignore[no-untyped-def]
    tests = "import pytest\n\n@pytest.mark.goleak\n" + CLEAN
    suite(tests).runpytest("--strict-markers").assert_outcomes(passed=1)


def test_help_lists_every_flag(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    for flag in ["--no-goleak", "--goleak-goroutines", "--goleak-heap", "--goleak-ignore", "--goleak-binary"]:
        result.stdout.fnmatch_lines([f"*{flag}*"])


COUNT_READINGS = """
FRESH = []

def pytest_goleak_reading(item, service, reading, phase):
    if phase == "before":  # a before-reading taken now, not carried over
        FRESH.append(item.nodeid)
"""

READINGS = """
import pytest
from conftest import FRESH

@pytest.mark.parametrize("route", ["healthz", "work", "healthz", "fixed/open", "api/products"])
def test_route(pytest_goleak, route):
    pytest_goleak.client.get("/" + route)

def test_count(pytest_goleak):
    print("READINGS", len(FRESH))
"""


@pytest.mark.parametrize(("ini", "readings"), [("", 1), ("goleak_fresh_readings = true\n", 6)])
def test_tests_in_a_row_take_one_reading_each(suite: Callable[..., pytest.Pytester], ini: str, readings: int) -> None:
    pytester = suite(READINGS, ini=ini)
    pytester.makeconftest(COUNT_READINGS)
    result = pytester.runpytest("-s")
    result.assert_outcomes(passed=6)
    # Six tests: only the first takes its own before-reading, each later one adopts the previous
    # test's after-reading; or, with fresh readings, each takes its own.
    result.stdout.fnmatch_lines([f"*READINGS {readings}*"])


def test_kept_readings_keep_the_verdicts(suite: Callable[..., pytest.Pytester]) -> None:
    tests = CLEAN + LEAKY + CLEAN.replace("test_clean", "test_clean_again")
    result = suite(tests).runpytest()
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(["ERROR test_suite.py::test_leaks_one - Failed: goleak: 1 goroutine*"])


TOUCHED_GAP = """
import httpx
import pytest
from conftest import FRESH

@pytest.fixture(scope="class")
def leaky_setup(goleak_service):
    # Class-scoped, so set up before pytest_goleak's before-reading: what it leaks is the class's, not the test's.
    with httpx.Client(base_url=goleak_service.url) as client:
        assert client.get("/leaky/chan-send").status_code == 200

def test_first(pytest_goleak):
    pytest_goleak.client.get("/healthz")

class TestClass:
    def test_after_a_leaky_setup(self, leaky_setup, pytest_goleak):
        pytest_goleak.client.get("/healthz")

def test_count(pytest_goleak):
    print("FRESH", " ".join(name.split("::")[1] for name in FRESH))
"""


def test_a_fixture_that_calls_the_service_between_tests_gets_a_fresh_reading(
    suite: Callable[..., pytest.Pytester],
) -> None:
    # Were test_first's after-reading adopted, the goroutine leaked in leaky_setup would fail the test.
    pytester = suite(TOUCHED_GAP)
    pytester.makeconftest(COUNT_READINGS)
    result = pytester.runpytest("-s")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*FRESH test_first TestClass"])


GROWN_ON_ITS_OWN = """
import time
from conftest import FRESH

def test_schedules(pytest_goleak):
    # The service grows 0.25 s from now, on its own clock: after this test's reading, before the next test's.
    assert pytest_goleak.client.get("/admin/grow", params={"goroutines": 1, "after_ms": 250}).status_code == 202

def test_without_the_check():
    time.sleep(1)  # a long gap, in which the service reads no byte

def test_next(pytest_goleak):
    pytest_goleak.client.get("/healthz")

def test_count(pytest_goleak):
    print("FRESH", " ".join(name.split("::")[1] for name in FRESH))
"""


def test_a_goroutine_the_service_starts_on_its_own_in_a_long_gap_is_not_the_next_tests(
    suite: Callable[..., pytest.Pytester],
) -> None:
    # No byte read, no fd or child: only the pprof index's goroutine count, asked after a long gap, sees it.
    pytester = suite(GROWN_ON_ITS_OWN)
    pytester.makeconftest(COUNT_READINGS)
    result = pytester.runpytest("-s")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["*FRESH test_schedules test_next"])


TOUCHING_FIXTURE = """
import httpx
import pytest

BOUND = []
URL = []

@pytest.fixture(scope="session", autouse=True)
def url(goleak_service):
    URL.append(goleak_service.url)

def pytest_runtest_setup(item):
    # Before any fixture of the test, outside its check: every gap between tests is touched.
    if URL:
        with httpx.Client(base_url=URL[0]) as client:
            assert client.get("/healthz").status_code == 200

def pytest_goleak_reading(item, service, reading, phase):
    if phase == "after" and reading.heap is not None and not reading.heap.collected:
        BOUND.append(item.name)
"""

EVERY_GAP_TOUCHED = """
import pytest
from conftest import BOUND

@pytest.mark.parametrize("n", range(4))
def test_clean(pytest_goleak, n):
    assert pytest_goleak.client.get("/work", params={"n": 1000}).status_code == 200

def test_heap_leak(pytest_goleak):
    assert pytest_goleak.client.get("/leaky/cache", params={"kb": 2048}).status_code == 200

def test_small_heap_growth_within_budget(pytest_goleak):
    assert pytest_goleak.client.get("/leaky/cache", params={"kb": 256}).status_code == 200

def test_count():
    print("BOUND", " ".join(BOUND))
"""


def test_where_every_gap_is_touched_the_heap_is_bounded_without_a_gc_and_leaks_still_fail(
    suite: Callable[..., pytest.Pytester],
) -> None:
    # One sample per 64 KiB: at Go's 512 KiB the 2 MiB page goes unsampled one run in 55, and its site unnamed.
    pytester = suite(EVERY_GAP_TOUCHED, "goleak_memprofilerate = 64KiB\n")
    pytester.makeconftest(TOUCHING_FIXTURE)
    result = pytester.runpytest("-s")
    result.assert_outcomes(passed=7, errors=1)
    # 2 MiB kept is judged exactly: the bound was over budget, so the heap was read again after a GC.
    result.stdout.fnmatch_lines(["goleak: heap +* MiB (budget 1.0 MiB)", "live heap grew *"])
    bound = result.stdout.str().split("BOUND", 1)[1].split("\n", 1)[0].split()
    # From the third touched gap on, after-readings bound the heap, and the tests they pass stay passed.
    assert {"test_clean[2]", "test_clean[3]", "test_heap_leak", "test_small_heap_growth_within_budget"} <= set(bound)


FD_LEAKS = """
import pytest

@pytest.mark.goleak({marker})
def test_open(pytest_goleak):
    assert pytest_goleak.client.get("/leaky/open").status_code == 200

@pytest.mark.goleak(goroutines=None, {marker})
def test_http_body(pytest_goleak):
    assert pytest_goleak.client.get("/leaky/http-body").status_code == 200
"""


@pytest.mark.parametrize(
    ("patterns", "passing"),
    [
        ([], set()),
        (["*products.csv"], {"test_open"}),
        # Matched on the socket's description; its raw target is only socket:[inode].
        (["tcp * ESTABLISHED"], {"test_http_body"}),
        (["socket:*", "*.csv"], {"test_open", "test_http_body"}),
        (["*.log", "tcp * -> 10.0.0.1:*"], set()),
    ],
)
def test_ignore_fds_patterns_match_paths_and_sockets(suite, patterns: list[str], passing: set[str]) -> None:  # type: ignore[no-untyped-def]
    pytester = suite(FD_LEAKS.format(marker=f"ignore_fds={patterns!r}"))
    reprec = pytester.inline_run()
    calls = by_name(reprec.getreports("pytest_runtest_logreport"))
    assert {name for name, report in calls.items() if report.passed} == passing
    for name in set(calls) - passing:
        assert "fds +" in calls[name].longreprtext.splitlines()[0]


def test_ignore_fds_from_the_ini(suite) -> None:  # type: ignore[no-untyped-def]
    pytester = suite(FD_LEAKS.format(marker=""), ini="goleak_ignore_fds =\n    *.csv\n")
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*::test_open PASSED*", "*::test_http_body PASSED*", "*::test_http_body ERROR*"])


def test_tmpfiles_none_leaves_the_tmpdir_unread_and_unchecked(suite) -> None:  # type: ignore[no-untyped-def]
    tests = """
        import pytest

        @pytest.mark.goleak(tmpfiles=None)
        def test_unchecked(pytest_goleak):
            assert pytest_goleak.client.get("/leaky/scratch").status_code == 200

        def test_checked(pytest_goleak):
            assert pytest_goleak.client.get("/leaky/scratch").status_code == 200
    """
    pytester = suite(tests)
    result = pytester.runpytest("--junitxml=out.xml")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*test_checked - Failed: goleak: tmpfiles +1 (budget 0)*"])
    junit = (pytester.path / "out.xml").read_text()
    assert junit.count('name="tmpfiles_delta"') == 1  # only the checked test read its TMPDIR


def test_a_rerun_whose_body_was_skipped_is_not_judged(suite, pytester: pytest.Pytester) -> None:  # type: ignore[no-untyped-def]
    # A rerun plugin (pytest-rerunfailures) runs an item's protocol again: the second run is judged on its own.
    pytester.makeconftest(
        """
        import pytest
        from _pytest.runner import runtestprotocol

        @pytest.hookimpl(tryfirst=True)
        def pytest_runtest_protocol(item, nextitem):
            item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
            runtestprotocol(item, nextitem=None, log=True)  # everything torn down, then set up again
            item._initrequest()  # as pytest-rerunfailures does before a rerun
            runtestprotocol(item, nextitem=nextitem, log=True)
            return True
        """
    )
    tests = """
        import pytest
        RUNS = []

        def test_leaks_then_skips(pytest_goleak):
            RUNS.append(1)
            assert pytest_goleak.client.get("/leaky/chan-send").status_code == 200
            if len(RUNS) == 2:
                pytest.skip("the rerun leaks too, then skips: a skipped body is never judged")
        """
    result = suite(tests).runpytest("-rA")
    result.assert_outcomes(passed=1, skipped=1, errors=1)
    result.stdout.fnmatch_lines(["*_ ERROR at teardown of test_leaks_then_skips _*", "goleak: 1 goroutine leaked*"])
