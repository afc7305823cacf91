"""pytest-goleak: per-test leak checks for Go services, from the outside."""

from __future__ import annotations

__version__ = "0.1.0"
