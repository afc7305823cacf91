"""The benchmark's share of slow readings, on hand-made timings: what RESULTS.md's "Slow readings" table counts."""

from __future__ import annotations

import math

from benchreport import load_report

report = load_report()


def test_readings_of_the_slow_mode_are_counted_and_the_fast_ones_are_not() -> None:
    fast, slow = [1.2, 1.3, 1.3, 1.4, 1.5, 1.6], [4.7, 5.1]
    assert report.slow_share(fast + slow) == 2 / 8


def test_a_spread_without_a_second_mode_has_no_slow_reading() -> None:
    assert report.slow_share([17.0, 17.5, 18.2, 19.0, 21.9, 24.0]) == 0


def test_no_readings_give_no_share() -> None:
    assert math.isnan(report.slow_share([]))
