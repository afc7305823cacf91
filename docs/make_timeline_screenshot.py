"""Regenerate docs/timeline.html and docs/timeline.png from a real run against example_service.

Needs Go and Chromium (apt-get install chromium). From the repository root:

    python docs/make_timeline_screenshot.py
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

SUITE = """
import pytest

@pytest.mark.parametrize("i", range(60))
def test_orders(pytest_goleak, i):
    pytest_goleak.client.post("/api/orders", json={"sku": "sku-2", "qty": 1})
    if i >= 20:
        # From here on every test leaves 300 KiB in the page cache: under the
        # 1 MiB per-test budget, so only the session drift shows it.
        pytest_goleak.client.get("/leaky/cache", params={"kb": 300})
    if i in (35, 48):
        pytest_goleak.client.get("/leaky/chan-send")
"""


def main() -> int:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("needs Chromium: apt-get install chromium", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        suite = Path(tmp)
        (suite / "pytest.ini").write_text(
            textwrap.dedent(
                f"""
                [pytest]
                goleak_package = {ROOT / "example_service"}
                goleak_args = -addr {{addr}} -data-dir {{tmp}}
                goleak_settle = 0.3
                goleak_session_heap = 4MiB
                """
            )
        )
        (suite / "test_orders.py").write_text(SUITE)
        timeline = DOCS / "timeline.html"
        subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--goleak-timeline={timeline}"],
            cwd=suite,
            check=False,
        )
        subprocess.run(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                "--hide-scrollbars",
                f"--user-data-dir={suite / 'profile'}",
                "--window-size=1040,1180",
                f"--screenshot={DOCS / 'timeline.png'}",
                timeline.as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
    print(f"wrote {DOCS / 'timeline.html'} and {DOCS / 'timeline.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
