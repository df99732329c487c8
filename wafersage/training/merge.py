"""LoRA merge and export: a plain transformers folder (merged full weights + processor) that the hf backend and
vLLM load, with ``wafersage_training.json`` saying how it was made (stage, settings, the ``system_prompt`` it was
trained with — which ``hf:PATH`` / ``vllm:PATH`` then send when the model is evaluated — and the item ids).

``export_merged(model, processor, out)`` merges a trained peft model in memory; ``export_adapter(adapter, out)``
merges a saved adapter folder onto the base folder its ``adapter_config.json`` names.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from ..models.config import TRAINING_MANIFEST


class ExportError(ValueError):
    """An adapter or model folder cannot be exported; the message names the folder and the fix."""


def export_merged(model: Any, processor: Any, out_dir: str | Path, manifest: dict[str, Any] | None = None) -> Path:
    """Merge LoRA weights into the base (when ``model`` is a peft model) and save weights, processor and manifest.

    The folder is written next to ``out_dir`` first and moved into place at the end, so a crash never leaves a
    half-written export where a loader would find it. A peft model is merged in place (it stays usable).
    """
    from peft import PeftModel

    out = Path(out_dir)
    staging = out.with_name(out.name + ".partial")
    if staging.exists():
        shutil.rmtree(staging)
    merged = model.merge_and_unload() if isinstance(model, PeftModel) else model
    merged.save_pretrained(staging)
    processor.save_pretrained(staging)
    (staging / TRAINING_MANIFEST).write_text(json.dumps(manifest or {}, indent=2, default=str) + "\n",
                                             encoding="utf-8")
    if out.exists():
        shutil.rmtree(out)
    staging.rename(out)
    return out


def export_adapter(adapter_dir: str | Path, out_dir: str | Path, manifest: dict[str, Any] | None = None) -> Path:
    """Merge a saved LoRA adapter folder onto its base model folder and export the result to ``out_dir``."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForImageTextToText, AutoProcessor

    adapter = Path(adapter_dir)
    config_file = adapter / "adapter_config.json"
    if not config_file.is_file():
        raise ExportError(f"{adapter}: no adapter_config.json; pass the 'adapter' folder of a training run")
    base = Path(json.loads(config_file.read_text(encoding="utf-8")).get("base_model_name_or_path") or "")
    if not (base / "config.json").is_file():
        raise ExportError(f"{config_file}: base_model_name_or_path {str(base)!r} is not a local model folder; "
                          "set it to the base checkpoint folder the adapter was trained on")
    processor_dir = adapter if (adapter / "preprocessor_config.json").is_file() or \
        (adapter / "processor_config.json").is_file() else base
    model = AutoModelForImageTextToText.from_pretrained(base, dtype=torch.float32)
    model = PeftModel.from_pretrained(model, adapter)
    info = read_training_manifest(adapter) or {}
    info.update(manifest or {})
    return export_merged(model, AutoProcessor.from_pretrained(processor_dir), out_dir, info)


def read_training_manifest(model_dir: str | Path) -> dict[str, Any] | None:
    """The ``wafersage_training.json`` of a model or adapter folder, or None when it has none."""
    path = Path(model_dir) / TRAINING_MANIFEST
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ExportError(f"{path}: not valid JSON ({exc}); delete it or re-export the model") from exc
