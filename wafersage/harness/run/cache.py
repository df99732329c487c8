"""A response cache on SQLite, shared by the eval runner and the scorer's LLM judge.

Usage, one request at a time (the judge, the synthesis model caller)::

    cache = ResponseCache("runs/demo/.wafersage-cache.sqlite")
    response, cached = await cached_generate(cache, model, config, request, repeat=0)

which is :meth:`~ResponseCache.key`, :meth:`~ResponseCache.get` and, on a miss, the model call and
:meth:`~ResponseCache.put` (ignored when ``response.error`` is set).

The key is the sha256 of everything that decides a model's output: the model config without secrets and without
operational settings (:data:`NON_OUTPUT_KEYS`: endpoint URLs, timeouts, concurrency, rate limits, prices, ...), the
messages, the sha256 of every image file, the generation parameters and the repeat index. Request ``metadata`` is not
part of it.

One connection in WAL mode; every call takes a lock, so concurrent coroutines (and threads) are serialised.
The eval runner batches its writes: :meth:`ResponseCache.stage` holds a response in memory (visible to
:meth:`~ResponseCache.get`), :meth:`~ResponseCache.commit_staged` writes every staged one in one transaction (the
runner does it from its fsync thread, just before each group commit of ``samples.jsonl``), and
:meth:`~ResponseCache.close` commits what is left.
"""
from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

from ...models.base import Model, ModelRequest, ModelResponse
from ...models.config import SECRET_KEYS, ModelConfig, redact
from ...tasks.bench.folder import sha256_file

#: config fields that never change what a model answers; left out of cache keys and resume checks. ``base_url`` is
#: where the model is served, not which model answers (``model`` says that): adding or removing a replica, or moving
#: the server, keeps the cache and the run resumable
NON_OUTPUT_KEYS: frozenset[str] = frozenset({
    *SECRET_KEYS, "name", "source", "offline", "allow_hosts", "api_key_env", "timeout", "max_retries",
    "max_concurrency", "requests_per_minute", "tokens_per_minute", "price_per_million", "max_data_url_bytes",
    "base_url", "transport",
})

_SCHEMA = "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, response TEXT NOT NULL, created REAL)"
_INSERT = "INSERT OR REPLACE INTO responses (key, response, created) VALUES (?, ?, julianday('now'))"


def output_config(config: ModelConfig | dict[str, Any]) -> dict[str, Any]:
    """The part of a model config (or of its ``public()`` dict, as stored in run.json) that decides outputs, with
    secrets redacted (so a rotated key keeps cache keys and resume, and a judge identity holds no key)."""
    data = redact(config.model_dump() if isinstance(config, ModelConfig) else dict(config))
    if data.get("system_prompt") is None:  # the harness default: keys and run folders made before the field match
        data.pop("system_prompt", None)
    if not data.get("no_image"):  # likewise a run with the image
        data.pop("no_image", None)
    return {k: v for k, v in sorted(data.items()) if k not in NON_OUTPUT_KEYS}


def config_fingerprint(config: ModelConfig | dict[str, Any]) -> str:
    """sha256 of :func:`output_config`: equal for two configs that should give the same answers."""
    return hashlib.sha256(json.dumps(output_config(config), sort_keys=True, default=str).encode()).hexdigest()


def file_sha256(path: str | Path) -> str:
    """sha256 of a file, memoised on (path, size, mtime) so an image shared by many items is read once."""
    stat = os.stat(path)
    return _file_sha256(str(path), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=65536)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    return sha256_file(path)


class ResponseCache:
    """Successful model responses by key, in one SQLite file (created with its folder if missing)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()  # the connection
        self._staging_lock = threading.Lock()  # the staged responses, so staging never waits for a commit
        self._staged: dict[str, ModelResponse] = {}
        self._committing: dict[str, ModelResponse] = {}
        self._config: ModelConfig | None = None  # the last config keyed, and its output_config
        self._config_output: dict[str, Any] = {}
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
            self._set_up()
        except sqlite3.DatabaseError as exc:
            raise ValueError(
                f"{self.path}: cannot open the response cache ({exc}); delete the file or pass another cache path"
            ) from exc

    def _set_up(self, wait_s: float = 30.0) -> None:
        """WAL mode and the table. Switching the journal mode can fail at once with "database is locked" while
        another process (a ``--workers`` sibling) opens the same file, without waiting out the busy timeout:
        retried for up to ``wait_s``."""
        deadline = time.monotonic() + wait_s
        while True:
            try:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
                self._db.execute(_SCHEMA)
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def key(self, config: ModelConfig, request: ModelRequest, repeat: int = 0) -> str:
        if config is not self._config:  # a run asks with one config: its part of the key is worked out once
            self._config, self._config_output = config, output_config(config)
        payload = {
            "config": self._config_output,
            "messages": [m.model_dump() for m in request.messages],
            "images": [file_sha256(p) for p in request.images],
            "params": request.params.model_dump(),
            "repeat": repeat,
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()

    def get(self, key: str) -> ModelResponse | None:
        if (staged := self._staged_response(key)) is not None:
            return staged
        with self._lock:
            row = self._db.execute("SELECT response FROM responses WHERE key = ?", (key,)).fetchone()
        return ModelResponse.model_validate_json(row[0]) if row else None

    def put(self, key: str, response: ModelResponse) -> None:
        """Store a successful response; a response with ``error`` is never cached (the next run retries it)."""
        if response.error is not None:
            return
        with self._lock:
            self._db.execute(_INSERT, (key, response.model_dump_json()))

    def stage(self, key: str, response: ModelResponse) -> None:
        """Hold a successful response for the next :meth:`commit_staged` (errors are ignored, as by :meth:`put`)."""
        if response.error is None:
            with self._staging_lock:
                self._staged[key] = response

    def commit_staged(self) -> int:
        """Write every staged response in one transaction; returns how many were written."""
        with self._staging_lock:
            staged, self._staged = self._staged, {}
            self._committing = staged
        try:
            if staged:
                with self._lock:
                    self._write_many((key, response.model_dump_json()) for key, response in staged.items())
        except BaseException:
            with self._staging_lock:  # not written: staged again for the next commit
                self._staged = {**staged, **self._staged}
            raise
        finally:
            self._committing = {}
        return len(staged)

    def _staged_response(self, key: str) -> ModelResponse | None:
        with self._staging_lock:
            staged = self._staged.get(key)
            return staged if staged is not None else self._committing.get(key)

    def _write_many(self, rows: Iterable[tuple[str, str]]) -> None:
        self._db.execute("BEGIN")
        try:
            self._db.executemany(_INSERT, rows)
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        """Commit what is staged and close the file."""
        try:
            self.commit_staged()
        finally:
            with self._lock:
                self._db.close()

    def __enter__(self) -> "ResponseCache":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


async def cached_generate(cache: ResponseCache | None, model: Model, config: ModelConfig, request: ModelRequest,
                          repeat: int = 0, *, refresh: bool = False) -> tuple[ModelResponse, bool]:
    """One request through the cache: the cached answer if there is one, else the model's, cached when ok.

    Returns the response and whether it came from the cache; with no cache, every call goes to the model.
    ``refresh`` asks the model even when an answer is cached (and caches the new one when it is ok).
    """
    key = cache.key(config, request, repeat) if cache is not None else None
    if key is not None and not refresh and (hit := cache.get(key)) is not None:
        return hit, True
    [response] = await model.generate([request])
    if key is not None:
        cache.put(key, response)
    return response, False
