"""The LLM judge: parsing of malformed replies served by the real test server, retries, samples, cache, identity."""
from __future__ import annotations

import asyncio

import pytest

from judge_server import judge_reply, judge_yaml
from rule_factory import edge_loc_rubric, item
from wafersage.harness.run.cache import ResponseCache
from wafersage.harness.scoring.judging.judge import (
    JudgeReplyError, JudgeSettings, LLMJudge, parse_reply, render_prompt, template_sha256,
)
from wafersage.models.registry import load_model, resolve
from wafersage.models.testing.server import ChatCompletionsServer


def test_parse_reply_variants():
    assert parse_reply('```json\n{"score": 7}\n```').score == 7
    assert parse_reply('Sure! {"score": "6/10", "rationale": "x"} bye').score == 6
    assert parse_reply("{'score': 8, 'spatial': 9}").spatial == 9
    clamped = parse_reply('{"score": 12, "root_cause": -3}')
    assert clamped.score == 10 and clamped.root_cause == 0 and len(clamped.notes) == 2
    with pytest.raises(JudgeReplyError, match="outside 0-10"):
        parse_reply('{"score": 12}', clamp=False)
    for bad, reason in [("no json here", "no JSON object"), ('{"score": 5', "not closed"),
                        ('{"rationale": "x"}', "no 'score'"), ('{"score": "high"}', "not a number"),
                        ("{'score': __import__('os')}", "neither JSON nor a literal")]:
        with pytest.raises(JudgeReplyError, match=reason):
            parse_reply(bad)


def test_prompt_holds_question_reference_rubric_and_answer():
    rubric = edge_loc_rubric()
    q = item("spatial", "Where are the failures?", "At the edge, 3 o'clock.")
    prompt = render_prompt(q, rubric, "<b>my answer</b>")
    assert "Where are the failures?" in prompt and "At the edge, 3 o'clock." in prompt
    assert "<b>my answer</b>" in prompt and "9 o'clock" in prompt and "Edge-Loc" in prompt
    assert len(template_sha256()) == 64


@pytest.fixture()
def judge_setup(tmp_path, monkeypatch):
    monkeypatch.setenv("WAFERSAGE_TEST_JUDGE_KEY", "sk-test")
    with ChatCompletionsServer(reply=judge_reply) as server:
        config = resolve(judge_yaml(tmp_path, server.url))

        def make(**settings) -> LLMJudge:
            return LLMJudge(load_model(config), config, JudgeSettings(**settings), ResponseCache(tmp_path / "c.sqlite"))

        yield server, make


def _judge(judge: LLMJudge, answers: list[str]):
    rubric = edge_loc_rubric()
    triples = [(item("spatial", "Where?", "The failures are at the edge around 3 o'clock.", qa=i), rubric, a)
               for i, a in enumerate(answers)]

    async def go():
        try:
            return await judge.judge_many(triples)
        finally:
            await judge.model.aclose()
    return asyncio.run(go())


def test_malformed_replies_from_a_real_server(judge_setup):
    server, make = judge_setup
    cases = ["CASE-fenced", "CASE-trailing", "CASE-single", "CASE-range", "CASE-garbage", "CASE-noscore"]
    fenced, trailing, single, out_of_range, garbage, noscore = _judge(make(parse_retries=1), cases)
    assert (fenced.status, fenced.score, fenced.dimensions["root_cause"]) == ("scored", 7, 8)
    assert trailing.score == 6 and single.score == 8 and single.dimensions == {"morphology": 9}
    assert out_of_range.score == 10 and any("clamped" in n for n in out_of_range.notes)
    for unscored, why in ((garbage, "no JSON object"), (noscore, "no 'score'")):
        assert unscored.status == "unscored" and unscored.score is None and why in unscored.reason
    assert server.chat_requests == len(cases) + 2  # each unparseable reply was asked once more
    assert fenced.judge_id == garbage.judge_id


def test_samples_spread_flip_rate_and_cache(judge_setup):
    server, make = judge_setup
    (flaky,) = _judge(make(samples=4), ["CASE-flaky"])
    assert flaky.samples == [8, 2, 8, 2] and flaky.spread == pytest.approx(3.0) and flaky.flip_rate == 0.5
    before = server.chat_requests
    (again,) = _judge(make(samples=4), ["CASE-flaky"])
    assert again.samples == flaky.samples and server.chat_requests == before  # served from the cache


def test_failed_calls_are_unscored_not_zero(judge_setup):
    server, make = judge_setup
    server.script(["server_error"] * 4)
    (result,) = _judge(make(parse_retries=0), ["The failures are at the edge."])
    assert result.status == "unscored" and "judge call failed" in result.reason


def test_a_parse_retry_sends_the_error_and_the_format_so_it_can_succeed(judge_setup):
    server, make = judge_setup
    (result,) = _judge(make(parse_retries=1), ["CASE-garbage-once"])
    assert result.status == "scored" and result.score == 6 and result.n_unparsed == 0
    first, retry = list(server.payloads)[-2:]
    assert len(first["messages"]) == 1 and [m["role"] for m in retry["messages"]] == ["user", "assistant", "user"]
    assert retry["messages"][1]["content"] == "The answer looks fine to me, about a six."
    assert "no JSON object" in retry["messages"][2]["content"] and '"score": <0-10>' in retry["messages"][2]["content"]


def test_samples_ask_above_zero_temperature_and_one_sample_at_zero(judge_setup):
    server, make = judge_setup
    _judge(make(samples=3), ["The failures are at the edge."])
    assert [p["temperature"] for p in list(server.payloads)[-3:]] == [0.7] * 3
    assert [p["seed"] for p in list(server.payloads)[-3:]] == [0, 1, 2]
    _judge(make(samples=3, sample_temperature=1.2), ["The failures are at the edge."])
    assert list(server.payloads)[-1]["temperature"] == 1.2
    _judge(make(), ["The failures sit at the edge."])
    assert list(server.payloads)[-1]["temperature"] == 0.0
    with pytest.raises(ValueError):
        JudgeSettings(samples=2, sample_temperature=0)


def test_an_endpoint_without_temperature_repeats_at_its_default(tmp_path, monkeypatch):
    monkeypatch.setenv("WAFERSAGE_TEST_JUDGE_KEY", "sk-test")
    with ChatCompletionsServer(reply=judge_reply) as server:
        config = resolve(judge_yaml(tmp_path, server.url, extra="omit_params: [temperature]\n"))
        judge = LLMJudge(load_model(config), config, JudgeSettings(samples=2))
        _judge(judge, ["The failures are at the edge."])
    assert not any("temperature" in p for p in server.payloads)
    assert judge.temperature_sent is False and judge.identity["temperature_sent"] is False
