"""The SQLite response cache: what goes into a key, what is stored, persistence and concurrent use."""
from __future__ import annotations

import asyncio

import pytest

from wafersage.harness.run.cache import ResponseCache, config_fingerprint
from wafersage.models.base import ChatMessage, GenerationParams, ModelRequest, ModelResponse
from wafersage.models.config import ModelConfig

CONFIG = ModelConfig(name="m", backend="openai", model="qwen", base_url="http://127.0.0.1:1/v1", timeout=10)


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "a.png"
    path.write_bytes(b"\x89PNG fake but hashed bytes")
    return path


def request(image, text="Where are the failing dies?", **params) -> ModelRequest:
    return ModelRequest(messages=[ChatMessage(role="user", content=text)], images=[str(image)],
                        params=GenerationParams(**params), metadata={"item_id": "x"})


def test_key_depends_on_what_decides_the_answer(tmp_path, image):
    cache = ResponseCache(tmp_path / "c.sqlite")
    base = cache.key(CONFIG, request(image))
    assert base == cache.key(CONFIG, request(image))
    assert cache.key(CONFIG, request(image, text="Other?")) != base
    assert cache.key(CONFIG, request(image, temperature=0.7)) != base
    assert cache.key(CONFIG, request(image), repeat=1) != base
    assert cache.key(CONFIG.model_copy(update={"model": "other"}), request(image)) != base
    other_image = tmp_path / "b.png"
    other_image.write_bytes(b"different bytes")
    assert cache.key(CONFIG, request(other_image)) != base
    image.write_bytes(b"changed content, same path")
    assert cache.key(CONFIG, request(image)) != base


def test_key_ignores_metadata_secrets_and_operational_settings(tmp_path, image):
    cache = ResponseCache(tmp_path / "c.sqlite")
    base = cache.key(CONFIG, request(image))
    with_meta = request(image)
    with_meta.metadata["bench_dir"] = "/elsewhere"
    assert cache.key(CONFIG, with_meta) == base
    operational = CONFIG.model_copy(update={"timeout": 99, "max_concurrency": 3, "api_key": "sk-secret",
                                            "name": "renamed", "offline": True, "transport": "openai",
                                            "base_url": ["http://127.0.0.1:1/v1", "http://10.0.0.2:8000/v1"]})
    assert cache.key(operational, request(image)) == base
    assert config_fingerprint(operational) == config_fingerprint(CONFIG.public())


def test_put_get_roundtrip_persists_and_never_stores_errors(tmp_path, image):
    path = tmp_path / "sub" / "c.sqlite"
    ok = ModelResponse(text="Center.", input_tokens=10, output_tokens=2, latency_s=0.5, cost_usd=0.001)
    with ResponseCache(path) as cache:
        cache.put("k-ok", ok)
        cache.put("k-err", ModelResponse(error="HTTP 500 after 2 retries"))
        assert cache.get("k-missing") is None
        assert len(cache) == 1
    with ResponseCache(path) as reopened:
        assert reopened.get("k-ok") == ok
        assert reopened.get("k-err") is None


def test_concurrent_async_use_from_threads(tmp_path):
    cache = ResponseCache(tmp_path / "c.sqlite")

    async def main():
        await asyncio.gather(*(
            asyncio.to_thread(cache.put, f"k{i}", ModelResponse(text=f"answer {i}")) for i in range(200)
        ))
        return await asyncio.gather(*(asyncio.to_thread(cache.get, f"k{i}") for i in range(200)))

    results = asyncio.run(main())
    assert [r.text for r in results] == [f"answer {i}" for i in range(200)]
    assert len(cache) == 200


def test_damaged_cache_file_names_the_file(tmp_path):
    path = tmp_path / "c.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(ValueError, match="c.sqlite.*delete the file"):
        ResponseCache(path)


def _open_at_once(path, barrier, results):
    barrier.wait()
    try:
        ResponseCache(path)
        results.put("ok")
    except ValueError as exc:
        results.put(str(exc))


def test_processes_opening_a_new_cache_at_once_all_get_it(tmp_path):
    # `eval --workers N` starts N processes on one cache file: switching it to WAL must not fail any of them
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    outcomes = []
    for attempt in range(30):
        barrier, results = ctx.Barrier(6), ctx.Queue()
        procs = [ctx.Process(target=_open_at_once, args=(tmp_path / f"c{attempt}.sqlite", barrier, results))
                 for _ in range(6)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
        outcomes += [results.get(timeout=5) for _ in procs]
    assert outcomes == ["ok"] * len(outcomes), [o for o in outcomes if o != "ok"][:3]
