"""The check spans the test's own function-scoped fixtures; higher-scoped fixtures stay outside.

The suites here are written the way integration suites are: a function-scoped
fixture holds its own client across ``yield``, creates a resource on the
service and removes it in its teardown. The example service's watches keep a
goroutine and an open file each until they are removed.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

NATURAL = """
import httpx
import pytest

LEFT_OPEN = []


@pytest.fixture
def watch(goleak_service):
    with httpx.Client(base_url=goleak_service.url, trust_env=False) as client:
        created = client.post("/api/watches")
        assert created.status_code == 201
        yield created.text
        assert client.delete(f"/api/watches/{created.text}").status_code == 204


@pytest.mark.parametrize("n", range(12))
def test_reads_products(pytest_goleak, watch, n):
    assert pytest_goleak.client.get("/api/products").status_code == 200


def test_orders(watch, pytest_goleak):  # the fixture named before pytest_goleak: the window is the same
    assert pytest_goleak.client.get("/api/orders").status_code == 200


def test_leaks_one_connection(pytest_goleak, watch, goleak_service):
    client = httpx.Client(base_url=goleak_service.url, trust_env=False)
    assert client.get("/api/products").status_code == 200
    LEFT_OPEN.append(client)  # never closed: one server connection stays
"""


def test_a_fixture_that_removes_what_it_created_is_not_charged_and_a_leak_still_is(suite) -> None:  # type: ignore[no-untyped-def]
    pytester = suite(NATURAL)
    result = pytester.runpytest("-p", "no:randomly", "--junitxml=junit.xml", "--goleak-json=leaks.json")
    result.assert_outcomes(passed=14, errors=1)  # 12 + 1 + 1 tests
    result.stdout.fnmatch_lines(
        [
            "*_ ERROR at teardown of test_leaks_one_connection _*",
            "goleak: 1 goroutine leaked (budget 0), fds +1 (budget 0)",
            "*net/http.(*conn).serve*",
            "LEAK test_suite.py::test_leaks_one_connection*",
            "ERROR test_suite.py::test_leaks_one_connection - Failed: goleak: 1 goroutine*",
        ]
    )
    # The hint says what holds the connection, and offers no line that would hide every connection leak.
    assert "net/http.(*conn).serve is the goroutine of every incoming HTTP connection" in result.stdout.str()
    assert "goleak_ignore = net/http.(*conn).serve" not in result.stdout.str()
    # The leak is the test's, by name, in JUnit and in the JSON report.
    cases = {case.get("name"): case for case in ET.parse(pytester.path / "junit.xml").iter("testcase")}
    leaked = cases["test_leaks_one_connection"]
    assert leaked.find("error") is not None
    assert any(p.get("name") == "goleak_failure" for p in leaked.iter("property"))
    assert all(case.find("error") is None for name, case in cases.items() if name != "test_leaks_one_connection")
    tests = {test["test"]: test for test in json.loads((pytester.path / "leaks.json").read_text())["tests"]}
    assert len(tests) == 14
    assert tests["test_suite.py::test_leaks_one_connection"]["outcome"] == "failed"
    assert [t for t in tests.values() if t["outcome"] == "failed"] == [
        tests["test_suite.py::test_leaks_one_connection"]
    ]


def test_a_fixture_that_never_releases_what_it_created_is_charged_to_the_test(suite) -> None:  # type: ignore[no-untyped-def]
    tests = """
        import httpx
        import pytest

        @pytest.fixture
        def forgotten_watch(goleak_service):
            with httpx.Client(base_url=goleak_service.url, trust_env=False) as client:
                yield client.post("/api/watches").text  # never deleted

        def test_uses_a_watch(pytest_goleak, forgotten_watch):
            pass
    """
    result = suite(tests).runpytest()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*1 goroutine leaked*fds +1*", "*main.(*watch).run*"])


def test_higher_scoped_fixtures_stay_outside_the_check(suite) -> None:  # type: ignore[no-untyped-def]
    # The module's watch is created before the first test's before-reading and removed after the last
    # test's after-reading: no test of the module is charged with it, the first included.
    tests = """
        import httpx
        import pytest

        @pytest.fixture(scope="module")
        def module_watch(goleak_service):
            with httpx.Client(base_url=goleak_service.url, trust_env=False) as client:
                created = client.post("/api/watches").text
                yield created
                client.delete(f"/api/watches/{created}")

        @pytest.fixture
        def per_test(module_watch):
            return module_watch

        def test_first(pytest_goleak, per_test):
            pass

        def test_second(module_watch, pytest_goleak):
            pass
    """
    suite(tests).runpytest().assert_outcomes(passed=2)


def test_a_skipped_or_setup_failing_test_is_not_judged(suite) -> None:  # type: ignore[no-untyped-def]
    tests = """
        import pytest

        @pytest.fixture
        def broken(pytest_goleak):
            pytest_goleak.client.get("/leaky/chan-send")
            raise RuntimeError("set-up failed")

        def test_skipped(pytest_goleak):
            pytest_goleak.client.get("/leaky/chan-send")
            pytest.skip("not today")

        def test_setup_fails(broken):
            pass
    """
    result = suite(tests).runpytest()
    result.assert_outcomes(skipped=1, errors=1)
    assert "goroutine leaked" not in result.stdout.str()


def test_the_order_is_the_same_on_every_pytest(pytester: pytest.Pytester) -> None:
    # pytest_goleak is moved before the first function-scoped fixture, after every higher-scoped one.
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture(scope="session")
        def goleak_service():
            return None

        @pytest.fixture(scope="module")
        def mod():
            return 1
        """
    )
    pytester.makepyfile(
        test_order="""
        import pytest

        @pytest.fixture
        def own(mod):
            return 2

        def test_names(request, own, pytest_goleak):
            pass
        """
    )
    items, _ = pytester.inline_genitems()
    names = items[0].fixturenames
    assert names.index("mod") < names.index("pytest_goleak") < names.index("own")
    assert names.index("goleak_service") < names.index("pytest_goleak")
