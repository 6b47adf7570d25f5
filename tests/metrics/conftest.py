"""Fixtures of the metrics suite."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def settings_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    """A test's own settings: `@pytest.mark.parametrize("settings_overrides", [{...}],
    indirect=True)`."""
    return dict(getattr(request, "param", {}))
