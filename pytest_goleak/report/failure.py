"""The text a user reads in a CI log when a test leaks.

It is bounded: stacks are cut in the middle, groups and sites are capped, and
10,000 goroutines with one stack are one entry with a count. The first line
alone says what leaked and by how much, because some CI views show little
more.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pytest_goleak import text
from pytest_goleak.judge.measures import (
    CHILDREN,
    FDS,
    GOROUTINES,
    HEAP,
    MEASURES,
    OFFHEAP,
    TMPFILES,
    Measure,
    not_measured,
)
from pytest_goleak.judge.verdict import LeakedGroup, Verdict
from pytest_goleak.judge.watch import Outcome
from pytest_goleak.read.backend import Lack
from pytest_goleak.read.pprof import PROFILE_DEPTH, Frame, Stack
from pytest_goleak.read.procfs import format_child
from pytest_goleak.read.tmpdir import describe_entry
from pytest_goleak.report.connections import Connections, fold
from pytest_goleak.report.hints import fd_ignore_help, ignore_help, startup_hint
from pytest_goleak.service.protocol import Service
from pytest_goleak.units import format_size

MAX_GROUPS = 8
MAX_FRAMES = 14
MAX_DEEP_FRAMES = 40  # for a stack as deep as the goroutine profile's limit, or deeper
MAX_SITES = 5
MAX_LISTED = 20
SITE_FRAMES = 4
_RECURSION = 3  # frames of one function in a row that are shown as one


def headline(verdict: Verdict) -> str:
    return "goleak: " + ", ".join(verdict.violations)


def _frames(stack: Stack, limit: int = MAX_FRAMES) -> list[str]:
    frames = [f for f in stack if f.function != "runtime.goexit"]
    runs = _runs(frames)
    keep = limit // 2
    if len(runs) - 2 * keep > 1:  # one hidden run would take a line to say so: it is shown instead
        hidden = sum(len(run) for run in runs[keep:-keep])
        return [*_frame_lines(runs[:keep]), f"        ... {hidden} frames ...", *_frame_lines(runs[-keep:])]
    return _frame_lines(runs)


def _runs(frames: Sequence[Frame]) -> list[Sequence[Frame]]:
    """Frames in runs: a recursion (3 or more frames of one function in a row) is one run, each other frame its own.

    A deep recursion would otherwise fill the shown frames and push the
    frames around it, the ones that tell where it came from, into the cut.
    """
    runs: list[Sequence[Frame]] = []
    start = 0
    for end in range(1, len(frames) + 1):
        if end < len(frames) and frames[end].function == frames[start].function:
            continue
        run = frames[start:end]
        runs.extend([run] if len(run) >= _RECURSION else [[frame] for frame in run])
        start = end
    return runs


def _frame_lines(runs: Sequence[Sequence[Frame]]) -> list[str]:
    lines = []
    for run in runs:
        frame = run[0]
        lines.append(f"        {frame.function}")
        if frame.file:
            lines.append(f"            {frame.file}:{frame.line}")
        if len(run) > 1:
            lines.append(f"        ... {len(run) - 1} more frames of {frame.function} (recursion)")
    return lines


def _inside_launcher(group: LeakedGroup) -> tuple[Stack, list[str]]:
    """The frames up to the function a launcher runs, and a line for the launcher's, when they would take lines.

    grpc-go puts seven or more frames (its launcher, the interceptor chain)
    outside a handler: shown, they would push the handler's own frames into
    the cut.
    """
    frames = [frame.function for frame in group.stack if frame.function != "runtime.goexit"]
    if group.identity not in frames:
        return group.stack, []
    inner = len(frames) - frames[::-1].index(group.identity)  # its outermost frame: the handler may recurse
    outer = frames[inner:]
    if len(outer) <= _RECURSION:
        return group.stack, []
    return group.stack[:inner], [f"        ... {len(outer)} frames that run it, from {outer[-1]}"]


def _group_lines(group: LeakedGroup, cut: bool = False) -> list[str]:
    """One group's lines; ``cut``: the reading's profile cut deep stacks, so a deep one is shown as the dump has it."""
    state = f" [{group.state}]" if group.state else ""
    proof = ""
    if group.proven and group.proven == group.count:
        them = "it" if group.count == 1 else "them"
        proof = f"  ({'all ' if group.count > 1 else ''}proven leaked by the Go runtime: nothing can ever wake {them})"
    elif group.proven:
        proof = f"  ({group.proven} of {group.count} proven leaked by the Go runtime)"
    lines = [f"  {group.count} x{state} {group.identity}{proof}"]
    deep = cut and len(group.stack) >= PROFILE_DEPTH
    stack, launcher = _inside_launcher(group)
    lines += _frames(stack, MAX_DEEP_FRAMES if deep else MAX_FRAMES)
    lines += launcher
    if group.created_by is not None:
        lines.append(f"        created by {group.created_by.function}")
        if group.created_by.file:
            lines.append(f"            {group.created_by.file}:{group.created_by.line}")
    return lines


def _site_line(stack: Stack) -> list[str]:
    # The runtime's allocator frames say nothing about who allocated.
    frames = [f for f in stack if not f.function.startswith("runtime.")] or list(stack)
    return [f"        {f.function}  {f.file.rsplit('/', 1)[-1]}:{f.line}" for f in frames[:SITE_FRAMES]]


def _listed(title: str, items: Sequence[str], limit: int = MAX_LISTED) -> list[str]:
    """A titled list of new things, capped at ``limit`` entries."""
    lines = ["", f"{title} ({len(items)}):", *(f"  {item}" for item in items[:limit])]
    if len(items) > limit:
        lines.append(f"  ... and {len(items) - limit} more")
    return lines


def _baseline_lines(verdict: Verdict) -> list[str]:
    """What is new against the baseline file's entry for this test: new identities, more of known ones."""
    known = verdict.budget.known
    if known is None:
        return []
    lines = ["", f"beyond the baseline, which knows of {known.describe()} for this test:"]
    for growth in verdict.delta.goroutines:
        allowed = known.goroutines.get(growth.identity, 0)
        if growth.leaked > allowed:
            what = f"{growth.leaked} leaked, {allowed} known" if allowed else "a new identity"
            lines.append(f"  {growth.identity}: {what}")
    for measure in verdict.over:
        if measure.name in known.growth:
            grew = verdict.delta.of(measure) or 0
            lines.append(f"  {measure.phrase(grew)} in all, {measure.signed(known.growth[measure.name])} known")
    return lines


