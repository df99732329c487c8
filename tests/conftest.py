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
    """The tiny offline Qwen3-VL (wafersage.models.testing.tiny), built once per test session; a smoke-test model."""
    for module in ("torch", "transformers", "tokenizers"):
        pytest.importorskip(module, reason=f"the tiny Qwen3-VL needs {module} (pip install -e '.[local]')")
    from wafersage.models.testing.tiny import build_tiny_qwen3_vl

    return build_tiny_qwen3_vl(tmp_path_factory.mktemp("tiny_qwen3_vl"), seed=0)


@pytest.fixture(scope="session")
def synth_stage_maps():
    """300 generated wafers (every pattern, normal wafers and mixtures) with their measured geometry."""
    from wafersage.tasks.generate.generator import generate_maps
    from wafersage.tasks.geometry.measure import measure

    maps = list(generate_maps(300, seed=7))
    return maps, [measure(wafer) for wafer in maps]


@pytest.fixture
def chat_server():
    """A real OpenAI-compatible server on 127.0.0.1 (wafersage.models.testing.server) in a thread, fresh per test.

    No latency or faults; script faults with ``chat_server.script([...])`` or start your own server for others.
    """
    from wafersage.models.testing.server import ChatCompletionsServer

    with ChatCompletionsServer(retry_after_s=0.2, hang_s=5) as server:
        yield server


@pytest.fixture(scope="session")
def scorer_bench(tmp_path_factory) -> Path:
    """The demo benchmark (configs/synth/demo.yaml, 56 wafers, half train and half test), built once per session."""
    from wafersage.tasks.synth.build import SynthConfig, build_benchmark

    config = SynthConfig.from_yaml(REPO / "configs" / "synth" / "demo.yaml")
    return build_benchmark(config, tmp_path_factory.mktemp("scorer_bench") / "bench", progress=False)


@pytest.fixture(scope="session")
def shared_holdout() -> Path:
    """../shared/holdout: real held-out maps. Only the real-map validation command and its test may read them
    (never tune on them); skips with a reason where the folder is absent."""
    path = SHARED / "holdout"
    if not path.is_dir():
        pytest.skip(f"{path} is absent (a user's clone has no ../shared/holdout); the holdout tests need it")
    return path
