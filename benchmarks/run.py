#!/usr/bin/env python3
"""What a pytest-goleak leak check costs per test: one command.

    python benchmarks/run.py            # full run (about 5-10 minutes on 2 cores), writes benchmarks/RESULTS.md
    python benchmarks/run.py --quick    # smoke run (a minute or so), prints the results only

It builds the example service once, then runs real pytest sessions against
it and against Debian's Alertmanager if installed (each session starts its
own service through the plugin, as a user's would), and reads what a small
timing plugin recorded. See README.md beside this file for what every number
means.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

import report  # noqa: E402
import suites  # noqa: E402
from report import mib, ms, ratio, table  # noqa: E402


@dataclass(frozen=True)
class Size:
    key: str
    label: str
    goroutines: int  # what to grow the example service to; 0: no growing
    heap_mb: int = 0
    server: str = "example"  # "example": example_service; "alertmanager": Debian's prometheus-alertmanager
    path: str = "/healthz"  # what the checked and unchecked tests request
    # Overhead in a row over the floor of one reading: the target.
    target: float = 1.2
    # Each test takes a function-scoped fixture that creates a watch (a goroutine and an open file in the
    # service) over a client of its own and deletes it in its teardown: the shape of a real integration suite.
    fixture: bool = False


ALERTMANAGER = "prometheus-alertmanager"
ALERTMANAGER_YML = ROOT / "soak" / "third_party" / "alertmanager" / "alertmanager.yml"

SIZES = (
    Size("g10", "~10 goroutines", 10),
    Size("g1k", "~1,000 goroutines", 1_000),
    Size("g10k", "~10,000 goroutines", 10_000, target=1.1),
    Size("g100k", "~100,000 goroutines", 100_000, target=1.1),
    Size("heap1g", "~1 GiB live heap (~10 goroutines)", 10, 1024),
    Size("fx", "~10 goroutines, a fixture that creates and deletes a watch per test", 10, fixture=True),
    # A real third-party server, not grown; it has no leaky endpoint, so no leak tests.
    Size("am", "Alertmanager (Debian's, Go 1.19)", 0, server="alertmanager", path="/-/healthy"),
)


@dataclass(frozen=True)
class Plan:
    mode: str
    passes: int  # timing sessions per size, the sizes taken in turn (pass 1: all sizes, then pass 2 ...)
    rounds: dict[str, int]  # per size and pass: rounds of (unchecked, floor, checked after the gap, checked in a row)
    leaks: int  # per size and pass (example service only): 10,000-goroutine leak tests, at the end of the session
    clean: int  # clean checked tests in the false-positive / RSS session
    warmup: int  # first tests of each kind left out of the statistics
    profile: dict[str, int]  # per size: checked tests in the cProfile session
    settle: float  # goleak settle for the leak tests
    budget_s: float  # the whole run's time budget; stages past it are skipped


FULL = Plan(
    mode="full",
    passes=2,
    rounds={"g10": 150, "g1k": 150, "g10k": 150, "g100k": 50, "heap1g": 100, "fx": 150, "am": 100},
    leaks=2,
    clean=1000,
    warmup=3,
    profile={"g10": 60, "g10k": 40, "g100k": 15},
    settle=0.1,
    budget_s=14 * 60,
)
# The plugin's own Python time per clean checked test in a row, at ~10 goroutines (median, ms).
PYTHON_TARGET_MS = 1.0

QUICK = Plan(
    mode="quick",
    passes=1,
    rounds={"g10": 12, "g1k": 12, "g10k": 12, "g100k": 6, "heap1g": 8, "fx": 12, "am": 8},
    leaks=1,
    clean=60,
    warmup=2,
    profile={},
    settle=0.1,
    budget_s=80,
)


class Runner:
    def __init__(self, plan: Plan, workdir: Path, binary: Path, started: float, source: Path | None) -> None:
        self.plan = plan
        self.workdir = workdir
        self.binary = binary
        # Where the sessions import pytest_goleak from: an exported commit
        # (--ref) ahead of the installed (editable) one, or the installed one.
        self.pythonpath = [str(BENCH), *([str(source)] if source else []), os.environ.get("PYTHONPATH", "")]
        self.started = started
        self.service_pids: list[tuple[int, str]] = []  # (pid, the binary's name) of every service a session started
        self.skipped: list[str] = []

    def left(self) -> float:
        return self.plan.budget_s - (time.monotonic() - self.started)

    def session(
        self, name: str, tests: str, env: dict[str, str], timeout: float, server: str = "example"
    ) -> Path | None:
        """Run one pytest session; return its JSON-lines file, or None if the time budget is spent."""
        timeout = min(timeout, self.left())
        if timeout < 5:
            self.skipped.append(f"{name} (time budget)")
            print(f"  {name}: skipped, the run's time budget is spent", flush=True)
            return None
        directory = self.workdir / name
        if server == "alertmanager":
            binary = shutil.which(ALERTMANAGER) or ALERTMANAGER
            ini = suites.alertmanager_ini(binary)
            files = {"alertmanager.yml": ALERTMANAGER_YML.read_text(encoding="utf-8")}
        else:
            binary = str(self.binary)
            ini, files = suites.example_ini(self.binary), {}
        test_file = suites.write_session(directory, ini, tests, files)
        out = directory / "out.jsonl"
        full_env = {
            **os.environ,
            **env,
            "GOLEAK_BENCH_OUT": str(out),
            "PYTHONPATH": os.pathsep.join(self.pythonpath).rstrip(os.pathsep),
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        command = [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "goleak_bench_timing",
            # The plugin (its entry point) loaded right after the timing plugin, before any other plugin's
            # entry point: the timing plugin's call wrappers then sit right inside and outside the plugin's.
            "-p",
            "goleak",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(directory),
            "-c",
            str(directory / "pytest.ini"),
            str(test_file),
        ]
        begun = time.monotonic()
        with (directory / "pytest.log").open("wb") as log:
            proc = subprocess.Popen(
                command,
                cwd=directory,
                env=full_env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                print(f"  {name}: still running after {timeout:.0f}s; stopping it", flush=True)
                _stop_group(proc)
                self.skipped.append(f"{name} (timed out after {timeout:.0f}s)")
        session, _ = report.load(out)
        if session.get("service_pid"):
            self.service_pids.append((int(session["service_pid"]), Path(binary).name))
        print(f"  {name}: pytest exit {proc.returncode}, {time.monotonic() - begun:.1f}s", flush=True)
        return out

    def reap_services(self) -> list[int]:
        """Kill any service a session left behind (normally none: pytest stops it)."""
        stray = []
        for pid, name in self.service_pids:
            try:
                proc = psutil.Process(pid)
                # The kernel keeps 15 characters of a name ("prometheus-aler").
                if proc.status() != psutil.STATUS_ZOMBIE and proc.name()[:15] == name[:15]:
                    stray.append(pid)
                    proc.kill()
                    proc.wait(5)
            except (psutil.NoSuchProcess, psutil.TimeoutExpired):
                continue
        return stray


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    for signum, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, signum)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def machine() -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    go = shutil.which("go")
    go_version = (
        subprocess.run([go, "version"], capture_output=True, text=True, timeout=30).stdout.strip() if go else "no go"
    )

    def version(package: str) -> str:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return "?"

    alertmanager = shutil.which(ALERTMANAGER)
    try:
        alertmanager_version = (
            subprocess.run([alertmanager, "--version"], capture_output=True, text=True, timeout=30)
            .stdout.strip()
            .split("\n", 1)[0]
            if alertmanager
            else "not installed"
        )
    except (OSError, subprocess.TimeoutExpired):
        alertmanager_version = "?"
    try:
        from google.protobuf.internal import api_implementation

        backend = api_implementation.Type()
    except ImportError:
        backend = "?"
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "memory": f"{psutil.virtual_memory().total / (1 << 30):.1f} GiB",
        "kernel": platform.release(),
        "go": go_version,
        "python": platform.python_version(),
        "libraries": (
            f"pytest {version('pytest')}, httpx {version('httpx')}, protobuf {version('protobuf')} ({backend}), "
            f"psutil {version('psutil')}, pytest-goleak {version('pytest-goleak')}"
        ),
        "alertmanager": alertmanager_version,
    }


def _git(*args: str) -> str:
    try:
        done = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def export_ref(ref: str, into: Path) -> str:
    """Export ``pytest_goleak/`` and ``example_service/`` at ``ref`` into ``into``; return the commit."""
    commit = _git("rev-parse", "--verify", f"{ref}^{{commit}}")
    if not commit:
        raise SystemExit(f"run.py: {ref!r} is not a commit of {ROOT}")
    into.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", commit, "pytest_goleak", "example_service"],
        capture_output=True,
        timeout=120,
        check=True,
    )
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        try:
            tar.extractall(into, filter="data")
        except TypeError:  # a Python without extraction filters; the archive is our own repository's
            tar.extractall(into)
    return commit


def speed() -> dict[str, float]:
    """How fast this machine is right now, at two kinds of work the check does: plain Python and small file reads.

    Medians of 7, in ms. The machine is shared and its speed moves (by about 2x within an hour on the reference
    machine, system calls more than Python): runs whose probes differ measured different machines.
    """
    path = "/proc/self/stat" if os.path.exists("/proc/self/stat") else __file__

    def python_work() -> None:
        sum(i * i for i in range(20_000))

    def file_reads() -> None:
        for _ in range(500):
            fd = os.open(path, os.O_RDONLY)
            os.read(fd, 4096)
            os.close(fd)

    def ms(work: Callable[[], None]) -> float:
        times = []
        for _ in range(7):
            begun = time.perf_counter()
            work()
            times.append((time.perf_counter() - begun) * 1000)
        return report.median(times)

    return {"python_ms": ms(python_work), "file_reads_ms": ms(file_reads)}


def profile_sessions(runner: Runner, plan: Plan, workdir: Path) -> list[dict[str, Any]]:
    """The cProfile sessions: where the time of a clean check and of a leak's report goes, per profiled size."""
    profiles = []
    for size in SIZES:
        count = plan.profile.get(size.key)
        if not count:
            continue
        name = f"profile-{size.key}"
        env = {
            "GOLEAK_BENCH_GOROUTINES": str(size.goroutines),
            "GOLEAK_BENCH_HEAP_MB": str(size.heap_mb),
            "GOLEAK_BENCH_PROFILE": str(workdir / name / "check.prof"),
        }
        out = runner.session(name, suites.profile_suite(count, 1, plan.settle), env, 240)
        if out is None:
            continue
        _, items = report.load(out)
        checks = report.of_kind(items, "test_check_row_")
        leak_items = report.of_kind(items, "test_leak_")
        entry: dict[str, Any] = {"label": size.label, "tests": len(checks)}
        prof = workdir / name / "check.prof"
        if prof.exists() and checks:
            wall = sum(item["wall_ms"] for item in checks) / len(checks)
            entry["check"] = report.check_breakdown(prof, len(checks), wall)
            entry["check_top"] = report.Stats(prof).top()
        leak_prof = Path(str(prof) + ".leak")
        if leak_prof.exists() and leak_items:
            wall = sum(item["wall_ms"] for item in leak_items) / len(leak_items)
            entry["leak"] = report.leak_breakdown(leak_prof, len(leak_items), wall)
            entry["leak_top"] = report.Stats(leak_prof).top()
        profiles.append(entry)
    return profiles


