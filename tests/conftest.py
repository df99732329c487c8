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


@pytest.fixture(scope="session")
def tiny_qwen_dir(tmp_path_factory) -> Path:
    """The tiny offline Qwen3-VL (wafersage.models.tiny), built once per test session; a smoke-test model."""
    for module in ("torch", "transformers", "tokenizers"):
        pytest.importorskip(module, reason=f"the tiny Qwen3-VL needs {module} (pip install -e '.[local]')")
    from wafersage.models.tiny import build_tiny_qwen3_vl

    return build_tiny_qwen3_vl(tmp_path_factory.mktemp("tiny_qwen3_vl"), seed=0)


@pytest.fixture(scope="session")
def synth_stage_maps():
    """300 generated wafers (every pattern, normal wafers and mixtures) with their measured geometry."""
    from wafersage.tasks.generate import generate_maps
    from wafersage.tasks.geometry import measure

    maps = list(generate_maps(300, seed=7))
    return maps, [measure(wafer) for wafer in maps]
