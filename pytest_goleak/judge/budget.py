"""Leak budgets: how much growth a test may leave behind, and the knobs of its check.

A budget is resolved per test, closest source first: the ``goleak`` marker,
then a ``--goleak-*`` flag, then the ini option of the same name, then the
defaults (each measure's in :mod:`pytest_goleak.judge.measures`, each knob's in
:data:`KNOBS`). Every value is validated with the phrase naming its source,
so that a typo fails the run early with one line naming the cause and the fix.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from functools import cached_property
from types import MappingProxyType
from typing import Any

from pytest_goleak.errors import ConfigError
from pytest_goleak.judge.measures import BY_NAME, MEASURES, Measure
from pytest_goleak.read.snapshot import CHEAP_PARTS, Part
from pytest_goleak.units import is_unchecked, parse_bool, parse_count, parse_patterns, parse_seconds


def _default_limits() -> Mapping[str, int | None]:
    return MappingProxyType({measure.name: measure.default for measure in MEASURES})


@dataclass(frozen=True)
class Knob:
    """A setting of the check that is not a measure's limit."""

    name: str
    help: str
    parse: Callable[[object, str], Any]


KNOBS = (
    Knob("settle", "seconds to wait for growth to wind down before failing", parse_seconds),
    Knob(
        "ignore",
        "function-name patterns of goroutines to ignore (start function, any frame, or creator)",
        parse_patterns,
    ),
    Knob("ignore_fds", "fd patterns never counted, e.g. '*.log' or 'tcp * -> 127.0.0.1:5432 *'", parse_patterns),
    Knob("check", "false: run the test without a leak check", parse_bool),
    Knob("repeat", "steady-state mode: N measured re-runs, a leak only if every run grows", parse_count),
    Knob("warmup", "unmeasured runs before the measured ones, in steady-state mode", parse_count),
)


@dataclass(frozen=True)
class Known:
    """Growth a baseline file records as already known for one test: allowed on top of the budget."""

    growth: Mapping[str, int] = field(default_factory=dict)  # by measure name, goroutines aside
    goroutines: Mapping[str, int] = field(default_factory=dict)  # by goroutine identity

    def describe(self) -> str:
        """``2 x main.worker, heap +3.0 MiB``."""
        parts = [f"{count} x {name}" for name, count in sorted(self.goroutines.items())]
        parts += [BY_NAME[name].phrase(grew) for name, grew in sorted(self.growth.items()) if name in BY_NAME]
        return ", ".join(parts) or "nothing"


@dataclass(frozen=True)
class Budget:
    """The growth one test may leave behind, by measure name (None: not checked), and its check's knobs."""

    limits: Mapping[str, int | None] = field(default_factory=_default_limits)
    settle: float = 2.0
    ignore: tuple[str, ...] = ()
    ignore_fds: tuple[str, ...] = ()  # fd targets never counted, e.g. "tcp * -> 127.0.0.1:5432 *"
    check: bool = True
    repeat: int = 0  # steady-state mode: measured runs after the warm-up (0: off)
    warmup: int = 1  # unmeasured runs first, in steady-state mode
    known: Known | None = None  # this test's entry in the baseline file, if any

    def limit(self, measure: Measure) -> int | None:
        return self.limits.get(measure.name)

    @cached_property  # asked several times per test; a budget never changes
    def checked(self) -> tuple[Measure, ...]:
        return tuple(measure for measure in MEASURES if self.limit(measure) is not None)

    @cached_property
    def parts(self) -> frozenset[Part]:
        """What a reading must hold for this budget: the cheap parts, and the dear ones it checks."""
        return CHEAP_PARTS.union(*(measure.parts for measure in self.checked))

    @property
    def steady(self) -> bool:
        return self.repeat > 0

    @property
    def describes_sockets(self) -> bool:
        """Whether a reading describes socket fds: fd patterns (``ignore_fds``) match on the description."""
        return bool(self.ignore_fds)

    def updated(self, values: Mapping[str, object], where: Callable[[str], str]) -> Budget:
        """A copy with ``values`` applied; ``where(name)`` names each value's source in errors."""
        limits = dict(self.limits)
        knobs: dict[str, Any] = {}
        for name, value in values.items():
            if name in BY_NAME:
                limits[name] = None if is_unchecked(value) else BY_NAME[name].parse(value, where(name))
            elif name in _KNOBS:
                if value is None:
                    raise ConfigError(f"{where(name)}: {name} cannot be None; only a measure can be left unchecked")
                knobs[name] = _KNOBS[name].parse(value, where(name))
            else:
                known = ", ".join(NAMES)
                raise ConfigError(f"{where(name)}: unknown argument {name!r}; use one of {known}")
        return replace(self, limits=MappingProxyType(limits), **knobs)


_KNOBS = {knob.name: knob for knob in KNOBS}
NAMES = tuple(measure.name for measure in MEASURES) + tuple(_KNOBS)
assert {f.name for f in fields(Budget)} - {"limits", "known"} == set(_KNOBS), "every knob is a Budget field"
KNOB_DEFAULTS: Mapping[str, object] = {f.name: f.default for f in fields(Budget) if f.name in _KNOBS}