def run(plan: Plan, keep: bool, ref: str | None, only: frozenset[str] = frozenset()) -> dict[str, Any]:
    """One benchmark run; ``only`` (size keys) times those sizes alone and skips the other sessions."""
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="goleak-bench-"))
    results: dict[str, Any] = {
        "plan": asdict(plan),
        "machine": machine(),
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "load_before": os.getloadavg(),
        "speed_before": speed(),
    }
    print(f"pytest-goleak benchmark ({plan.mode}); sessions in {workdir}", flush=True)
    runner: Runner | None = None
    try:
        source: Path | None = None
        if ref is not None:
            source = workdir / "src"
            commit = export_ref(ref, source)
            results["plugin"] = f"commit {commit[:12]} ({ref}), exported with git archive"
            sys.path.insert(0, str(source))
        else:
            described = _git("describe", "--always", "--dirty")
            results["plugin"] = f"the installed (editable) working tree at {described or '?'}"
        # Imported only now, from the source chosen above; a commit from before the public face has it in toolchain.
        try:
            from pytest_goleak import build_package
        except ImportError:
            from pytest_goleak.toolchain import build_package  # type: ignore[import-not-found,no-redef]

        print(f"plugin under test: {results['plugin']}", flush=True)
        print("building example_service", flush=True)
        binary = build_package("example_service", source or ROOT, workdir / "bin")
        runner = Runner(plan, workdir, binary, started, source)

        # Each size runs in `passes` sessions, the sizes in turn, so that a
        # slow spell of the machine spreads over all sizes instead of one.
        gathered: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]] = {}
        sizes = [size for size in SIZES if not only or size.key in only]
        if shutil.which(ALERTMANAGER) is None:
            sizes = [size for size in sizes if size.server != "alertmanager"]
            runner.skipped.append(f"the Alertmanager size ({ALERTMANAGER} is not on PATH)")
            print(f"  {ALERTMANAGER} is not on PATH: the Alertmanager size is skipped", flush=True)
        for number in range(1, plan.passes + 1):
            for size in sizes:
                rounds = plan.rounds[size.key]
                env = {"GOLEAK_BENCH_GOROUTINES": str(size.goroutines), "GOLEAK_BENCH_HEAP_MB": str(size.heap_mb)}
                leaks = plan.leaks if size.server == "example" and not size.fixture else 0
                tests = suites.timing_suite(rounds, leaks, plan.settle, size.path, size.fixture)
                out = runner.session(f"timing-{size.key}-{number}", tests, env, 300, size.server)
                if out is None:
                    continue
                session, items = report.load(out)
                _, so_far = gathered.setdefault(size.key, (session, []))
                so_far += report.drop_warmup(items, plan.warmup)
        results["sizes"] = [
            report.size_result(size.label, *gathered[size.key]) for size in SIZES if size.key in gathered
        ]

        if only:  # a partial run, for an A/B of a few sizes: no false-positive, RSS or profile sessions
            results["profiles"] = []
            results["skipped"] = [*runner.skipped, "every session but the chosen sizes"]
        else:
            out = runner.session("clean-checked", suites.clean_suite(plan.clean, checked=True), {}, 300)
            results["clean"] = report.clean_result(report.load(out)[1], "test_clean_") if out else None
            out = runner.session("clean-unchecked", suites.clean_suite(plan.clean, checked=False), {}, 120)
            results["plain"] = report.clean_result(report.load(out)[1], "test_plain_") if out else None

            results["profiles"] = profile_sessions(runner, plan, workdir)
            results["skipped"] = runner.skipped
    finally:
        if runner is not None:
            stray = runner.reap_services()
            if stray:
                print(f"killed services left running: {stray}", flush=True)
        if keep:
            print(f"kept {workdir}", flush=True)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    results["elapsed_s"] = time.monotonic() - started
    results["load_after"] = os.getloadavg()
    results["speed_after"] = speed()
    return results


