"""The hints at the end of a failure report: how to ignore the leaked kind, and what a recent start may explain.

Rendered from what the check decided and found; nothing here reads the service.
"""

from __future__ import annotations

import json

from pytest_goleak import text
from pytest_goleak.judge.startup import Startup
from pytest_goleak.judge.verdict import Verdict

README_SECTION = "Waiting out start-up"


def ignore_pattern(identity: str) -> str:
    """An ignore pattern that matches exactly ``identity``: ``[`` (Go's generics, ``F[...]``) is a class in patterns."""
    return identity.replace("[", "[[]").replace("?", "[?]")


def ignore_help(verdict: Verdict) -> str:
    """The end of a goroutine-leak report: the runtime's word on the leaked kinds, and the lines that ignore them.

    Empty when no goroutine group is reported. Per-resource state (a
    goroutine per alert group, per subscription) is growth the service means
    to keep, and these are the exact lines a user would otherwise have to
    work out from the report; a budget or a clean-up in the test is narrower.
    """
    if not verdict.leaked_groups:
        return ""
    count = sum(group.count for group in verdict.leaked_groups)
    proven = sum(group.proven for group in verdict.leaked_groups)
    names = list(dict.fromkeys(ignore_pattern(group.identity) for group in verdict.leaked_groups))
    lines = []
    if proven:
        which = "it" if count == 1 else ("all of them" if proven == count else f"{proven} of these {count}")
        lines += [
            f"The Go runtime proved {which} leaked: nothing can ever wake {'it' if proven == 1 else 'them'}, so this"
            " is not state the service keeps.",
            "Fix the code rather than ignore it.",
        ]
    elif verdict.leak_profile:
        lines += [
            "The Go runtime's leak profile does not prove these leaked (it proves only goroutines nothing can reach):",
            "they may be state the service keeps per resource the test created, or a leak it cannot prove.",
        ]
    lines += [
        "If they are state the service keeps on purpose, for a resource the test created, these lines ignore that",
        'kind (narrower: a budget on the test, or a clean-up in it; see "Stateful APIs" in pytest-goleak\'s README):',
    ]
    if len(names) == 1:
        lines.append(f"    goleak_ignore = {names[0]}")
    else:
        lines += ["    goleak_ignore =", *(f"        {name}" for name in names)]
    lines.append(f"    @pytest.mark.goleak(ignore=[{', '.join(json.dumps(name) for name in names)}])")
    return "\n\n" + text.lines(lines)


def startup_hint(startup: Startup, name: str, timeout: float, ready_url: str | None, answering: str | None) -> str:
    """Report text for the first test after a start that failed on the leak check.

    ``ready_url`` is the configured ready URL (if any); ``answering`` a
    common readiness path that answered 2xx just now (if any).
    """
    lines = [
        f"{name} had just started ({startup.after_start:.2f}s before this test): "
        "this was the first test after its start,",
        "so some of this growth may be start-up work still going on, not the test's.",
    ]
    if startup.quiet_for <= 0:
        lines.append("  The start-up wait is off (goleak_startup_quiet = 0).")
    elif startup.quiet:
        lines += [
            f"  It was quiet before this test: goroutines and fds unchanged over {startup.quiet_for:g}s "
            "(goleak_startup_quiet).",
            "  Start-up work that begins later than that is not waited for.",
        ]
    else:
        changing = ", ".join(startup.changing[:6]) + (", ..." if len(startup.changing) > 6 else "")
        lines.append(f"  It never became quiet: still changing when goleak_start_timeout ({timeout:g}s) ran out:")
        lines.append(f"  {changing}.")
    if ready_url is None and answering is not None:
        lines += [
            f"  {answering} answers 2xx. If it does so only once start-up is over, add this line to the ini file",
            "  and tests wait for it:",
            f"      goleak_ready_url = http://{{addr}}{answering}",
        ]
    else:
        if ready_url:
            lines.append(f"  It had answered goleak_ready_url ({ready_url}) before this test.")
        lines += [
            "  Give the service a warm-up: a session-scoped autouse fixture that waits until its start-up is over",
            f'  (see "{README_SECTION}" in pytest-goleak\'s README).',
        ]
    return text.lines(lines)
