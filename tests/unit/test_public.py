"""The public face: ``pytest_goleak.__all__`` is what hooks hand out and what soaks and benchmarks import."""

from __future__ import annotations

import subprocess
import sys

import pytest

import pytest_goleak


@pytest.mark.parametrize("name", sorted(set(pytest_goleak.__all__) - {"__version__"}))
def test_every_public_name_resolves_to_where_it_lives(name: str) -> None:
    value = getattr(pytest_goleak, name)
    assert value is getattr(sys.modules[pytest_goleak._PUBLIC[name]], name)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        _ = pytest_goleak.nothing  # type: ignore[attr-defined]


def test_importing_the_package_loads_nothing_else() -> None:
    # The watchdog process imports it (python -m pytest_goleak.service.lifeline) and must start fast.
    code = "import sys, pytest_goleak; print(sorted(m for m in sys.modules if m.startswith(('pytest', 'httpx'))))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['pytest_goleak']"
