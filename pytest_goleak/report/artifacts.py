"""Files for investigating a leak after the fact: profiles ``go tool pprof`` opens, logs, dumps.

One directory per failing test, named from its test id so that no id
(``/``, ``::``, ``[...]``, spaces, ``..``) can reach outside the artifacts
directory.
"""

from __future__ import annotations

import hashlib
import re
import shlex
import shutil
from collections.abc import Sequence
from pathlib import Path

from pytest_goleak.judge.identity import left_out
from pytest_goleak.judge.verdict import Verdict
from pytest_goleak.read.pprof import encode_goroutine_profile
from pytest_goleak.read.snapshot import Snapshot

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(test_id: str, limit: int = 80) -> str:
    """A file name for ``test_id``: only ``[A-Za-z0-9._-]``, bounded, and unique by a hash suffix."""
    readable = _UNSAFE.sub("_", test_id).strip("._-")[:limit] or "test"
    digest = hashlib.sha1(test_id.encode()).hexdigest()[:8]
    return f"{readable}-{digest}"


def _counted_only(path: Path, reading: Snapshot, ignore: Sequence[str]) -> int:
    """Write ``reading``'s goroutine profile without what the verdict leaves out; how many goroutines it holds.

    The plugin's own goroutines (the profile request's) and ignored ones are
    dropped, so ``go tool pprof -diff_base`` counts what the verdict counts.
    """
    kept = [group for group in reading.goroutines.groups if not left_out(group.stack, ignore)]
    path.write_bytes(encode_goroutine_profile(kept))
    return sum(group.count for group in kept)


class ArtifactWriter:
    """Writes each failing test's evidence under one root directory."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._binaries: dict[Path, Path] = {}

    def _keep_binary(self, binary: Path | None) -> Path | None:
        # The built binary lives in a temporary build dir; pprof needs it to
        # symbolize the text heap profiles, so keep one copy per session.
        if binary is None or not binary.is_file():
            return None
        if binary not in self._binaries:
            target = self.root / safe_name(binary.name)
            shutil.copy2(binary, target)
            self._binaries[binary] = target
        return self._binaries[binary]

    def write(
        self, test_id: str, verdict: Verdict | None, report: str, log: str, binary: Path | None = None
    ) -> list[str]:
        """Write the files for one failure; return report lines naming them and the pprof commands."""
        folder = self.root / safe_name(test_id)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "report.txt").write_text(report + "\n")
        (folder / "service.log").write_text(log)
        lines = [f"artifacts: {folder}"]
        if verdict is None:
            return lines
        before, after = folder / "goroutines-before.pb.gz", folder / "goroutines-after.pb.gz"
        old = _counted_only(before, verdict.before, verdict.budget.ignore)
        new = _counted_only(after, verdict.after, verdict.budget.ignore)
        lines.append(f"  go tool pprof -top -diff_base {shlex.quote(str(before))} {shlex.quote(str(after))}")
        leaked = verdict.delta.goroutines_leaked
        if new - old != leaked:
            # The diff nets growth against goroutines that ended; the verdict counts growth by identity.
            lines.append(f"    (it nets {new - old:+d}: goroutines that ended offset the {leaked} counted as leaked)")
        if verdict.before.heap is not None and verdict.after.heap is not None:
            heap_before, heap_after = folder / "heap-before.txt", folder / "heap-after.txt"
            heap_before.write_bytes(verdict.before.heap.raw)
            heap_after.write_bytes(verdict.after.heap.raw)
            kept = self._keep_binary(binary)
            args = ["go", "tool", "pprof", "-top", "-sample_index=inuse_space", "-diff_base", str(heap_before)]
            args += [str(kept)] if kept is not None else []
            lines.append("  " + shlex.join([*args, str(heap_after)]))
        if verdict.dump_text:
            (folder / "goroutines-dump.txt").write_text(verdict.dump_text)
        return lines