# ---------------------------------------------------------------- markdown


def _speed_line(results: Mapping[str, Any]) -> str:
    """The machine's speed probes (see speed()) before and after the run; '' for a run from before they existed."""
    before, after = results.get("speed_before"), results.get("speed_after")
    if not before or not after:
        return "- this machine's speed: not probed"
    return (
        "- this machine's speed before / after, in ms (lower is faster; absolute figures compare only between runs "
        f"whose probes agree): a fixed Python loop {before['python_ms']:.2f} / {after['python_ms']:.2f}, "
        f"500 small file reads {before['file_reads_ms']:.2f} / {after['file_reads_ms']:.2f}"
    )


def _hit(ok: bool | None) -> str:
    return "n/a" if ok is None else ("**hit**" if ok else "**MISS**")


def targets(results: dict[str, Any]) -> list[list[str]]:
    """The targets table: target, measured, hit or miss, by how much, and the touched-gap figure (not a target)."""
    rows: list[list[str]] = []
    by_label = {size.label: size for size in results.get("sizes", [])}
    for spec in SIZES:
        size = by_label.get(spec.label)
        if size is None:
            continue
        value, limit = size.row.over_floor, spec.target
        measured = not math.isnan(value)
        missed = measured and value > limit
        rows.append(
            [
                f"overhead in a row ≤ {limit:g}x the floor of one reading, {spec.label}",
                f"{ratio(value)} ({ms(size.row.overhead_median)} ms over a {ms(size.floor_median)} ms floor)",
                _hit(not missed if measured else None),
                f"{value / limit:.2f}x the target" if missed else ("within" if measured else ""),
                f"{ratio(size.gap.over_floor)} ({ms(size.gap.overhead_median)} ms)",
            ]
        )
    for spec in SIZES:
        size = by_label.get(spec.label)
        if size is None or spec.key != "g10":
            continue
        total = size.row.python.total
        measured = not math.isnan(total.median)
        missed = measured and total.median > PYTHON_TARGET_MS
        rows.append(
            [
                f"the plugin's Python side per clean test in a row ≤ {PYTHON_TARGET_MS:g} ms "
                f"(waits on the service left out), {spec.label}",
                f"{ms(total.median, 2)} ms median, {ms(total.p95, 2)} ms p95",
                _hit(not missed if measured else None),
                f"{total.median / PYTHON_TARGET_MS:.2f}x the target" if missed else ("within" if measured else ""),
                f"{ms(size.gap.python.total.median, 2)} ms",
            ]
        )
    for size in results.get("sizes", []):
        if not size.leaks:
            continue
        worst = size.leak_report_max
        rows.append(
            [
                f"10,000-goroutine leak reported, grouped, ≤ 2 s after the test's end ({size.label})",
                f"{ms(worst / 1000, 2)} s worst of {len(size.leaks)}, grouped: {'yes' if size.leak_grouped else 'NO'}",
                _hit(worst <= 2000 and size.leak_grouped),
                f"{worst / 2000:.1f}x the target" if worst > 2000 else f"{(2000 - worst) / 1000:.2f} s to spare",
                "",
            ]
        )
    clean = results.get("clean")
    if clean is not None:
        bad = clean.failures + clean.errors
        verdict = _hit(bad == 0) if clean.n >= 1000 else ("**MISS**" if bad else "n/a")
        rows.append(
            [
                f"0 false positives in >= 1,000 clean tests (ran {clean.n})",
                f"{bad} failed",
                verdict,
                "" if clean.n >= 1000 else f"only {clean.n} tests in this mode",
                "",
            ]
        )
        growth = clean.rss_growth
        rows.append(
            [
                f"plugin process RSS growth over {clean.n} tests < 50 MiB",
                mib(growth),
                _hit(growth < 50 * (1 << 20)),
                f"{(50 * (1 << 20) - growth) / (1 << 20):.1f} MiB to spare"
                if growth < 50 * (1 << 20)
                else f"{growth / (50 << 20):.1f}x the target",
                "",
            ]
        )
    return rows


