"""Typed training settings: paper defaults, YAML loading, checked combinations, TRL configs."""
from __future__ import annotations

from pathlib import Path

import pytest

from wafersage.training.config import GSPOSettings, SFTSettings, TrainConfigError, load_settings

REPO = Path(__file__).resolve().parents[1]


def test_paper_defaults():
    sft, gspo = SFTSettings(), GSPOSettings()
    assert (sft.lora.r, sft.lora.alpha, sft.lora.dropout) == (16, 16, 0.0)
    assert (sft.learning_rate, sft.per_device_train_batch_size, sft.gradient_accumulation_steps,
            sft.max_length) == (2e-4, 2, 4, 2048)
    assert (gspo.learning_rate, gspo.num_generations, gspo.importance_sampling_level) == (5e-5, 32, "sequence")
    assert (gspo.loss_type, gspo.beta, gspo.epsilon, gspo.epsilon_high) == ("grpo", 0.0, 3e-4, 4e-4)
    assert gspo.curriculum.stages == [["easy"], ["medium"], ["hard"]]
    assert "<REASONING>" in sft.system_prompt and "<SOLUTION>" in sft.system_prompt


def test_shipped_yaml_files_load():
    sft = load_settings(REPO / "configs/train/sft.yaml", SFTSettings)
    gspo = load_settings(REPO / "configs/train/gspo.yaml", GSPOSettings)
    assert sft.lora.r == 16 and sft.warmup_steps == 0.03
    assert gspo.num_generations == 32 and gspo.per_device_train_batch_size * gspo.gradient_accumulation_steps == 64
    assert not gspo.use_vllm and gspo.vllm_mode == "colocate"


@pytest.mark.parametrize("fields, message", [
    (dict(num_generations=3), "not a multiple of num_generations"),
    (dict(epsilon=0.2, epsilon_high=0.28), "sequence-level ratios need a clip range"),
    (dict(importance_sampling_level="token"), "token-level ratios use a clip range near 0.2"),
    (dict(epsilon=4e-4, epsilon_high=3e-4), "epsilon_high"),
    (dict(use_vllm=True, vllm_mode="server"), "needs vllm_server_base_url"),
    (dict(curriculum={"stages": [["easy"], ["easy", "hard"]]}), "more than once"),
    (dict(curriculum={"stages": [[]]}), "non-empty stage"),
    (dict(reward={"format_bonus": 2}), "format_bonus"),
    (dict(learning_rat=1e-4), "learning_rat: Extra inputs are not permitted"),
])
def test_bad_combinations_name_the_file_and_field(tmp_path, fields, message):
    import yaml

    path = tmp_path / "gspo.yaml"
    path.write_text(yaml.safe_dump(fields))
    with pytest.raises(TrainConfigError, match=message) as info:
        load_settings(path, GSPOSettings)
    assert str(path) in str(info.value)


def test_token_level_grpo_is_a_switch():
    grpo = GSPOSettings(importance_sampling_level="token", epsilon=0.2, epsilon_high=0.28)
    assert grpo.importance_sampling_level == "token"


def test_unreadable_config_is_a_clear_error(tmp_path):
    with pytest.raises(TrainConfigError, match="cannot read the training config"):
        load_settings(tmp_path / "missing.yaml", SFTSettings)
    (tmp_path / "list.yaml").write_text("- 1\n")
    with pytest.raises(TrainConfigError, match="expected a mapping"):
        load_settings(tmp_path / "list.yaml", SFTSettings)


def test_paths_are_relative_to_the_config_file(tmp_path):
    (tmp_path / "gspo.yaml").write_text("reward:\n  calibration: cal/calibration.json\ndeepspeed: ds.json\n")
    settings = load_settings(tmp_path / "gspo.yaml", GSPOSettings)
    assert settings.reward.calibration == tmp_path.resolve() / "cal/calibration.json"
    assert settings.deepspeed == tmp_path.resolve() / "ds.json"


def test_multi_gpu_files_parse():
    import json

    import yaml

    assert yaml.safe_load((REPO / "configs/train/accelerate_multi_gpu.yaml").read_text())["distributed_type"] == \
        "MULTI_GPU"
    for stage in (2, 3):
        config = json.loads((REPO / f"configs/train/deepspeed_zero{stage}.json").read_text())
        assert config["zero_optimization"]["stage"] == stage


def test_trl_configs_carry_the_settings(tmp_path):
    pytest.importorskip("trl", reason="TRL configs need the train extra")
    gspo = GSPOSettings(per_device_train_batch_size=2, gradient_accumulation_steps=1, num_generations=2,
                        use_vllm=True, vllm_mode="server", vllm_server_base_url="http://127.0.0.1:8000")
    trl = gspo.to_trl(tmp_path, use_cpu=True, bf16=False, max_steps=3)
    assert (trl.importance_sampling_level, trl.loss_type, trl.beta, trl.epsilon, trl.epsilon_high) == (
        "sequence", "grpo", 0.0, 3e-4, 4e-4)
    assert trl.shuffle_dataset is False and trl.max_steps == 3 and trl.num_generations == 2
    assert trl.use_vllm and trl.vllm_mode == "server" and trl.vllm_server_base_url == "http://127.0.0.1:8000"
    sft = SFTSettings().to_trl(tmp_path, use_cpu=True, bf16=False)
    assert (sft.learning_rate, sft.per_device_train_batch_size, sft.gradient_accumulation_steps,
            sft.max_length, sft.max_steps) == (2e-4, 2, 4, 2048, -1)
