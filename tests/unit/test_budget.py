"""Budget parsing and validation: every bad value is one clear ConfigError."""

from __future__ import annotations

import pytest

from pytest_goleak.errors import ConfigError
from pytest_goleak.judge.budget import Budget
from pytest_goleak.judge.measures import FDS, GOROUTINES, HEAP, THREADS
from pytest_goleak.units import format_size, parse_size


def marker(name: str) -> str:
    return f"@pytest.mark.goleak({name}=...) on test_x"


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
    assert message.startswith("heap: ")
    assert "MiB" in message or "0 or more" in message


def test_format_size() -> None:
    assert format_size(2**70) == "1024.0 EiB"  # once printed as 1099511627776.0 GiB
    assert format_size(3 << 40) == "3.0 TiB"
    assert format_size(4 << 20) == "4.0 MiB"
    assert format_size(-512) == "-512 B"
    assert format_size(1536) == "1.5 KiB"


def test_marker_values_apply_over_defaults() -> None:
    budget = Budget().updated({"goroutines": 2, "heap": "4MiB", "ignore": ["main.worker"], "threads": 3}, marker)
    limits = (budget.limit(GOROUTINES), budget.limit(HEAP), budget.ignore, budget.limit(THREADS))
    assert limits == (2, 4 << 20, ("main.worker",), 3)
    assert budget.limit(FDS) == 0 and budget.settle == 2.0


def test_none_leaves_a_measure_unchecked() -> None:
    budget = Budget().updated({"heap": None, "fds": "none", "threads": "unchecked"}, marker)
    assert budget.limit(HEAP) is None and budget.limit(FDS) is None
    assert budget.checked == tuple(m for m in budget.checked if m not in (HEAP, FDS))
    with pytest.raises(ConfigError, match=r"goleak\(settle=\.\.\.\) on test_x: settle cannot be None"):
        Budget().updated({"settle": None}, marker)


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
        ({"ignore_fds": [3]}, r"ignore_fds=\.\.\.\) on test_x holds 3; each pattern must be a string"),
        ({"tmpfiles": -1}, "negative"),
        ({"heap": "12 XB"}, "not a size"),
    ],
)
def test_bad_marker_values(values: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as error:
        Budget().updated(values, marker)
    assert str(error.value).startswith("@pytest.mark.goleak(")
