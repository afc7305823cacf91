"""settings.resolve on a stub config: defaults, typed ini values, flags over the ini, errors naming their source."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from pytest_goleak import settings
from pytest_goleak.errors import ConfigError
from pytest_goleak.judge.budget import KNOBS
from pytest_goleak.judge.measures import HEAP, MEASURES
from pytest_goleak.judge.startup import DEFAULT_QUIET
from pytest_goleak.service.config import ServiceConfig

_BY_INI = {option.ini: option for option in settings.OPTIONS}


class StubConfig:
    """What ``resolve`` reads of a ``pytest.Config``: ini values, flags, and where the run and its ini file are.

    An ini option not given reads as pytest reads an unset one registered by ``settings.register``:
    empty (a string or a list), or its default for a bool. A flag not given reads as None.
    """

    def __init__(self, root: Path, ini: dict[str, object] | None = None, flags: dict[str, object] | None = None):
        self.ini = ini or {}
        self.flags = flags or {}
        self.rootpath = root
        self.inipath = root / "pytest.ini"
        self.invocation_params = SimpleNamespace(dir=root / "cwd")

    def getini(self, name: str) -> object:
        if name in self.ini:
            return self.ini[name]
        if name in ("goleak", "goleak_summary"):
            return True
        option = _BY_INI[name]  # a KeyError here: resolve reads an ini option register() does not add
        if option.kind == "bool":
            return bool(option.default)
        return [] if option.kind == "linelist" else ""

    def getoption(self, name: str, default: object = None) -> object:
        if name in self.flags:
            return self.flags[name]
        if name in ("no_goleak", "no_goleak_summary"):
            return False
        assert name in {option.dest for option in settings.OPTIONS}, f"resolve reads an unknown flag {name!r}"
        return default


def resolve(tmp_path: Path, **given: dict[str, object]) -> settings.Settings:
    return settings.resolve(StubConfig(tmp_path, **given))  # type: ignore[arg-type]


def config_error(tmp_path: Path, **given: dict[str, object]) -> str:
    with pytest.raises(ConfigError) as error:
        resolve(tmp_path, **given)
    message = str(error.value)
    assert "\n" not in message, "a ConfigError is one line"
    return message


def test_defaults(tmp_path: Path) -> None:
    resolved = resolve(tmp_path)
    assert resolved.enabled and resolved.summary
    assert {m.name: resolved.budget.limit(m) for m in MEASURES} == {m.name: m.default for m in MEASURES}
    assert resolved.budget.settle == 2.0 and resolved.budget.ignore == () and resolved.budget.ignore_fds == ()
    assert resolved.service is None  # neither goleak_binary nor goleak_package
    assert resolved.base_dir == tmp_path
    assert resolved.startup_quiet == DEFAULT_QUIET
    assert resolved.memprofilerate is None
    assert resolved.fresh_readings is False and resolved.update_baseline is False
    assert (resolved.attach_url, resolved.attach_pid) == ("", None)
    assert (resolved.artifacts, resolved.timeline, resolved.json, resolved.baseline) == (None, None, None, None)
    assert resolved.start_timeout == ServiceConfig.start_timeout
    assert resolved.request_timeout == ServiceConfig.request_timeout
    assert resolved.session_budget.limit(HEAP) is None


def test_ini_values_are_typed(tmp_path: Path) -> None:
    resolved = resolve(
        tmp_path,
        ini={
            "goleak_heap": "4MiB",
            "goleak_goroutines": "3",
            "goleak_fds": "none",
            "goleak_settle": "0.5",
            "goleak_ignore": ["main.(*Pool).worker", "  ", "net/http.*"],
            "goleak_fresh_readings": True,
            "goleak_memprofilerate": "64KiB",
            "goleak_session_heap": "16 MiB",
            "goleak_startup_quiet": "0",
        },
    )
    limits = {m.name: resolved.budget.limit(m) for m in MEASURES}
    assert limits["heap"] == 4 << 20
    assert limits["goroutines"] == 3
    assert limits["fds"] is None  # "none" leaves the measure unchecked
    assert resolved.budget.settle == 0.5
    assert resolved.budget.ignore == ("main.(*Pool).worker", "net/http.*")
    assert resolved.fresh_readings is True
    assert resolved.memprofilerate == 64 << 10
    assert resolved.session_budget.limit(HEAP) == 16 << 20
    assert resolved.startup_quiet == 0.0


def test_service_settings_from_the_ini(tmp_path: Path) -> None:
    resolved = resolve(
        tmp_path,
        ini={
            "goleak_binary": "bin/svc",
            "goleak_start_timeout": "7",
            "goleak_env": ["A=1", "", "B={tmp}"],
            "goleak_memprofilerate": "go",
        },
    )
    service = resolved.service
    assert service is not None
    assert service.binary == Path("bin/svc")
    assert service.base_dir == tmp_path  # the ini file's directory
    assert service.start_timeout == 7.0 == resolved.start_timeout
    assert service.env == ("A=1", "B={tmp}")
    assert service.memprofilerate is None  # "go": Go's own rate


def test_a_flag_overrides_the_ini(tmp_path: Path) -> None:
    resolved = resolve(
        tmp_path,
        ini={"goleak_heap": "4MiB", "goleak_settle": "not a number"},
        flags={"goleak_heap": "2MiB", "goleak_settle": "1.5", "goleak_fresh_readings": True},
    )
    assert resolved.budget.limit(HEAP) == 2 << 20
    # The ini's bad value is never read once the flag is given.
    assert resolved.budget.settle == 1.5
    assert resolved.fresh_readings is True


def test_no_goleak_flag_disables_the_checks(tmp_path: Path) -> None:
    assert resolve(tmp_path, flags={"no_goleak": True}).enabled is False
    assert resolve(tmp_path, ini={"goleak": False}).enabled is False
    assert resolve(tmp_path, flags={"no_goleak_summary": True}).summary is False


def test_relative_output_paths(tmp_path: Path) -> None:
    """From the ini file, relative to its directory; from a flag, relative to where pytest was run."""
    from_ini = resolve(tmp_path, ini={"goleak_json": "out/readings.json", "goleak_baseline": "known.json"})
    assert from_ini.json == tmp_path / "out" / "readings.json"
    assert from_ini.baseline == tmp_path / "known.json"
    from_flag = resolve(tmp_path, flags={"goleak_json": "readings.json"})
    assert from_flag.json == tmp_path / "cwd" / "readings.json"


@pytest.mark.parametrize(
    ("ini", "value", "complaint"),
    [
        ("goleak_heap", "12 XB", "is not a size"),
        ("goleak_goroutines", "many", "is not a count"),
        ("goleak_settle", "-1", "0 or more"),
        ("goleak_start_timeout", "0", "more than 0"),
        ("goleak_repeat", "twice", "is not a count"),
        ("goleak_memprofilerate", "fast", "is not a size"),
        ("goleak_session_fds", "-2", "-2 is negative"),
    ],
)
def test_bad_ini_value_names_the_option_and_the_ini_file(tmp_path: Path, ini: str, value: str, complaint: str) -> None:
    message = config_error(tmp_path, ini={ini: value})
    assert message.startswith(f"{ini} in pytest.ini: ")
    assert complaint in message and value in message


def test_bad_flag_names_the_flag(tmp_path: Path) -> None:
    message = config_error(tmp_path, ini={"goleak_heap": "1MiB"}, flags={"goleak_heap": "lots"})
    assert message.startswith("--goleak-heap: 'lots' is not a size")
    assert "pytest.ini" not in message


def test_bad_attach_pid_names_its_source(tmp_path: Path) -> None:
    message = config_error(
        tmp_path, ini={"goleak_attach_url": "http://127.0.0.1:6060/debug/pprof/"}, flags={"goleak_attach_pid": "abc"}
    )
    assert message.startswith("--goleak-attach-pid: 'abc' is not a process id")


@pytest.mark.parametrize(
    ("given", "complaint"),
    [
        ({"ini": {"goleak_attach_pid": "123"}}, "goleak_attach_pid is set without goleak_attach_url"),
        ({"flags": {"goleak_update_baseline": True}}, "--goleak-update-baseline needs a file"),
        (
            {"ini": {"goleak_attach_url": "http://127.0.0.1:6060/debug/pprof/", "goleak_binary": "svc"}},
            "goleak_attach_url is set along with goleak_binary",
        ),
    ],
)
def test_settings_that_contradict_each_other(tmp_path: Path, given: dict, complaint: str) -> None:
    assert config_error(tmp_path, **given).startswith(complaint)


def test_where_without_an_ini_file(tmp_path: Path) -> None:
    config = StubConfig(tmp_path, ini={"goleak_heap": "big"})
    config.inipath = None  # type: ignore[assignment]
    with pytest.raises(ConfigError, match=r"^goleak_heap in the ini file: 'big' is not a size"):
        settings.resolve(config)  # type: ignore[arg-type]


def test_marker_help_names_every_measure_and_knob() -> None:
    text = settings.marker_help()
    assert text.startswith("goleak(")
    for measure in MEASURES:
        assert f"{measure.name}=" in text, measure.name
    assert "heap='1MiB'" in text  # a size shown as it is written
    for knob in KNOBS:
        assert f"{knob.name}=" in text, knob.name


def test_ports_are_found_by_placeholder_or_by_name_alone(tmp_path: Path) -> None:
    from pytest_goleak.service.config import Placeholders

    placeholders = Placeholders(tmp_path, str(tmp_path))
    debug = int(placeholders["port_debug"])
    ports = placeholders.ports
    assert ports["port_debug"] == ports["debug"] == debug
    assert ports["port"] == int(placeholders["port"])
    with pytest.raises(KeyError, match=r"no \{port_admin\} placeholder in this service's settings; it has 'port', "):
        ports["admin"]
