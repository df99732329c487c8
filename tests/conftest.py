"""Shared fixtures. Tests that read ../shared skip with a reason where it is absent (a user's clone)."""
from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = SHARED / "data"
    if not path.is_dir():
        pytest.skip(f"{path} is absent (a user's clone has no ../shared); real-map tests need it")
    return path
