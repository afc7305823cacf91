"""The baseline: the leaks a suite already has, so that only new ones fail while the old ones are fixed.

The file is JSON, sorted by test id so that it diffs well::

    {
      "tests": {
        "tests/test_api.py::test_upload": {"fds": 1, "goroutines": {"main.(*Uploader).spool": 2}}
      },
      "version": 1
    }

Per test it records the growth of each measure that was over budget, and for
goroutines the count per identity. A test then passes while its growth
beyond the recorded growth stays within its budget; more of a known
identity, a new identity, or more of a measure fails as it would without a
baseline. ``--goleak-update-baseline`` rewrites the entries of the tests
that ran (a test that no longer leaks loses its entry) and keeps the rest.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pytest_goleak.errors import ConfigError
from pytest_goleak.judge.budget import Known
from pytest_goleak.judge.measures import BY_NAME, GOROUTINES
from pytest_goleak.judge.verdict import Verdict

VERSION = 1
Entry = dict[str, Any]  # one test's record: measure name -> growth; goroutines -> {identity: count}


def entry(verdict: Verdict) -> Entry | None:
    """What this test leaked, judged without any baseline: the entry to record for it, or None if clean."""
    delta, budget = verdict.delta, verdict.budget
    over = delta.exceeded(budget if budget.known is None else replace(budget, known=None))  # no copy for most tests
    if not over:
        return None
    recorded: Entry = {}
    for measure in over:
        if measure is GOROUTINES:
            recorded[measure.name] = {growth.identity: growth.leaked for growth in delta.goroutines}
        else:
            recorded[measure.name] = delta.of(measure)
    return recorded


def _known(test: str, data: object, path: Path) -> Known:
    def bad(why: str) -> ConfigError:
        return ConfigError(
            f"baseline {path}: the entry for {test!r} {why}; fix it or rerun with --goleak-update-baseline"
        )

    if not isinstance(data, dict):
        raise bad("is not an object")
    growth: dict[str, int] = {}
    goroutines: dict[str, int] = {}
    for name, value in data.items():
        if name == GOROUTINES.name:
            if not isinstance(value, dict) or not all(isinstance(n, int) and n >= 0 for n in value.values()):
                raise bad("has goroutines that are not {identity: count}")
            goroutines = dict(value)
        elif name in BY_NAME and isinstance(value, int) and not isinstance(value, bool):
            growth[name] = value
        else:
            raise bad(f"has {name!r}: {value!r}, which is not a measure's growth")
    return Known(growth, goroutines)


@dataclass(frozen=True)
class Baseline:
    """A baseline file as read at the start of the session."""

    path: Path
    entries: Mapping[str, Known] = field(default_factory=dict)
    raw: Mapping[str, Entry] = field(default_factory=dict)  # as written, to rewrite untouched entries as they were

    @classmethod
    def load(cls, path: Path, missing_ok: bool) -> Baseline:
        """Read ``path``; a missing file is an error unless the run will write it (``missing_ok``)."""
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            if missing_ok:
                return cls(path)
            raise ConfigError(
                f"baseline {path} does not exist; create it with --goleak-update-baseline, or fix goleak_baseline"
            ) from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"baseline {path} is not JSON ({exc}); fix it or rerun with --goleak-update-baseline"
            ) from None
        if not isinstance(data, dict) or data.get("version") != VERSION or not isinstance(data.get("tests"), dict):
            raise ConfigError(
                f"baseline {path} is not a version {VERSION} goleak baseline; rerun with --goleak-update-baseline"
            )
        tests: dict[str, Entry] = data["tests"]
        return cls(path, {test: _known(test, known, path) for test, known in tests.items()}, tests)

    def known(self, test: str) -> Known | None:
        return self.entries.get(test)

    def updated(self, results: Mapping[str, Entry | None]) -> dict[str, Any]:
        """The file's new content: the tests that ran as they leaked now, the others as they were."""
        tests = {**self.raw, **{test: found for test, found in results.items() if found is not None}}
        for test, found in results.items():
            if found is None:
                tests.pop(test, None)
        return {"version": VERSION, "tests": dict(sorted(tests.items()))}

    def write(self, results: Mapping[str, Entry | None]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.updated(results), indent=2, sort_keys=True)
        self.path.write_text(text + "\n", encoding="utf-8")

    def stale(self, results: Mapping[str, Entry | None]) -> list[str]:
        """The entries of tests that ran and leaked nothing: a leak the baseline knows of that did not happen."""
        return sorted(test for test, found in results.items() if found is None and test in self.entries)

    def summary(self, results: Mapping[str, Entry | None], failed: Iterable[str], updating: bool) -> list[str]:
        """The summary lines: the known leaks, the entries that are gone, or what an update wrote."""
        name = self.path.name
        if updating:
            leaking = sum(found is not None for found in results.values())
            gone = [test for test, found in results.items() if found is None and test in self.raw]
            return [f"{name}: recorded {_tests(leaking)} with leaks, removed {len(gone)} that no longer leak"]
        failing = set(failed)
        known = [t for t, found in results.items() if found is not None and t in self.entries and t not in failing]
        gone = self.stale(results)
        lines = []
        if known:
            lines.append(f"{_tests(len(known))} with known leaks from {name}")
        if gone:
            shown = ", ".join(gone[:5]) + (f" and {len(gone) - 5} more" if len(gone) > 5 else "")
            verb = "leaks" if len(gone) == 1 else "leak"
            lines.append(
                f"{_tests(len(gone))} in {name} no longer {verb}: {shown} (--goleak-update-baseline removes them)"
            )
        return lines


def _tests(count: int) -> str:
    return f"{count} test{'s' if count != 1 else ''}"
