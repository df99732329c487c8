"""Group commit of the runner's answers: staged cache rows and samples.jsonl lines written off the event loop."""
from __future__ import annotations

import asyncio

import pytest
from bench_factory import make_bench

from wafersage.harness.run.cache import ResponseCache
from wafersage.harness.run.records import Sample, SentRequest
from wafersage.harness.run.folder import SampleWriter, read_samples
from wafersage.harness.run.runner import run_eval
from wafersage.models.base import ModelResponse
from wafersage.models.config import ModelConfig
from wafersage.models.testing.server import ChatCompletionsServer


def sample(index: int) -> Sample:
    return Sample(item_id=f"w000-q{index}", wafer_id="w000", repeat=0,
                  request=SentRequest(messages=[], image="images/w000.png", params={}),
                  response=ModelResponse(text=f"answer {index}"))


def test_staged_answers_are_visible_at_once_and_written_in_one_commit(tmp_path):
    path = tmp_path / "c.sqlite"
    with ResponseCache(path) as cache:
        cache.stage("k1", ModelResponse(text="one"))
        cache.stage("k2", ModelResponse(text="two"))
        cache.stage("k-err", ModelResponse(error="HTTP 500: boom"))  # never cached, staged or not
        assert cache.get("k1").text == "one" and cache.get("k-err") is None
        assert len(cache) == 0  # nothing in the file before the commit
        assert cache.commit_staged() == 2 and len(cache) == 2
        assert cache.commit_staged() == 0
        cache.stage("k3", ModelResponse(text="three"))  # left staged: close() commits it
    with ResponseCache(path) as reopened:
        assert [reopened.get(k).text for k in ("k1", "k2", "k3")] == ["one", "two", "three"]


def test_lines_appended_together_share_one_fsync_and_the_commit_runs_first(tmp_path):
    cache = ResponseCache(tmp_path / "c.sqlite")
    commits: list[int] = []

    def commit() -> None:
        commits.append(cache.commit_staged())

    writer = SampleWriter(tmp_path / "samples.jsonl", before_sync=commit)

    async def main() -> list[int]:
        lines = []
        for index in range(120):  # appended with no await in between: one fsync for the first line, one for the rest
            cache.stage(f"k{index}", ModelResponse(text=f"answer {index}"))
            lines.append(writer.append(sample(index)))
        await writer.drain()
        return lines

    assert asyncio.run(main()) == list(range(1, 121))
    writer.close()
    assert commits == [1, 119] and len(cache) == 120  # every staged answer committed before its lines' fsync
    samples, torn = read_samples(tmp_path / "samples.jsonl")
    assert [s.item_id for s in samples] == [f"w000-q{i}" for i in range(120)] and not torn
    cache.close()


def test_a_failed_fsync_reaches_the_waiter_and_the_next_wait_tries_again(tmp_path):
    failures = ["disk full"]

    def flaky() -> None:
        if failures:
            raise OSError(28, failures.pop())

    writer = SampleWriter(tmp_path / "samples.jsonl", before_sync=flaky)

    async def main() -> None:
        with pytest.raises(OSError, match="disk full"):
            await writer.write(sample(0))
        await writer.drain()  # a fresh commit, which succeeds

    asyncio.run(main())
    writer.close()
    assert [s.item_id for s in read_samples(tmp_path / "samples.jsonl")[0]] == ["w000-q0"]


def test_close_syncs_lines_the_loop_left_behind(tmp_path):
    calls: list[str] = []

    def fails_first() -> None:
        calls.append("commit")
        if len(calls) == 1:
            raise OSError(5, "I/O error")

    writer = SampleWriter(tmp_path / "samples.jsonl", before_sync=fails_first)

    async def append_without_waiting() -> None:
        writer.append(sample(0))  # its fsync fails and nobody waits: the loop ends with the line unsynced

    asyncio.run(append_without_waiting())
    writer.close()
    assert calls == ["commit", "commit"]
    assert len(read_samples(tmp_path / "samples.jsonl")[0]) == 1


def test_every_ok_answer_of_a_run_is_in_the_cache(tmp_path):
    bench_dir = make_bench(tmp_path / "bench", n_wafers=8)
    cache_path = tmp_path / "cache.sqlite"
    with ChatCompletionsServer(fault_rate=0.3, seed=3, retry_after_s=0, hang_s=2) as server:
        config = ModelConfig(name="t", backend="openai", base_url=server.url, model="m", timeout=0.5,
                             max_retries=0, max_concurrency=8)
        info = run_eval(bench_dir, config, out_dir=tmp_path / "run", concurrency=8, repeats=3,
                        cache_path=cache_path, progress=False)
    assert info.n_failed > 0 and info.n_ok > 0  # the faults made some fail, and those are not cached
    with ResponseCache(cache_path) as cache:
        assert len(cache) == info.n_ok
