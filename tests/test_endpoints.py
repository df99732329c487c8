"""Several endpoints for one model: the pool's admission and routing, 429 rests, health, and failover against real
test servers (a replica stopped mid-run: every request answered once)."""
from __future__ import annotations

import asyncio
import threading
import time

import pytest
import yaml

from wafersage.models.base import ChatMessage, ModelRequest
from wafersage.models.config import ModelConfig, ModelConfigError
from wafersage.models.endpoints import DOWN_AFTER, EndpointPool, chat_completions_url
from wafersage.models.openai_backend import OpenAIModel
from wafersage.models.testing.server import ChatCompletionsServer

URLS = ["http://127.0.0.1:1/v1", "http://127.0.0.1:2/v1", "http://127.0.0.1:3/v1"]


def ask(text: str) -> ModelRequest:
    return ModelRequest(messages=[ChatMessage(role="user", content=text)])


def test_never_more_in_flight_than_the_limit_even_when_it_shrinks():
    pool = EndpointPool(URLS[:1], 8)
    (endpoint,) = pool.endpoints
    endpoint.limiter.cooldown_s = 0
    peak = {"before": 0, "after": 0}
    phase = {"name": "before"}

    async def call(index: int) -> None:
        got = await pool.acquire()
        peak[phase["name"]] = max(peak[phase["name"]], got.in_flight)
        await asyncio.sleep(0.01)
        if index == 10:
            pool.finish(got, "rate_limited")  # 8 -> 4
            phase["name"] = "after"
        else:
            pool.finish(got, "answered")

    async def main() -> None:
        await asyncio.gather(*(call(i) for i in range(11)))
        await asyncio.gather(*(call(i + 100) for i in range(40)))

    asyncio.run(main())
    assert peak["before"] == 8 and 1 <= peak["after"] <= 4
    assert endpoint.in_flight == 0 and pool.limit == 4


def test_waiters_wake_when_the_limit_grows():
    pool = EndpointPool(URLS[:1], 4)
    (endpoint,) = pool.endpoints
    endpoint.limiter.limit = 1

    async def call() -> None:
        got = await pool.acquire()
        await asyncio.sleep(0)
        pool.finish(got, "ok")

    async def main() -> None:
        await asyncio.wait_for(asyncio.gather(*(call() for _ in range(20))), timeout=10)

    asyncio.run(main())
    assert pool.limit == 4 and endpoint.in_flight == 0


def test_each_attempt_goes_to_the_endpoint_with_the_fewest_in_flight():
    pool = EndpointPool(URLS, 3)

    async def main() -> None:
        held = [await pool.acquire() for _ in range(5)]
        assert sorted(e.in_flight for e in pool.endpoints) == [1, 2, 2]
        least = min(pool.endpoints, key=lambda e: e.in_flight)
        assert await pool.acquire() is least
        pool.finish(held[0], "ok")
        assert await pool.acquire() is held[0]  # the only one with fewer than 2 in flight

    asyncio.run(main())


def test_a_429_rests_its_endpoint_and_the_others_take_the_load():
    pool = EndpointPool(URLS[:2], 4)
    first, second = pool.endpoints

    async def main() -> None:
        got = await pool.acquire()
        pool.finish(got, "rate_limited", rest_s=0.3)
        assert got.limiter.limit == 2
        other = next(e for e in pool.endpoints if e is not got)
        assert [await pool.acquire() for _ in range(4)] == [other] * 4  # the rested one takes nothing
        started = time.monotonic()
        assert await pool.acquire() is got  # the other is full: wait for the rest to end
        assert time.monotonic() - started >= 0.25

    asyncio.run(main())
    assert first.sent + second.sent == 6


def test_an_unreachable_endpoint_is_taken_out_probed_and_back_on_an_answer(monkeypatch):
    monkeypatch.setattr("wafersage.models.endpoints.FIRST_PROBE_S", 0.2)
    pool = EndpointPool(URLS[:2], 4)
    dead, alive = pool.endpoints

    async def main() -> None:
        pool.finish(await pool.acquire(avoid=alive), "unreachable")
        assert dead.down and pool.in_service(besides=dead) and not pool.in_service(besides=alive)
        assert {id(await pool.acquire()) for _ in range(4)} == {id(alive)}  # no new attempts for it
        for _ in range(4):
            pool.finish(alive, "ok")
        await asyncio.sleep(0.25)
        probe = await pool.acquire()
        assert probe is dead and await pool.acquire() is alive  # one probe at a time
        pool.finish(probe, "unreachable")  # a failed probe: the next waits twice as long
        assert dead.down and dead.probe_at - time.monotonic() > 0.3
        dead.probe_at = 0
        pool.finish(alive, "ok")
        probe = await pool.acquire()
        pool.finish(probe, "ok")
        assert probe is dead and not dead.down

    asyncio.run(main())


def test_answers_to_requests_sent_before_a_take_out_neither_bring_it_back_nor_count_as_failed_probes():
    # a dying server still finishes what it had in flight: those answers say nothing about its health now
    pool = EndpointPool(URLS[:2], 4)
    dying, alive = pool.endpoints

    async def main() -> None:
        early, late = await pool.acquire(avoid=alive), await pool.acquire(avoid=alive)
        sent = time.monotonic()
        assert early is late is dying
        refused = await pool.acquire(avoid=alive)
        pool.finish(refused, "unreachable", sent_at=time.monotonic())
        next_probe = dying.probe_at
        pool.finish(early, "ok", sent_at=sent)
        assert dying.down and dying.completed == 1  # counted, still out
        pool.finish(late, "unreachable", sent_at=sent)
        assert dying.down and dying.probe_at == next_probe  # no probe failed: the wait did not double
        assert await pool.acquire(avoid=dying) is alive and await pool.acquire() is alive

    asyncio.run(main())


