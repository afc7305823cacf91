"""Leak detection against the real example service, over real HTTP.

Fixed twins and clean endpoints run under the ``pytest_goleak`` fixture of
this very suite: a false leak verdict fails them. Leaky routes must fail, so
they run in a nested pytest session whose reports are read back.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from backends import lacks
from verdicts import by_name, checked

from pytest_goleak.read.backend import Lack
from pytest_goleak.service.toolchain import build_package

ROOT = Path(__file__).resolve().parents[2]

# route -> (what the headline must say, what the report must name)
LEAKS: dict[str, tuple[list[str], list[str]]] = {
    "chan-send": (["1 goroutine leaked"], ["[chan send]", "main.(*PriceService).fetchQuote", "created by"]),
    # Go 1.22 names the wait state "semacquire"; the frame is the same everywhere.
    "waitgroup": (["goroutine"], ["sync.(*WaitGroup).Wait", "main.(*Notifier).awaitBatch"]),
    "busy-worker": (["goroutine"], ["main.(*uploadQueue).pollLeaky"]),
    "context": (["goroutine"], ["main.(*Subscription).watch"]),
    "pipe": (["goroutine"], ["io.(*pipe).read", "main.checksumReport"]),
    "mutex": (["goroutine"], ["[sync.Mutex.Lock]", "main.(*Inventory).reserve"]),
    # 8 MiB: at Go's sample rate (one per 512 KiB) the site goes unsampled with odds of e^-16.
    "cache?kb=8192": (["heap +8.0 MiB (budget 1.0 MiB)"], ["main.renderPage"]),
    "open": (["fds +1 (budget 0)"], ["products.csv"]),
    "http-body": (["goroutines leaked", "fds +2"], ["net/http.(*persistConn).readLoop", "tcp 127.0.0.1:"]),
    "listener": (["1 goroutine leaked", "fds +1"], ["main.(*webhookReceiver).acceptLoop", "LISTEN"]),
    "exec": (["children +1 (budget 0)"], ["[zombie]", "sh"]),
    "tempfile": (["fds +1 (budget 0)"], ["upload-"]),
    "scratch": (["tmpfiles +1 (budget 0)"], ["new entries in the service's TMPDIR (1):", "export-"]),
    "ticker": (["1 goroutine leaked"], ["main.(*Session).heartbeatLeaky"]),
    # 16 MiB mapped and written; a new thread's stack or the first request's buffers may add a little.
    "mmap": (
        ["off-heap memory +1", "MiB (budget 8.0 MiB)"],
        ["new or grown memory mappings (", "[anonymous]  new, 16.0 MiB"],
    ),
}


# What the portable backend cannot show of a leak it still catches: the report says so instead.
UNSHOWN: dict[str, tuple[Lack, list[str]]] = {
    "mmap": (Lack.MAPPINGS, ["which mappings grew is not shown: the portable backend reads no memory mappings"]),
}


PATTERNS = sorted({route.split("?")[0] for route in LEAKS})


@pytest.mark.parametrize("route", list(LEAKS))
def test_leaky_route_fails_with_the_right_report(
    pytester: pytest.Pytester, write_ini: Callable[..., None], route: str
) -> None:
    write_ini()
    pytester.makepyfile(
        f"""
        def test_leaky(pytest_goleak):
            assert pytest_goleak.client.get("/leaky/{route}").status_code == 200
        """
    )
    reprec = pytester.inline_run()
    (report,) = checked(reprec.getreports("pytest_runtest_logreport")).values()
    assert report.failed, f"/leaky/{route} was not reported as a leak"
    text = report.longreprtext
    headline = text.splitlines()[0]
    assert headline.startswith("goleak: ")
    for phrase in LEAKS[route][0]:
        assert phrase in headline, f"{phrase!r} not in {headline!r}"
    lack, instead = UNSHOWN.get(route, (None, []))
    for name in instead if lack is not None and lacks(lack) else LEAKS[route][1]:
        assert name in text, f"{name!r} not in the report:\n{text}"


@pytest.mark.parametrize("pattern", PATTERNS)
def test_fixed_twin_passes(pytest_goleak, pattern: str) -> None:  # type: ignore[no-untyped-def]
    response = pytest_goleak.client.get(f"/fixed/{pattern}", params={"n": 3})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("round_", range(20))
def test_large_go_garbage_is_not_off_heap_growth(pytest_goleak, round_: int) -> None:  # type: ignore[no-untyped-def]
    # 64 MiB written and dropped raises resident memory; the runtime holds it, so off-heap memory stays flat.
    assert pytest_goleak.client.get("/admin/garbage", params={"mb": 64}).status_code == 200


def test_example_service_own_go_tests_pass() -> None:
    """The catalogue's Go tests: every leaky route leaks what its signal says, every fixed twin is flat."""
    done = subprocess.run(
        ["go", "test", "./..."], cwd=ROOT / "example_service", capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_tmpfiles_are_not_counted_in_a_tmpdir_the_user_chose(
    pytester: pytest.Pytester, write_ini: Callable[..., None]
) -> None:
    write_ini("goleak_env =\n    TMPDIR={tmp}\n")
    pytester.makepyfile(
        """
        def test_scratch(pytest_goleak):
            assert pytest_goleak.service.tmpdir is None
            assert pytest_goleak.values()["tmpfiles"] is None
            assert pytest_goleak.client.get("/leaky/scratch").status_code == 200
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_goroutines_started_by_waitgroup_go_are_told_apart(
    pytester: pytest.Pytester, write_ini: Callable[..., None], go_build: Callable[[str], Path], go_minor: int
) -> None:
    """Ending a WaitGroup.Go poller does not hide a leaked WaitGroup.Go subscriber."""
    if go_minor < 25:
        pytest.skip("sync.WaitGroup.Go needs Go 1.25 or later")
    write_ini(binary=go_build("tests/goapps/launchers"), args="-addr {addr}")
    pytester.makepyfile(
        """
        def test_swap(pytest_goleak):
            assert pytest_goleak.client.get("/stop-poller").status_code == 200
            assert pytest_goleak.client.get("/leak").status_code == 200
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*goleak: 1 goroutine leaked (budget 0)*", "*1 x [[]chan receive[]] main.subscribe*"])


CLEAN_ROUTES = ["/healthz", "/work?n=5000", "/api/products", "/api/orders", "/fixed/http-body", "/fixed/chan-send"]


@pytest.mark.parametrize("round_", range(50))
def test_clean_requests_never_flag_a_leak(pytest_goleak, round_: int) -> None:  # type: ignore[no-untyped-def]
    route = CLEAN_ROUTES[round_ % len(CLEAN_ROUTES)]
    for _ in range(3):
        assert pytest_goleak.client.get(route).status_code == 200
    pytest_goleak.client.post("/api/orders", json={"sku": "sku-1", "qty": 1})


def test_snapshot_is_inspectable(pytest_goleak) -> None:  # type: ignore[no-untyped-def]
    values = pytest_goleak.values()
    assert (values["goroutines"] or 0) > 0
    assert values["heap"] is not None and values["heap"] > 0
    assert values["fds"] is not None and values["fds"] >= 3
    assert values["threads"] is not None and values["threads"] >= 1
    assert values["tmpfiles"] is not None
    assert pytest_goleak.snapshot().goroutines.total >= (values["goroutines"] or 0)
    assert pytest_goleak.service.tmpdir is not None and pytest_goleak.service.tmpdir.is_dir()
    assert pytest_goleak.service.pid > 0
    assert pytest_goleak.url == pytest_goleak.service.url


@pytest.mark.goleak(goroutines=3)
def test_marker_budget_covers_a_small_leak(pytest_goleak) -> None:  # type: ignore[no-untyped-def]
    # Runs last in this module's service: the leak it leaves is in budget.
    assert pytest_goleak.client.get("/leaky/chan-send", params={"n": 2}).status_code == 200


def test_runtime_proof_marks_goroutines_nothing_can_wake(
    pytester: pytest.Pytester,
    write_ini: Callable[..., None],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    go_minor: int,
) -> None:
    """Go 1.26 with GOEXPERIMENT=goroutineleakprofile (1.27 by default) proves some leaks itself."""
    version = go_minor
    if version < 26:
        pytest.skip(f"the goroutineleak profile needs Go 1.26 or later; this is Go 1.{version}")
    if version == 26:
        monkeypatch.setenv("GOEXPERIMENT", "goroutineleakprofile")
    binary = build_package("example_service", ROOT, tmp_path)
    write_ini(binary=binary)
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.goleak(settle=0.2)
        @pytest.mark.parametrize("route", ["chan-send", "mutex"])
        def test_leaky(pytest_goleak, route):
            pytest_goleak.client.get("/leaky/" + route)
        """
    )
    reports = {
        name: r.longreprtext
        for name, r in by_name(pytester.inline_run().getreports("pytest_runtest_logreport"), "[").items()
    }
    assert "main.(*PriceService).fetchQuote  (proven leaked by the Go runtime" in reports["chan-send]"]
    # The inventory mutex is reachable from a global, so the runtime cannot prove that one.
    assert "proven leaked" not in reports["mutex]"]
    # The end of the report says what the proof means for ignoring them.
    assert "The Go runtime proved it leaked: nothing can ever wake it" in reports["chan-send]"]
    assert "The Go runtime's leak profile does not prove these leaked" in reports["mutex]"]
