"""SFT -> curriculum GSPO -> export -> 'wafersage eval', end to end on the tiny Qwen3-VL (CPU, a few steps)."""
from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from wafersage.cli import main
from wafersage.training.config import TRAIN_SYSTEM_PROMPT

from train_factory import build_train_bench

pytestmark = [pytest.mark.slow, pytest.mark.torch]
for _module in ("torch", "transformers", "trl", "peft", "datasets"):
    pytest.importorskip(_module, reason=f"training needs {_module} (pip install -e '.[train]')")

SMALL = dict(per_device_train_batch_size=2, gradient_accumulation_steps=1, logging_steps=1, save_steps=1)


def _weights(folder) -> dict:
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


def _changed(before: dict, after: dict) -> list[str]:
    import torch

    assert before.keys() == after.keys()
    return [k for k in before if not torch.equal(before[k], after[k])]


def _invoke(*args: str):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def _domain_bias(model_dir) -> list:
    """sequence_bias toward yes/no and fact words (zones, density, shapes): the untrained tiny model then states
    facts the scorer reads (right or wrong), so groups get reward spread; without it every completion is noise
    scored 0 (and a bias toward type names makes every completion name five types: stuffing, also 0)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    words = ["Yes", "No", " yes", " no", " center", " edge", " middle", " dense", " sparse", " ring", " blob", " line"]
    ids = [tokenizer.encode(w, add_special_tokens=False) for w in words]
    return [[i, 5.0] for i in ids if len(i) == 1]


@pytest.fixture(scope="module")
def trained(tiny_qwen_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    bench = build_train_bench(root / "bench")
    (root / "sft.yaml").write_text(yaml.safe_dump({**SMALL, "max_length": 1024}))
    (root / "gspo.yaml").write_text(yaml.safe_dump({
        **SMALL, "per_device_train_batch_size": 4, "steps_per_generation": 2, "num_generations": 4,
        "max_completion_length": 12, "curriculum": {"block_size": 2},
        "generation_kwargs": {"sequence_bias": _domain_bias(tiny_qwen_dir)},
    }))
    sft = _invoke("train", "sft", "--bench", bench, "--model", tiny_qwen_dir, "--out", root / "sft",
                  "--config", root / "sft.yaml", "--max-steps", 2, "--limit", 8)
    gspo = _invoke("train", "gspo", "--bench", bench, "--model", root / "sft" / "merged", "--out", root / "gspo",
                   "--config", root / "gspo.yaml", "--max-steps", 2, "--limit", 8)
    return dict(root=root, bench=bench, base=tiny_qwen_dir, sft_output=sft.output, gspo_output=gspo.output)


def test_sft_trains_logs_and_exports(trained):
    sft = trained["root"] / "sft"
    assert _changed(_weights(trained["base"]), _weights(sft / "merged"))  # the merged LoRA moved weights
    metrics = pd.read_csv(sft / "metrics.csv")
    assert list(metrics["step"]) == [1, 2] and metrics["loss"].notna().all()
    assert (sft / "metrics.png").stat().st_size > 0 and (sft / "checkpoints" / "checkpoint-2").is_dir()
    manifest = json.loads((sft / "merged" / "wafersage_training.json").read_text())
    assert manifest["stage"] == "sft" and len(manifest["trained_item_ids"]) == 8
    assert "merged model" in trained["sft_output"]


def test_gspo_learns_from_rewards_with_the_curriculum(trained):
    root = trained["root"]
    gspo = root / "gspo"
    assert _changed(_weights(root / "sft" / "merged"), _weights(gspo / "merged"))
    metrics = pd.read_csv(gspo / "metrics.csv")
    logged = metrics.dropna(subset=["reward"])
    assert len(logged) >= 1
    for column in ("reward_std", "frac_reward_zero_std", "reward_content", "well_formed", "clip_ratio/region_mean"):
        assert logged[column].notna().all(), column
    assert logged["reward_std"].max() > 0 and logged["frac_reward_zero_std"].min() < 1  # there was signal
    assert (gspo / "metrics.png").stat().st_size > 0
    manifest = json.loads((gspo / "merged" / "wafersage_training.json").read_text())
    sft_seen = json.loads((root / "sft" / "merged" / "wafersage_training.json").read_text())["seen_item_ids"]
    trained_ids = manifest["trained_item_ids"]
    assert trained_ids[:2] == [i for i in trained_ids if i in sft_seen][:2]  # the curriculum opens with review
    assert set(sft_seen) <= set(manifest["seen_item_ids"])
    settings = yaml.safe_load((gspo / "config.yaml").read_text())
    assert settings["importance_sampling_level"] == "sequence" and settings["num_generations"] == 4


def test_export_and_eval_the_trained_model(trained, tmp_path):
    root = trained["root"]
    _invoke("train", "export", "--adapter", root / "gspo" / "adapter", "--out", tmp_path / "exported")
    assert not _changed(_weights(root / "gspo" / "merged"), _weights(tmp_path / "exported"))
    out = tmp_path / "eval"
    _invoke("eval", "--bench", trained["bench"], "--model", f"hf:{root / 'gspo' / 'merged'}", "--split", "test",
            "--limit", 3, "--out", out, "--no-progress", "--concurrency", 1)
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 3
    # evaluated in the format it was trained on: the training system prompt, read from wafersage_training.json
    assert {s["request"]["messages"][0]["content"] for s in samples} == {TRAIN_SYSTEM_PROMPT}


def test_bad_inputs_are_clear_errors(trained, tmp_path):
    runner = CliRunner()
    adapter = trained["root"] / "gspo" / "adapter"
    result = runner.invoke(main, ["train", "gspo", "--bench", str(trained["bench"]), "--model", str(adapter),
                                  "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "LoRA adapter folder" in result.output
    (tmp_path / "bad.yaml").write_text("num_generations: 3\n")
    result = runner.invoke(main, ["train", "gspo", "--bench", str(trained["bench"]), "--model",
                                  str(trained["base"]), "--out", str(tmp_path / "y"), "--config",
                                  str(tmp_path / "bad.yaml")])
    assert result.exit_code == 2 and "bad.yaml" in result.output and "num_generations" in result.output
