"""The README's first command: the demo suite passes its clean tests and fails its leaky ones."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_demo_shows_clean_tests_passing_and_leaks_reported() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "demo", "-p", "no:cacheprovider", "-p", "no:xdist"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = done.stdout
    assert done.returncode == 1, out + done.stderr
    assert "7 passed, 4 errors" in out  # each leak is an error at its test's teardown
    for line in [
        "goleak: 3 goroutines leaked (budget 0)",
        "  3 x [chan send] main.(*PriceService).fetchQuote",
        "        created by main.(*PriceService).lookup",
        "goleak: heap +8.0 MiB (budget 1.0 MiB)",
        "        main.renderPage  reports.go:",
        "goleak: fds +1 (budget 0)",
        "  fd ",
        "[zombie] sh",
    ]:
        assert line in out, f"{line!r} missing from the demo output:\n{out}"
    # Go 1.23 and later also keep the zombie's pidfd open: fds +1 beside children +1.
    assert "goleak: fds +1 (budget 0), children +1 (budget 0)" in out or "goleak: children +1 (budget 0)" in out
    for clean in ["test_health", "test_place_order", "test_price_quote_fixed"]:
        assert f"ERROR demo/test_demo.py::{clean} " not in out
