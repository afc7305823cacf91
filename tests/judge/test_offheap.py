"""Off-heap memory: C memory a cgo service never frees, against a real cgo build (skipped without a C compiler)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from backends import lacks
from verdicts import by_name

from pytest_goleak.judge.diff import diff
from pytest_goleak.judge.measures import NOTHING_IGNORED, OFFHEAP, values
from pytest_goleak.read.backend import Lack
from pytest_goleak.read.pprof import GoroutineProfile, HeapProfile
from pytest_goleak.read.procfs import ProcessState
from pytest_goleak.read.snapshot import Snapshot

THUMBNAILS = """
import pytest

@pytest.mark.parametrize("kind", ["leaky", "fixed"])
def test_thumbnail(pytest_goleak, kind):
    assert pytest_goleak.client.get(f"/{kind}/thumbnail", params={"mb": 16}).status_code == 200
"""


@pytest.fixture(scope="module")
def cgo_binary(go_build: Callable[[str], Path]) -> Path:
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("cgo needs a C compiler, and none is on PATH (apt-get install gcc)")
    cgo = subprocess.run(["go", "env", "CGO_ENABLED"], capture_output=True, text=True, check=True).stdout.strip()
    if cgo != "1":
        pytest.skip(f"this Go builds without cgo (go env CGO_ENABLED = {cgo!r})")
    return go_build("tests/goapps/cgomalloc")


def test_c_memory_never_freed_fails_as_off_heap_and_its_fixed_twin_passes(
    pytester: pytest.Pytester, write_ini: Callable[..., None], cgo_binary: Path
) -> None:
    write_ini(binary=cgo_binary, args="-addr {addr}")
    pytester.makepyfile(test_thumbnails=THUMBNAILS)
    reprec = pytester.inline_run()
    calls = by_name(reprec.getreports("pytest_runtest_logreport"), "[")
    assert calls["fixed]"].passed, calls["fixed]"].longreprtext
    leaky = calls["leaky]"]
    assert leaky.failed
    text = leaky.longreprtext
    headline = text.splitlines()[0]
    assert headline.startswith("goleak: off-heap memory +1") and headline.endswith("MiB (budget 8.0 MiB)"), headline
    assert "heap +" not in headline  # the Go heap did not grow: C's malloc is off-heap
    if lacks(Lack.MAPPINGS):  # caught all the same; which mapping grew, the portable backend cannot say
        assert "which mappings grew is not shown" in text
        return
    assert "new or grown memory mappings" in text
    # glibc serves 16 MiB from a fresh mmap, or from its brk heap once its threshold has grown.
    assert "[anonymous]" in text or "[heap]" in text


def _reading(resident_anon: int, runtime_held: int | None, runtime_idle: int = 0) -> Snapshot:
    heap = HeapProfile(live_bytes=1 << 20, runtime_held=runtime_held, runtime_idle=runtime_idle)
    process = ProcessState(pid=1, start_time=1, fds={}, children=(), threads=4, resident_anon=resident_anon)
    return Snapshot(GoroutineProfile(groups=()), heap, process)


def test_off_heap_is_resident_anonymous_memory_less_what_the_runtime_holds() -> None:
    assert OFFHEAP.read(_reading(30 << 20, 24 << 20), NOTHING_IGNORED) == 6 << 20
    # The scavenger returning 8 MiB lowers both sides: no change.
    assert OFFHEAP.read(_reading(22 << 20, 16 << 20), NOTHING_IGNORED) == 6 << 20
    # No MemStats in the profile (not Go's runtime/pprof): not measured.
    assert values(_reading(30 << 20, None))["offheap"] is None
    assert OFFHEAP.phrase(16 << 20, 4 << 20) == "off-heap memory +16.0 MiB (budget 4.0 MiB)"


def test_pages_the_scavenger_returns_mid_reading_are_not_off_heap_growth() -> None:
    # The profile's GC woke the scavenger: 4 MiB went back to the OS between the two /proc reads of
    # the before-reading, so its off-heap figure is somewhere in 2..6 MiB. After the test it is 6 MiB.
    before = replace(_reading(26 << 20, 24 << 20), resident_before_heap=30 << 20)
    after = _reading(26 << 20, 20 << 20)
    assert values(before)["offheap"] == 2 << 20  # the low bound is what charts and records show
    assert diff(before, after).of(OFFHEAP) == 0  # the least growth the readings allow
    leaked = _reading(42 << 20, 20 << 20)
    assert diff(before, leaked).of(OFFHEAP) == 16 << 20


def test_idle_heap_pages_never_touched_are_not_off_heap_growth_when_the_runtime_reuses_them() -> None:
    # As Debian's registry does after a 64 MiB blob: 5.5 MiB of heap pages mapped and held idle, never touched
    # (resident memory 6.4 MiB all along). The next test's allocation reuses them: held drops, resident does not.
    before = _reading(6 << 20, 20 << 20, runtime_idle=11 << 19)
    after = _reading(6 << 20, 15 << 20)
    assert values(after)["offheap"] - values(before)["offheap"] == 5 << 20  # the low bounds alone: a false +5 MiB
    assert diff(before, after).of(OFFHEAP) == -(1 << 19)
    # C memory on top of that is still growth, less the idle pages the before-reading could not place.
    leaked = _reading(22 << 20, 15 << 20)
    assert diff(before, leaked).of(OFFHEAP) == (16 << 20) - (1 << 19)
