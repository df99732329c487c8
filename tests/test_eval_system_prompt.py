"""A model config's ``system_prompt`` reaches every request, the cache key and run.json; ``hf:PATH`` of a folder
trained by wafersage takes the prompt it was trained with from ``wafersage_training.json``."""
from __future__ import annotations

import json
import shutil

import pytest
import yaml
from bench_factory import make_bench

from wafersage.harness.run.cache import config_fingerprint
from wafersage.harness.run.messages import SYSTEM_PROMPT
from wafersage.harness.run.folder import load_run
from wafersage.harness.run.runner import EvalUsageError, run_eval
from wafersage.models.base import GenerationParams
from wafersage.models.config import ModelConfig, ModelConfigError
from wafersage.models.registry import resolve
from wafersage.training.config import TRAIN_SYSTEM_PROMPT

TRAINED = "Think in <REASONING></REASONING>, answer in <SOLUTION></SOLUTION>."


@pytest.fixture(scope="module")
def bench_dir(tmp_path_factory):
    return make_bench(tmp_path_factory.mktemp("bench"))


def _system_turns(run_dir) -> set[str]:
    return {s.request.messages[0]["content"] for s in load_run(run_dir).samples}


def test_shorthand_takes_the_training_prompt(tmp_path):
    folder = tmp_path / "merged"
    folder.mkdir()
    assert resolve(f"hf:{folder}").system_prompt is None  # no manifest: the harness default
    manifest = folder / "wafersage_training.json"
    manifest.write_text(json.dumps({"stage": "gspo", "settings": {"system_prompt": TRAINED}}))
    assert resolve(f"hf:{folder}").system_prompt == TRAINED
    assert resolve(f"vllm:{folder}").system_prompt == TRAINED
    manifest.write_text(json.dumps({"system_prompt": "top", "settings": {"system_prompt": "x"}}))
    assert resolve(f"hf:{folder}").system_prompt == "top"
    manifest.write_text("{not json")
    with pytest.raises(ModelConfigError, match="wafersage_training.json.*re-export"):
        resolve(f"hf:{folder}")


def test_config_prompt_is_sent_and_changes_the_run_identity(bench_dir, tmp_path, chat_server):
    base = {"name": "vlm", "backend": "openai", "base_url": chat_server.url, "model": "m", "timeout": 5}
    plain, custom = tmp_path / "plain.yaml", tmp_path / "custom.yaml"
    plain.write_text(yaml.safe_dump(base))
    custom.write_text(yaml.safe_dump({**base, "system_prompt": TRAINED}))
    cache = tmp_path / "cache.sqlite"
    run_eval(bench_dir, str(plain), out_dir=tmp_path / "plain", cache_path=cache, progress=False)
    calls = chat_server.chat_requests
    info = run_eval(bench_dir, str(custom), out_dir=tmp_path / "custom", cache_path=cache, progress=False)
    assert chat_server.chat_requests == 2 * calls  # another prompt is another cache key: asked again
    assert _system_turns(tmp_path / "plain") == {SYSTEM_PROMPT} and _system_turns(tmp_path / "custom") == {TRAINED}
    assert {p["messages"][0]["content"] for p in list(chat_server.payloads)[-calls:]} == {TRAINED}
    assert info.model["system_prompt"] == TRAINED
    with pytest.raises(EvalUsageError, match="different model config"):  # resuming under another prompt: refused
        run_eval(bench_dir, str(plain), out_dir=tmp_path / "custom", cache_path=cache, progress=False)
    # a config without the field keys like one from before it existed (old caches and run folders stay valid)
    assert config_fingerprint(ModelConfig(**base)) == config_fingerprint({k: v for k, v in base.items()})


def test_eval_of_a_trained_folder_sends_the_training_prompt(tiny_qwen_dir, bench_dir, tmp_path):
    folder = tmp_path / "trained"
    shutil.copytree(tiny_qwen_dir, folder)
    (folder / "wafersage_training.json").write_text(json.dumps({"stage": "sft", "system_prompt": TRAIN_SYSTEM_PROMPT}))
    run_eval(bench_dir, f"hf:{folder}", limit=2, concurrency=1, out_dir=tmp_path / "run",
             cache_path=tmp_path / "c.sqlite", params=GenerationParams(max_tokens=4), progress=False)
    assert _system_turns(tmp_path / "run") == {TRAIN_SYSTEM_PROMPT}
