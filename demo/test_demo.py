"""A demo suite against example_service: three clean tests pass, four leaky ones fail.

Run it from the repository root with ``python -m pytest demo``. It fails on
purpose; the project's own tests (tests/test_demo.py) check what it prints.
"""

import pytest

# Real leaks never wind down; half a second of settling keeps the demo quick.
pytestmark = pytest.mark.goleak(settle=0.5)


def test_health(pytest_goleak):
    assert pytest_goleak.client.get("/healthz").text == "ok"


def test_place_order(pytest_goleak):
    response = pytest_goleak.client.post("/api/orders", json={"sku": "sku-3", "qty": 2})
    assert response.status_code == 201


def test_price_quote_fixed(pytest_goleak):
    assert pytest_goleak.client.get("/fixed/chan-send", params={"n": 3}).status_code == 200


def test_price_quote(pytest_goleak):
    # The lookup goroutine blocks forever sending its late answer.
    assert pytest_goleak.client.get("/leaky/chan-send", params={"n": 3}).status_code == 200


def test_page_cache(pytest_goleak):
    # Every rendered page stays in a global map.
    assert pytest_goleak.client.get("/leaky/cache", params={"kb": 512, "n": 16}).status_code == 200


def test_upload(pytest_goleak):
    # The spool file is never closed.
    assert pytest_goleak.client.get("/leaky/tempfile").status_code == 200


def test_upload_hook(pytest_goleak):
    # The post-upload hook is started and never waited for: a zombie.
    assert pytest_goleak.client.get("/leaky/exec").status_code == 200