def _connection_lines(connections: Connections) -> list[str]:
    """One side's gRPC connections: one entry, each of grpc-go's goroutines for them on a line of its own."""
    count = connections.count
    what = connections.what.replace("a gRPC connection", f"{count} gRPC connections") if count > 1 else connections.what
    lines = [f"  {what}: {connections.goroutines} goroutines grpc-go runs for {'them' if count > 1 else 'it'}"]
    for role, group in connections.groups:
        state = f" [{group.state}]" if group.state else ""
        lines.append(f"        {group.count} x{state} {group.identity} ({role.what})")
    return lines


def _goroutine_section(verdict: Verdict) -> list[str]:
    if not verdict.leaked_groups:
        return []
    total = sum(group.count for group in verdict.leaked_groups)
    connections, rest = fold(verdict.leaked_groups)
    groups = len(connections) + len(rest)
    lines = ["", f"leaked goroutines ({total} in {groups} group{'s' if groups != 1 else ''}):"]
    for side in connections:
        lines += _connection_lines(side)
    shown = max(MAX_GROUPS - len(connections), 1)
    for group in rest[:shown]:
        lines += _group_lines(group, verdict.after.goroutines.cut)
    if len(rest) > shown:
        lines.append(f"  ... and {len(rest) - shown} more groups")
    return lines


def _heap_section(verdict: Verdict) -> list[str]:
    grew = format_size(verdict.delta.of(HEAP) or 0)
    if not verdict.heap_sites:
        rate = verdict.after.heap.sample_rate if verdict.after.heap is not None else 512 << 10
        return [
            "",
            f"no sampled allocation site grew: this service samples one allocation per {format_size(rate)} "
            "(runtime.MemProfileRate), so a small leak may show no site; lower goleak_memprofilerate to see one",
        ]
    title = f"live heap grew {grew}; allocation sites that grew (sampled estimates):"
    if verdict.extra_runs:
        title = (
            f"live heap grew {grew}; allocation sites that grew over the measured runs and {verdict.extra_runs} "
            "more, run so that the heap sampler could see the leak (sampled estimates):"
        )
    lines = ["", title]
    for site in verdict.heap_sites[:MAX_SITES]:
        lines.append(f"  +{format_size(site.bytes)} ({site.objects} objects live)")
        lines += _site_line(site.stack)
    return lines


