"""Records of a run folder: ``samples.jsonl`` (one :class:`Sample` per line) and ``run.json`` (:class:`RunInfo`)."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from ...models.base import ModelResponse


class SentRequest(BaseModel):
    """What was sent, minus image bytes: the messages, the image's sent size/encoding and the parameters."""

    messages: list[dict[str, str]]
    image: str | None = None  # path relative to the benchmark folder
    image_size: tuple[int, int] | None = None  # width, height actually sent
    image_format: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)


class Sample(BaseModel):
    item_id: str
    wafer_id: str
    repeat: int = 0
    request: SentRequest
    response: ModelResponse
    cached: bool = False

    @property
    def ok(self) -> bool:
        return self.response.error is None


class ShardInfo(BaseModel):
    """The part of a selection a sharded run answers (``wafersage eval --shard K/N``; see :mod:`.shards`)."""

    index: int = Field(ge=1, description="K of --shard K/N (1-based)")
    count: int = Field(ge=1, description="N of --shard K/N")
    selection_items: int = Field(ge=0, description="items of the whole selection (split, --limit) the shards share")
    selection_sha256: str = Field(description="sha256 of the whole selection's item ids, one per line, in order")

    @property
    def spec(self) -> str:
        return f"{self.index}/{self.count}"


class ImportInfo(BaseModel):
    """Where an imported run's answers came from (``wafersage import-answers``)."""

    answers_file: str = Field(description="the answers file as given")
    answers_sha256: str
    n_answers: int = Field(description="answer lines read")
    n_missing: int = Field(description="items of the selection the file did not answer (recorded as missing)")
    latency_reported: bool = Field(description="every answer gave latency_s (else the run's latency is unknown)")
    imported_at: str


class RunInfo(BaseModel):
    model: dict[str, Any]  # the model config without secrets
    model_name: str
    deployment: str  # "api", "local" or "baseline"
    bench_dir: str
    bench_name: str
    bench_version: str
    bench_hash: str
    split: str
    n_items: int
    item_ids: list[str] | None = Field(
        None, description="the selection: ids of its n_items items in order (each run repeats times); none in folders "
                          "made before it was recorded, whose selection is the split's first n_items")
    repeats: int = 1
    packages: dict[str, str] = Field(default_factory=dict)
    git_commit: str | None = None
    started_at: str
    finished_at: str | None = None
    n_ok: int = 0
    n_failed: int = 0
    offline: bool = False
    fingerprint: dict[str, str] | None = Field(
        None, description="sha256 per part that shapes the requests (harness.run.fingerprint); resume compares it")
    shard: ShardInfo | None = Field(
        None, description="the part of the selection this run answers (--shard K/N); item_ids are its items")
    merged_from: list[dict[str, Any]] | None = Field(
        None, description="the shard folders 'wafersage merge' made this run from: folder, shard, items, times, "
                          "git commit and package versions of each")
    imported: ImportInfo | None = Field(
        None, description="set when the answers were produced elsewhere and read by 'wafersage import-answers'")
