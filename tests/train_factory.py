"""A small synthetic benchmark with a train split, for the training and reward tests (built in well under 1 s)."""
from __future__ import annotations

from pathlib import Path

from wafersage.tasks.synth.build import SynthConfig, build_benchmark


def build_train_bench(root: str | Path, n_wafers: int = 12, seed: int = 3) -> Path:
    """Every single-pattern class and 'none' in turn; half the wafers in train, half in test; 64-px images."""
    config = SynthConfig.model_validate(dict(
        name="train-test-bench", seed=seed, image_size=64,
        source=dict(kind="generated", n=n_wafers, size=[32, 32], mixtures=False, balanced=True),
        splits=dict(train=0.5, val=0.0, test=0.5),
    ))
    return build_benchmark(config, Path(root), progress=False)
