"""The helper process both backends' readers are tested against (see tests/prochelper.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prochelper import Helper, start_helper


@pytest.fixture
def helper() -> Iterator[Helper]:
    yield from start_helper()
