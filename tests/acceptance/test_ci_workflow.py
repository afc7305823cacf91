"""The GitHub Actions workflow in docs/ci.md, its commands run as the runner would run them.

The workflow file cannot run here; its ``run:`` steps can. They run in bash as
GitHub runs them (``bash --noprofile --norc -eo pipefail``), with the
variables a runner sets, against a nested suite of the example service: main's
run first (its JSON kept as the artifact), then a pull request's that leaks,
downloaded through a stand-in for ``gh`` that serves main's artifact. Only the
``pip install`` step is not run: the plugin is installed already.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ci_suite import LEAKY, LEAKY_LINE, write_suite

yaml = pytest.importorskip("yaml", reason="PyYAML reads the workflow (pip install -e .[dev])")

DOCS = Path(__file__).resolve().parents[2] / "docs" / "ci.md"
# A stand-in for the GitHub CLI: "run list" answers a run id while main's artifact exists, "run download" copies it.
FAKE_GH = r"""#!/usr/bin/env bash
echo "gh $*" >> "$GH_LOG"
if [ "$1 $2" = "run list" ]; then
    [ -d "$ARTIFACTS/goleak-main" ] && echo 4242
    exit 0
fi
if [ "$1 $2" = "run download" ]; then
    name="" dir="."
    shift 3
    while [ $# -gt 0 ]; do
        case "$1" in --name) name=$2; shift 2 ;; --dir) dir=$2; shift 2 ;; *) shift ;; esac
    done
    [ -d "$ARTIFACTS/$name" ] || { echo "no artifact $name" >&2; exit 1; }
    mkdir -p "$dir" && cp -r "$ARTIFACTS/$name/." "$dir/"
    exit 0
fi
echo "gh stand-in: unexpected $*" >&2
exit 2
"""


def _yaml_blocks() -> list[Any]:
    text = DOCS.read_text(encoding="utf-8")
    section = text[text.index("### The workflow") :]
    return [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", section, re.S)]


def _applies(condition: str | None, event: str) -> bool:
    """The workflow's ``if:`` conditions: only the forms it uses, so a new one fails here rather than passing."""
    if condition is None:
        return True
    known = {
        "github.event_name == 'pull_request'": event == "pull_request",
        "github.event_name == 'push' && always()": event == "push",
    }
    assert condition in known, f"the test does not know how to evaluate if: {condition}"
    return known[condition]


class Runner:
    """Runs the workflow's steps for one event in ``workspace``, as a GitHub runner would."""

    def __init__(self, workspace: Path, steps: list[dict[str, Any]]) -> None:
        self.workspace = workspace
        self.steps = steps
        self.artifacts = workspace.parent / "artifacts"
        self.bin = workspace.parent / "fake-bin"
        self.bin.mkdir(exist_ok=True)
        gh = self.bin / "gh"
        gh.write_text(FAKE_GH)
        gh.chmod(0o755)
        self.gh_log = workspace.parent / "gh.log"
        self.skipped: list[str] = []

    def run(self, event: str, **env: str) -> tuple[int, str, str]:
        """Every step of ``event``; returns the first failing step's status (0: the job passed), output, summary."""
        summary = self.workspace.parent / f"summary-{event}.md"
        summary.write_text("")
        base = {
            **os.environ,
            "PATH": f"{self.bin}{os.pathsep}{os.environ['PATH']}",
            "GITHUB_ACTIONS": "true",
            "GITHUB_EVENT_NAME": event,
            "GITHUB_WORKSPACE": str(self.workspace),
            "GITHUB_STEP_SUMMARY": str(summary),
            "ARTIFACTS": str(self.artifacts),
            "GH_LOG": str(self.gh_log),
            **env,
        }
        output, status = [], 0
        for step in self.steps:
            if not _applies(step.get("if"), event) or (status and "always()" not in step.get("if", "")):
                continue
            if "uses" in step:
                self._uses(step)
                continue
            script = step["run"]
            if script.startswith("pip install"):
                self.skipped.append(script)
                continue
            step_env = {
                name: "token" if "${{" in str(value) else str(value) for name, value in step.get("env", {}).items()
            }
            done = subprocess.run(
                ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
                cwd=self.workspace,
                env={**base, **step_env},
                capture_output=True,
                text=True,
                timeout=300,
            )
            output.append(done.stdout + done.stderr)
            status = status or done.returncode
        return status, "\n".join(output), summary.read_text()

    def _uses(self, step: dict[str, Any]) -> None:
        action = step["uses"].split("@")[0]
        if action == "actions/upload-artifact":
            target = self.artifacts / step["with"]["name"]
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy(self.workspace / step["with"]["path"], target)
        else:
            assert action in ("actions/checkout", "actions/setup-go", "actions/setup-python"), action


@pytest.fixture
def workspace(pytester: pytest.Pytester, write_ini: Callable[..., None], monkeypatch: pytest.MonkeyPatch) -> Path:
    write_suite(pytester, write_ini, monkeypatch)
    return pytester.path


def test_the_workflow_compares_a_pull_request_with_mains_run(workspace: Path) -> None:
    workflow, _shards = _yaml_blocks()
    steps = workflow["jobs"]["test"]["steps"]
    runner = Runner(workspace, steps)

    # The first pull request: main has no readings yet, so nothing is compared, and the job passes.
    status, output, summary = runner.run("pull_request")
    assert status == 0, output
    assert "## pytest-goleak: no leaks" in summary and "Compared with" not in summary
    # Main's run keeps its JSON as the artifact.
    runner.gh_log.write_text("")
    status, output, _ = runner.run("push")
    assert status == 0, output
    assert (runner.artifacts / "goleak-main" / "goleak.json").is_file()
    assert "gh run" not in runner.gh_log.read_text()  # only pull requests download

    # A pull request that leaks a goroutine and grows the heap under its budget.
    status, output, summary = runner.run("pull_request", LEAK="1", CACHE_KB="600")
    assert status == 1, output
    gh = runner.gh_log.read_text()
    assert "gh run list --branch main --workflow tests.yml --status success --limit 1" in gh
    assert "gh run download 4242 --name goleak-main --dir main-goleak" in gh
    commands = [line for line in output.splitlines() if line.startswith("::error")]
    assert commands[0] == (
        f"::error file=test_suite.py,line={LEAKY_LINE},title=goleak%3A 1 goroutine leaked (budget 0)"
        f"::{LEAKY}%0A1 x main.(*PriceService).fetchQuote"
    )
    assert any(
        line.startswith("::error title=goleak%3A grew more than in goleak.json::session: heap") for line in commands
    )
    assert f"COMPARE FAIL {LEAKY}: goroutines +1 here, +0 in goleak.json (+1 more; allowed +0)" in output
    assert "COMPARE FAIL session: heap +" in output
    assert "## pytest-goleak: leaks found, grew more than the compared run" in summary
    assert "### Compared with goleak.json" in summary
    assert set(runner.skipped) == {"pip install -e . pytest-goleak"}


def test_the_shards_merge_command_of_the_workflow(workspace: Path, pytester: pytest.Pytester) -> None:
    _workflow, shards = _yaml_blocks()
    (step,) = shards
    for shard, selected in (("1", "clean"), ("2", "not clean")):
        out = f"shards/{shard}/goleak.json"
        pytester.runpytest(f"--goleak-json={out}", "-k", selected)
    done = subprocess.run(["bash", "-eo", "pipefail", "-c", step["run"]], cwd=workspace, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "merge: 3 tests from 2 files into goleak.json"