def _spread(spread: report.Spread) -> str:
    return f"{ms(spread.median, 2)} / {ms(spread.p95, 2)}"


def python_side(results: dict[str, Any]) -> list[str]:
    """The table of the plugin's Python side per clean checked test, phase by phase, beside the floor."""
    lines = [
        "",
        "## The plugin's Python side per clean checked test",
        "",
        "Per test, median / p95 (nearest rank) in ms: the plugin's own Python time, every wait on the service "
        "(`keepalive.Answer.read`: the status and body of a pprof answer) left out. **before**: the "
        "`pytest_goleak` fixture's setup and the plugin's hooks of the setup phase; **after**: the plugin's "
        "call wrapper around the test body, the fixture's teardown (where a clean test is read and judged) and "
        "the plugin's hooks of the other phases; "
        "**verdict**: judging and rendering; **hooks**: the dispatch of `pytest_goleak_reading` / "
        "`pytest_goleak_verdict` to their implementations. Python total: median / p95 of the per-test sums. "
        "Python CPU: this thread's CPU time over the same regions (the four phases and reading the answers), "
        "which a busy machine does not stretch; less the waits': the same without the CPU time spent receiving "
        "and reading the answers, the plugin's own work alone. "
        "The floor is one reading after a touch of the test's path (`floor.py --touch`); overhead / floor "
        "is the in-a-row figure the targets are about.",
        "",
    ]
    rows, notes = [], []
    for size in results.get("sizes", []):
        for where, checked in (("**in a row**", size.row), ("after a touched gap", size.gap)):
            first = checked is size.row
            py = checked.python
            rows.append(
                [
                    size.label if first else "",
                    where,
                    str(py.n),
                    _spread(py.before),
                    _spread(py.after),
                    _spread(py.verdict),
                    _spread(py.hooks),
                    f"**{ms(py.total.median, 2)}** / {ms(py.total.p95, 2)}",
                    _spread(py.cpu),
                    _spread(py.own_cpu),
                    _spread(py.waits),
                    f"{ms(checked.overhead_median)} / {ms(checked.overhead_p95)}",
                    f"{ms(size.floor_median)} / {ms(size.floor_p95)}" if first else "",
                    f"**{ratio(checked.over_floor)}**",
                    f"{checked.before_per_test:.2f} / {checked.after_per_test:.2f} / {checked.gc_per_test:.2f}",
                ]
            )
        if size.timed_missing:
            notes.append(f"{size.label}: n/a, the plugin under test lacks {', '.join(size.timed_missing)}")
        elif size.call_wrappers_adjacent is False:
            notes.append(
                f"{size.label}: the timing plugin's call wrappers did not sit next to the plugin's, so **after** "
                "also holds the pytest wrappers between them"
            )
    lines += table(
        [
            "size",
            "checked test",
            "n",
            "before ms",
            "after ms",
            "verdict ms",
            "hooks ms",
            "Python total ms",
            "Python CPU ms",
            "Python CPU less the waits' ms",
            "waits on the service ms",
            "overhead ms (median / p95)",
            "floor (touched) ms (median / p95)",
            "overhead / floor",
            "readings per test: before / after / forced GCs",
        ],
        rows,
    )
    if notes:
        lines += [""] + [f"- {note}" for note in notes]
    return lines


