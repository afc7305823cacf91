"""Budget parsing and validation: every bad value is one clear ConfigError."""

from __future__ import annotations

import pytest

from pytest_goleak.budget import Budget, format_size, parse_size
from pytest_goleak.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "size"),
    [
        (0, 0),
        (4096, 4096),
        ("512KiB", 512 << 10),
        ("4MiB", 4 << 20),
        ("4 MiB", 4 << 20),
        ("1.5 GB", 1_500_000_000),
        ("1.5GiB", 3 << 29),
        ("64k", 64 << 10),
        ("100", 100),
        ("2mb", 2_000_000),
    ],
)
def test_sizes(text: object, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("bad", ["12 XB", "MiB", "-1MiB", "1..5MiB", "", True, -1, [1]])
def test_bad_sizes_name_the_value_and_the_fix(bad: object) -> None:
    with pytest.raises(ConfigError) as error:
        parse_size(bad, "heap")
    message = str(error.value)
    assert "\n" not in message
    assert "heap=" in message
    assert "MiB" in message or "0 or more" in message


def test_format_size() -> None:
    assert format_size(4 << 20) == "4.0 MiB"
    assert format_size(-512) == "-512 B"
    assert format_size(1536) == "1.5 KiB"


def test_marker_values_apply_over_defaults() -> None:
    budget = Budget().updated({"goroutines": 2, "heap": "4MiB", "ignore": ["main.worker"], "threads": 3}, "m")
    assert (budget.goroutines, budget.heap, budget.ignore, budget.threads) == (2, 4 << 20, ("main.worker",), 3)
    assert budget.fds == 0 and budget.settle == 2.0


def test_none_leaves_a_measure_unchecked() -> None:
    assert Budget().updated({"heap": None, "fds": "none"}, "m").heap is None
    with pytest.raises(ConfigError, match="settle cannot be None"):
        Budget().updated({"settle": None}, "m")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"gorutines": 1}, "unknown argument 'gorutines'; use one of goroutines"),
        ({"goroutines": -1}, "negative"),
        ({"fds": 1.5}, "not a count"),
        ({"settle": "soon"}, "not a number of seconds"),
        ({"settle": -2}, "0 or more"),
        ({"check": "maybe"}, "not a boolean"),
        ({"ignore": 3}, "must be a list of patterns"),
        ({"ignore_fds": [3]}, "ignore_fds holds 3; each pattern must be a string"),
        ({"tmpfiles": -1}, "negative"),
        ({"heap": "12 XB"}, "not a size"),
    ],
)
def test_bad_marker_values(values: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Budget().updated(values, "@pytest.mark.goleak")