def test_failed_attempts_in_a_row_take_an_endpoint_out_a_success_between_them_does_not():
    pool = EndpointPool(URLS[:2], 4)
    flaky = pool.endpoints[0]

    async def attempt(outcome) -> None:
        pool.finish(await pool.acquire(avoid=pool.endpoints[1]), outcome)

    async def main() -> None:
        for outcome in ["failed"] * (DOWN_AFTER - 1) + ["ok"] + ["failed"] * (DOWN_AFTER - 1):
            await attempt(outcome)
        assert not flaky.down
        await attempt("failed")
        assert flaky.down

    asyncio.run(main())


def test_with_no_endpoint_in_service_all_take_attempts_again():
    pool = EndpointPool(URLS[:2], 4)

    async def main() -> None:
        for endpoint in pool.endpoints:
            pool.finish(await pool.acquire(avoid=pool.endpoints[1 - pool.endpoints.index(endpoint)]), "unreachable")
        assert all(e.down for e in pool.endpoints) and not pool.in_service()
        got = await asyncio.wait_for(pool.acquire(), timeout=1)  # no waiting for a probe
        assert got in pool.endpoints

    asyncio.run(main())


def test_chat_url_keeps_the_query():
    assert chat_completions_url("http://h:1/v1/?key=k#frag") == "http://h:1/v1/chat/completions?key=k"
    assert chat_completions_url("https://h/v1beta/openai/") == "https://h/v1beta/openai/chat/completions"


@pytest.mark.parametrize("urls,message", [([], "empty list"), (["http://a/v1", "http://a/v1"], "twice"),
                                          (["http://a/v1", "a:8000"], "must be an http")])
def test_bad_url_lists_are_clear_errors(urls, message):
    with pytest.raises(ModelConfigError, match=message):
        OpenAIModel(ModelConfig(name="x", backend="openai", base_url=urls, model="m"))


def test_requests_spread_over_replicas_and_a_stopped_one_loses_nothing():
    servers = [ChatCompletionsServer(latency_ms=20).start() for _ in range(3)]
    try:
        model = OpenAIModel(ModelConfig(name="replicas", backend="openai", base_url=[s.url for s in servers],
                                        model="m", max_concurrency=4, timeout=5, max_retries=0))
        assert model.max_concurrency == 12 and model.deployment == "local"

        async def main():
            async def one(index: int):
                if index == 60:
                    await asyncio.to_thread(servers[1].stop)  # a replica dies with requests in flight
                return (await model.generate([ask(f"q{index}")]))[0]
            try:
                return await asyncio.gather(*(one(i) for i in range(240)))
            finally:
                await model.aclose()

        responses = asyncio.run(main())
    finally:
        for server in servers:
            server.stop()
    assert [r.text for r in responses] == [f"echo: q{i}" for i in range(240)]  # max_retries=0: only failovers
    assert min(s.counts["ok"] for s in (servers[0], servers[2])) > 60
    dead = model.pool.endpoints[1]
    assert dead.down and dead.completed == servers[1].counts["ok"] < 80
    assert sum(e.completed for e in model.pool.endpoints) == 240


def test_eval_with_a_replica_dying_mid_run_answers_every_item_once_and_exits_0(tmp_path):
    from bench_factory import make_bench
    from click.testing import CliRunner

    from wafersage.cli import main
    from wafersage.harness.run.folder import SAMPLES, load_run, read_samples

    bench = make_bench(tmp_path / "bench", n_wafers=9)
    servers = [ChatCompletionsServer(latency_ms=20).start() for _ in range(3)]
    doomed, dying = servers[1], threading.Event()

    def reply(payload):
        if doomed.chat_requests >= 10 and not dying.is_set():  # it dies with requests in flight
            dying.set()
            threading.Thread(target=doomed.stop).start()
        return f"echo: {payload['messages'][-1]['content'][-1]['text']}"

    doomed.reply = reply
    spec = tmp_path / "replicas.yaml"
    spec.write_text(yaml.safe_dump({"name": "replicas", "backend": "openai", "base_url": [s.url for s in servers],
                                    "model": "m", "max_concurrency": 4, "timeout": 5, "max_retries": 0}))
    try:
        result = CliRunner().invoke(main, ["eval", "--bench", str(bench), "--model", str(spec), "--repeats", "4",
                                           "--out", str(tmp_path / "run"), "--concurrency", "12", "--no-progress"])
    finally:
        for server in servers:
            server.stop()
    assert result.exit_code == 0, result.output
    samples = read_samples(tmp_path / "run" / SAMPLES)[0]
    keys = [(s.item_id, s.repeat) for s in samples]
    assert len(keys) == len(set(keys)) == 96 and all(s.ok for s in samples)  # max_retries=0: failovers only
    assert doomed.counts["ok"] < 20 and servers[0].counts["ok"] + servers[2].counts["ok"] > 70
    assert load_run(tmp_path / "run").info.n_ok == 96
