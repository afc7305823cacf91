"""pytest-html: the leak in the report a suite already publishes, as a browser shows it.

pytest-html 4 builds its table with JavaScript from data in the page, so the
file's text proves little: headless Chromium renders it, dumps the DOM the
script built and takes a screenshot. Skipped, with the reason, where
pytest-html or Chromium is missing (CI installs both: .ci/run).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

pytest.importorskip("pytest_html", reason="pytest-html is not installed (pip install -e .[dev])")

SUITE = """
def test_clean(pytest_goleak):
    assert pytest_goleak.client.get("/fixed/chan-send").status_code == 200

def test_price_quote(pytest_goleak):
    assert pytest_goleak.client.get("/leaky/chan-send", params={"n": 3}).status_code == 200
"""


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("no Chromium on PATH to render the pytest-html report (apt-get install chromium)")


def _browse(report: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", *args, report.as_uri()]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)


@pytest.fixture
def report(pytester: pytest.Pytester, write_ini: Callable[..., None]) -> Path:
    write_ini()
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest("--html=report.html", "--self-contained-html")
    result.assert_outcomes(passed=2, errors=1)  # the leak: an error at its teardown
    return pytester.path / "report.html"


def test_the_leak_is_in_the_report_as_a_browser_shows_it(report: Path) -> None:
    dom = _browse(report, "--virtual-time-budget=5000", "--dump-dom").stdout
    assert '<th class="col-goleak">goleak growth</th>' in dom
    # Each checked test's row has its growth; the leaking one also its report, with the chart of what grew.
    assert dom.count('<td class="col-goleak') >= 2
    assert '<td class="col-goleak goleak-leaked">goroutines +3, heap' in dom
    assert "goleak: the leak check failed</h4><p>goleak: 3 goroutines leaked (budget 0)</p>" in dom
    assert "3 x [chan send] main.(*PriceService).fetchQuote" in dom  # the failure, as the row's log
    assert '<svg class="goleak-bars"' in dom
    # The session's summary, in the report's summary section.
    assert '<div class="goleak-summary"><h2>goleak</h2><pre>2 tests checked, 1 leaked' in dom
    assert "LEAK test_suite.py::test_price_quote: 3 goroutines leaked (budget 0)" in dom


def test_the_report_renders_to_a_picture(report: Path) -> None:
    shot = report.with_name("report.png")
    _browse(report, "--virtual-time-budget=5000", "--window-size=1280,1600", f"--screenshot={shot}")
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 20_000  # a page, not a blank


def test_without_pytest_html_the_plugin_registers_no_html_hooks(
    pytester: pytest.Pytester, write_ini: Callable[..., None]
) -> None:
    write_ini()
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest("-p", "no:html")
    result.assert_outcomes(passed=2, errors=1)  # the leak: an error at its teardown
    assert "goleak-html" not in result.stdout.str()