def _offheap_section(verdict: Verdict) -> list[str]:
    grew = format_size(verdict.delta.of(OFFHEAP) or 0)
    lines = ["", f"resident memory outside the Go runtime grew {grew} (cgo's C.malloc, mmap, a C library's caches)"]
    if verdict.mappings:
        return lines + _listed("new or grown memory mappings", [m.describe() for m in verdict.mappings], MAX_SITES)
    if Lack.MAPPINGS in verdict.after.lacks:
        return [*lines, "  which mappings grew is not shown: the portable backend reads no memory mappings"]
    return [*lines, "  no mapping is new or grew in place: memory was added inside mappings that existed before"]


def _fd_section(verdict: Verdict) -> list[str]:
    fds = verdict.delta.new_fds
    lines = _listed("new file descriptors", [f"fd {fd}: {target}" for fd, target in fds]) if fds else []
    before, after = verdict.before.process, verdict.after.process
    unnamed = (after.unnamed_fds - before.unnamed_fds) if before is not None and after is not None else 0
    if unnamed > 0:
        # The portable backend counts them and cannot say what they are: the count still fails the test.
        lines += [
            "",
            f"{unnamed} more fd{'s' if unnamed != 1 else ''} without a name (the portable backend names only "
            "files and sockets: a pipe, kqueue or eventfd, say); GOLEAK_BACKEND=proc on Linux names them",
        ]
    return lines


def _children_section(verdict: Verdict) -> list[str]:
    children = verdict.delta.new_children
    return _listed("new child processes", [format_child(child) for child in children]) if children else []


def _tmpfiles_section(verdict: Verdict) -> list[str]:
    entries = [describe_entry(path, size) for path, size in verdict.delta.new_tmpfiles]
    return _listed("new entries in the service's TMPDIR", entries) if entries else []


# Each measure's evidence, as the report shows it when that measure is over budget (gathered in judge/evidence.py);
# in the order a reader wants them: goroutines, then memory, then the process's other resources.
SECTIONS: tuple[tuple[Measure, Callable[[Verdict], list[str]]], ...] = (
    (GOROUTINES, _goroutine_section),
    (HEAP, _heap_section),
    (OFFHEAP, _offheap_section),
    (FDS, _fd_section),
    (CHILDREN, _children_section),
    (TMPFILES, _tmpfiles_section),
)


def render(verdict: Verdict) -> str:
    """The whole failure text: headline, then each leaking measure in detail."""
    lines = [headline(verdict), *_baseline_lines(verdict)]
    for measure, section in SECTIONS:
        if measure in verdict.over:
            lines += section(verdict)
    if verdict.waited >= 0.05:
        lines += ["", f"(growth persisted through {verdict.waited:.2f}s of settling)"]
    return text.lines(lines)


def render_problem(problem: str) -> str:
    """The report of a service that gave no reading, in its own words (see judge/watch.py, problem_of)."""
    return f"goleak: {problem}"


def render_outcome(outcome: Outcome, service: Service) -> str | None:
    """What a test fails with for one service: the verdict's report with its hints, or the service's problem."""
    if outcome.problem is not None:
        return render_problem(outcome.problem)
    verdict = outcome.verdict
    if verdict is None or not verdict.failed:
        return None
    text = render(verdict)
    startup = outcome.startup
    if startup is not None:
        hint = startup_hint(startup, service.name, service.start_timeout, service.ready_url, outcome.ready_path)
        text += "\n\n" + hint
    # The lines that would ignore the leaked kind come last, where a reader copies them from.
    return text + ignore_help(verdict) + fd_ignore_help(verdict)


def junit_properties(verdict: Verdict) -> list[tuple[str, object]]:
    """Per-test growth, for ``item.user_properties`` (JUnit XML ``<property>`` elements)."""
    delta = verdict.delta
    properties: list[tuple[str, object]] = [(m.junit, delta.of(m)) for m in MEASURES if delta.of(m) is not None]
    properties.append(("goroutines_delta", delta.goroutine_total))
    lacking = not_measured(verdict.after.lacks)
    if lacking:  # a property left out is not a zero: say which are not measured on this platform
        properties.append(("goleak_not_measured", ",".join(m.name for m in lacking)))
    return properties
