"""Fixtures of this specification."""

from __future__ import annotations

import pytest

from tests.incidents.helpers import Clock, install_clock


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The services' clock, frozen at 2030-01-01T12:00Z until advanced."""
    return install_clock(monkeypatch)
