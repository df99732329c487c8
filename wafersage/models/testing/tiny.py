"""A tiny Qwen3-VL built offline, for smoke tests only (its answers are noise).

It has the real architecture, processor and chat template of Qwen3-VL at toy sizes (~270k parameters, ~1 MB),
so code that loads a checkpoint folder with ``AutoModelForImageTextToText`` / ``AutoProcessor`` (the hf backend,
TRL training, lm-eval's ``hf-multimodal``) can be exercised without a model hub. The recipe is the one in
``shared/notes/stack.md``: a byte-level BPE tokenizer trained on wafer vocabulary, wrapped as ``Qwen2Tokenizer``
with Qwen's special tokens (the same for every build), and random-initialised weights seeded by ``seed`` (same
seed -> same weights).
"""
from __future__ import annotations

import json
import random
from importlib import resources
from pathlib import Path

SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                  "<|image_pad|>", "<|video_pad|>")
VOCAB_SIZE = 2000
#: wider than Qwen's 0.02 so that greedy decoding yields varied tokens that depend on the input, not one
#: repeated newline (tests compare texts)
INIT_RANGE = 0.1

#: used only where trl is not installed; same prompt format as TRL's qwen3_vl.jinja for text and images
MINIMAL_CHAT_TEMPLATE = (
    "{%- for message in messages %}{{- '<|im_start|>' + message.role + '\\n' }}"
    "{%- if message.content is string %}{{- message.content }}{%- else %}{%- for part in message.content %}"
    "{%- if part.type == 'image' or 'image' in part %}<|vision_start|><|image_pad|><|vision_end|>"
    "{%- elif 'text' in part %}{{- part.text }}{%- endif %}{%- endfor %}{%- endif %}{{- '<|im_end|>\\n' }}"
    "{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

_WORDS = (
    "wafer map die dies pass fail failed defect pattern Center Donut Edge-Loc Edge-Ring Loc Near-full Random "
    "Scratch none normal zone centre center middle edge ring cluster clustered radial linear uniform sparse dense "
    "o'clock quadrant sector north south east west upper lower left right the a an of at in on near with and or "
    "is are was shows no yes Yes No likely cause equipment Lithography Etching Deposition CMP Wet Processing "
    "Handling process step chuck showerhead spin coat plasma particles contamination robot probe card scratch "
    "gradient temperature gas flow recipe"
).split()


def _corpus(n_lines: int = 3000) -> list[str]:
    """Fixed wafer-flavoured sentences (with digits and punctuation) to train the tokenizer on."""
    rng = random.Random(0)
    lines = []
    for _ in range(n_lines):
        words = [rng.choice(_WORDS) for _ in range(rng.randint(4, 14))]
        lines.append(f"{' '.join(words)} at {rng.randint(1, 12)} o'clock, ({rng.random():.2f}, {rng.random():.2f}).")
    return lines


def _chat_template() -> str:
    try:
        return resources.files("trl").joinpath("chat_templates/qwen3_vl.jinja").read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError):
        return MINIMAL_CHAT_TEMPLATE


def _tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import Qwen2Tokenizer

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE, special_tokens=["<|endoftext|>"], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator(_corpus(), trainer=trainer)
    model = json.loads(bpe.to_str())["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]
    tokenizer = Qwen2Tokenizer(vocab=model["vocab"], merges=merges, unk_token=None,
                               eos_token="<|im_end|>", pad_token="<|endoftext|>")
    tokenizer.add_special_tokens({"additional_special_tokens": list(SPECIAL_TOKENS[1:])})
    return tokenizer


def build_tiny_qwen3_vl(out_dir: str | Path, seed: int = 0) -> Path:
    """Build the tiny Qwen3-VL into ``out_dir`` (created) and return it; reload it with the Auto classes."""
    import torch
    from transformers import (GenerationConfig, Qwen2VLImageProcessor, Qwen3VLConfig,
                              Qwen3VLForConditionalGeneration, Qwen3VLProcessor, Qwen3VLVideoProcessor)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = _tokenizer()
    image_processor = Qwen2VLImageProcessor(patch_size=16, merge_size=2, temporal_patch_size=2,
                                            image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5])
    processor = Qwen3VLProcessor(image_processor=image_processor,
                                 video_processor=Qwen3VLVideoProcessor(patch_size=16),
                                 tokenizer=tokenizer, chat_template=_chat_template())
    ids = {name: tokenizer.convert_tokens_to_ids(token) for name, token in (
        ("image_token_id", "<|image_pad|>"), ("video_token_id", "<|video_pad|>"),
        ("vision_start_token_id", "<|vision_start|>"), ("vision_end_token_id", "<|vision_end|>"))}
    text_config = dict(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=4096,
        pad_token_id=tokenizer.pad_token_id, initializer_range=INIT_RANGE,
        rope_parameters={"rope_type": "default", "rope_theta": 5e6, "mrope_section": [4, 2, 2],
                         "mrope_interleaved": True},
    )
    vision_config = dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, patch_size=16,
                         spatial_merge_size=2, temporal_patch_size=2, out_hidden_size=64,
                         num_position_embeddings=256, deepstack_visual_indexes=[0, 1],
                         initializer_range=INIT_RANGE)
    config = Qwen3VLConfig(text_config=text_config, vision_config=vision_config, tie_word_embeddings=True, **ids)
    torch.manual_seed(seed)
    model = Qwen3VLForConditionalGeneration(config).eval()
    model.generation_config = GenerationConfig(
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, do_sample=False)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out
