"""What the plugin's behaviour tests share: a nested suite of the example service, written on demand."""

from __future__ import annotations

import textwrap
from collections.abc import Callable

import pytest


@pytest.fixture
def suite(pytester: pytest.Pytester, write_ini: Callable[..., None]) -> Callable[..., pytest.Pytester]:
    """Write a test suite configured for the example service (and ``ini`` lines); returns a writer."""

    def write(tests: str, ini: str = "") -> pytest.Pytester:
        write_ini(ini)
        pytester.makepyfile(test_suite=textwrap.dedent(tests))
        return pytester

    return write