def slow_readings(results: dict[str, Any]) -> list[str]:
    """How many readings of each kind took the service's slow mode: what the medians above swing with."""
    lines = [
        "",
        "## Slow readings",
        "",
        f"The share of readings over {report.SLOW_FACTOR:g}x the first quartile of their kind in the session. On "
        "two shared vCPUs the service's forced GC answers in one of two modes (~1.3 or ~4.8 ms at ~10 "
        "goroutines; see docs/cost.md), and a median follows whichever mode holds most of its readings: where "
        "the checked tests' share nears half while the floor's does not, overhead / floor swings up. The plugin's "
        "after-test readings come right after the test's connection closes; the floor's heap answer, 2 ms after "
        "its touch.",
        "",
    ]
    rows = [
        [size.label, _share(size.row.after_slow), _share(size.gap.after_slow), _share(size.floor_heap_slow)]
        for size in results.get("sizes", [])
    ]
    header = ["size", "after-test readings, in a row", "after a touched gap", "the floor's heap answers"]
    return lines + table(header, rows)


def _share(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.0%}"


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    plan = results["plan"]
    lines = [
        "# pytest-goleak: what a leak check costs per test",
        "",
        f"Generated by `python benchmarks/run.py{' --quick' if plan['mode'] == 'quick' else ''}` "
        f"on {results['date']} ({plan['mode']} run, {results['elapsed_s'] / 60:.1f} min). "
        "Column meanings and method: [README.md](README.md).",
        "",
        f"- machine: {m['nproc']} CPUs ({m['cpu']}), {m['memory']} RAM, Linux {m['kernel']}",
        f"- Go: {m['go']}",
        f"- Python: {m['python']}; {m['libraries']}",
        f"- third-party server: {m.get('alertmanager', '?')}",
        f"- plugin under test: {results.get('plugin', '?')}",
        f"- extra pytest options: `{results['addopts']}`" if results.get("addopts") else "- extra pytest options: none",
        "- load average (1/5/15 min) before: {} / after: {}".format(
            " ".join(f"{x:.2f}" for x in results.get("load_before", ())),
            " ".join(f"{x:.2f}" for x in results.get("load_after", ())),
        ),
        _speed_line(results),
        "",
        "## Targets",
        "",
    ]
    lines += table(
        ["target", "measured (in a row)", "", "by how much", "after a touched gap (not a target)"], targets(results)
    )
    lines += [
        "",
        "## Per-test cost of the check on a clean test",
        "",
        "Two rows per size: **in a row**, a checked test right after another checked test (the primary figures), "
        "and **after a touched gap**, the first checked test after the unchecked and floor tests had called the "
        "service. Unchecked and floor columns are the same for both rows of a size.",
        "",
    ]
    rows = []
    for size in results.get("sizes", []):
        for where, checked in (("**in a row**", size.row), ("after a touched gap", size.gap)):
            first = checked is size.row
            rows.append(
                [
                    size.label if first else "",
                    where,
                    (f"{size.goroutines:,}" if size.goroutines is not None else "n/a") if first else "",
                    mib(size.heap_alloc) if first else "",
                    str(checked.n),
                    f"{ms(checked.check_median)} / {ms(checked.check_p95)}",
                    f"{ms(size.base_median)} / {ms(size.base_p95)}" if first else "",
                    f"**{ms(checked.overhead_median)}** / {ms(checked.overhead_p95)}",
                    ratio(checked.ratio),
                    f"**{ratio(checked.over_floor)}**",
                    f"{checked.before_per_test:.2f} / {checked.after_per_test:.2f} / {checked.gc_per_test:.2f}",
                    f"{ms(checked.after_median)} / {ms(checked.after_p95)}",
                    f"{ms(size.floor_median)} / {ms(size.floor_p95)}" if first else "",
                    f"{ms(size.floor_goroutine)} + {ms(size.floor_heap)}" if first else "",
                ]
            )
    lines += table(
        [
            "size",
            "checked test",
            "goroutines",
            "live heap",
            "n",
            "checked ms (median / p95)",
            "unchecked ms (median / p95)",
            "overhead ms (median / p95)",
            "checked / unchecked",
            "overhead / floor",
            "readings per test: before / after / forced GCs",
            "after-test reading(s) ms (median / p95)",
            "floor ms (median / p95)",
            "floor: goroutine + heap ms",
        ],
        rows,
    )
    lines += python_side(results)
    lines += slow_readings(results)
    lines += ["", "## Time to report a 10,000-goroutine leak", ""]
    rows = []
    for size in results.get("sizes", []):
        for leak in size.leaks:
            rows.append(
                [
                    size.label,
                    leak["outcome"] or "?",
                    ms(leak["request_ms"]),
                    f"**{ms(leak['report_ms'])}**",
                    ms(leak["whole_minus_request_ms"]),
                    f"{leak['listed']} in {leak['groups']}" if leak["groups"] is not None else "not grouped",
                    "`" + leak["headline"].replace("|", "/") + "`",
                ]
            )
    lines += table(
        [
            "size before the leak",
            "outcome",
            "request ms",
            "body end → failure report ms",
            "whole test - request ms",
            "goroutines in groups",
            "first line of the report",
        ],
        rows,
    )
    clean, plain = results.get("clean"), results.get("plain")
    lines += ["", "## False positives and the plugin's own memory", ""]
    rows = []
    for what, result in (("checked (pytest_goleak)", clean), ("unchecked (goleak_service only)", plain)):
        if result is None:
            continue
        rows.append(
            [
                what,
                str(result.n),
                str(result.failures),
                str(result.errors),
                ms(result.median_ms),
                mib(result.rss_first),
                mib(result.rss_last),
                f"**{mib(result.rss_growth)}**",
                mib(result.rss_max),
            ]
        )
    lines += table(
        [
            "clean tests",
            "n",
            "failed",
            "errors",
            "median ms/test",
            "RSS after test 1",
            "RSS after last test",
            "RSS growth",
            "RSS max",
        ],
        rows,
    )
    if clean is not None and clean.failed_names:
        lines += ["", "False positives:", ""] + [f"- `{name}`" for name in clean.failed_names]
    unexpected = [line for size in results.get("sizes", []) for line in size.unexpected]
    lines += ["", f"Unexpected failures among the timing sessions' clean tests: {len(unexpected)}."]
    lines += [f"- `{line[:200]}`" for line in unexpected[:10]]
    profiles = results.get("profiles") or []
    if profiles:
        lines += [
            "",
            "## Where the time goes (cProfile of the checked tests, in a row)",
            "",
            "cProfile slows Python code (not the waiting on sockets), so the Python-side rows read high; "
            "the sleeps and the socket waits are real.",
            "",
        ]
        for entry in profiles:
            if "check" in entry:
                lines += [f"### Clean checked test in a row, {entry['label']} ({entry['tests']} tests)", ""]
                lines += table(["where", "ms per test", "note"], [[w, ms(v, 2), n] for w, v, n in entry["check"]])
                lines += ["", "Top functions by own time (all tests together):", "", "```"]
                lines += [
                    f"{own * 1000:9.1f} ms own {cum * 1000:9.1f} ms cum {calls:8d} calls  {where}"
                    for where, calls, own, cum in entry["check_top"]
                ]
                lines += ["```", ""]
            if "leak" in entry:
                lines += [f"### 10,000-goroutine leak test, {entry['label']}", ""]
                lines += table(["where", "ms per test", "note"], [[w, ms(v, 1), n] for w, v, n in entry["leak"]])
                lines += ["", "```"]
                lines += [
                    f"{own * 1000:9.1f} ms own {cum * 1000:9.1f} ms cum {calls:8d} calls  {where}"
                    for where, calls, own, cum in entry["leak_top"]
                ]
                lines += ["```", ""]
    if results.get("skipped"):
        lines += ["", "Skipped: " + ", ".join(results["skipped"])]
    return "\n".join(lines).rstrip() + "\n"


def _jsonable(value: Any) -> Any:
    if hasattr(value, "__dataclass_fields__"):
        return {
            **asdict(value),
            **{k: getattr(value, k) for k in dir(type(value)) if isinstance(getattr(type(value), k, None), property)},
        }
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: small n, no profiles, under a minute")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="markdown to write (default: benchmarks/RESULTS.md for a full run, none for --quick)",
    )
    parser.add_argument(
        "--sizes",
        default="",
        help="time these sizes alone (comma-separated keys: " + ",".join(size.key for size in SIZES) + "), "
        "with the chosen plan's n; a partial run writes nothing unless --out is given",
    )
    parser.add_argument("--keep", action="store_true", help="keep the generated sessions, their logs and profiles")
    parser.add_argument(
        "--ref",
        default=None,
        help="benchmark pytest_goleak/ and example_service/ as of this git commit (e.g. HEAD) instead of the "
        "installed working tree",
    )
    parser.add_argument(
        "--addopts",
        default="",
        help="extra pytest options for every session, e.g. '--goleak-heap=none' (a cheaper mode) or "
        "'--goleak-fresh-readings' (two readings per test, no reuse: the comparison)",
    )
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    if args.addopts:
        # Inherited by every session the runner starts.
        os.environ["PYTEST_ADDOPTS"] = args.addopts
    only = frozenset(key for key in args.sizes.split(",") if key)
    unknown = only - {size.key for size in SIZES}
    if unknown:
        parser.error(f"unknown size {', '.join(sorted(unknown))}; the sizes are {', '.join(s.key for s in SIZES)}")
    results = run(plan, args.keep, args.ref, only)
    results["addopts"] = args.addopts
    text = markdown(results)
    print()
    print(text)
    out = args.out if args.out is not None else (None if args.quick or only else BENCH / "RESULTS.md")
    if out is not None:
        out.write_text(text, encoding="utf-8")
        out.with_suffix(".json").write_text(json.dumps(results, default=_jsonable, indent=1), encoding="utf-8")
        print(f"wrote {out} and {out.with_suffix('.json')}")
    sizes_ok = bool(results.get("sizes")) and (bool(only) or results.get("clean") is not None)
    return 0 if sizes_ok else 1


if __name__ == "__main__":
    sys.exit(main())
