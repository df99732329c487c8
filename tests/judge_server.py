"""A judge served by the real OpenAI-compatible test server: replies chosen by markers in the candidate answer,
otherwise a simulated judge (word overlap of candidate and reference, 0-10).

Modes (:func:`judge_mode`): ``overlap`` (the default judge, deterministic), ``precision`` (a second, deterministic
judge that grades the share of the candidate's words found in the reference, so it disagrees with ``overlap`` on
some answers), ``noisy`` (overlap plus noise that grows with the request's temperature: none at 0, the provider
default 1.0 when no temperature is sent) and ``partial`` (overlap, but HTTP 404 "no grade" for about half of the
answers, chosen by a hash of the prompt: a replayed judge that cannot grade every item).
"""
from __future__ import annotations

import hashlib
import json
import random
import re

from wafersage.harness.scoring.judging.judge import FORMAT_REMINDER
from wafersage.models.testing.server import ReplyStatus

MALFORMED = {
    "CASE-fenced": '```json\n{"score": 7, "spatial": 6, "morphology": 7, "root_cause": 8, "rationale": "fine"}\n```',
    "CASE-trailing": 'Here is my grade: {"score": "6", "spatial": 5, "rationale": "ok"} Hope this helps!',
    "CASE-single": "{'score': 8, 'morphology': 9, 'rationale': 'single quotes'}",
    "CASE-range": '{"score": 12, "spatial": -1, "rationale": "too generous"}',
    "CASE-garbage": "I cannot grade this answer.",
    "CASE-noscore": '{"rationale": "forgot the score"}',
}
#: answered with prose first; a re-ask that names the parse error and the format gets JSON
GARBAGE_ONCE = "CASE-garbage-once"
#: the provider's temperature when a request sends none
PROVIDER_DEFAULT_TEMPERATURE = 1.0
_REMINDER_START = FORMAT_REMINDER.split("{")[0]


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9']+", text.lower()))


def _user_texts(payload: dict) -> list[str]:
    return [m["content"] for m in payload.get("messages", []) if m.get("role") == "user"]


def _parts(payload: dict) -> tuple[str, str, str]:
    """(prompt, candidate answer, reference answer) of the judge prompt, the first user turn."""
    prompt = _user_texts(payload)[0]
    candidate = prompt.split("<<<", 1)[1].rsplit(">>>", 1)[0].strip()
    reference = re.search(r"Reference answer: (.*)", prompt).group(1)
    return prompt, candidate, reference


def _grade(score: float, rationale: str) -> str:
    return json.dumps({"score": round(min(10.0, max(0.0, score)), 2), "spatial": 5, "morphology": 5,
                       "root_cause": 5, "rationale": rationale})


def judge_mode(mode: str = "overlap"):
    """A reply function for :class:`~wafersage.models.testing.server.ChatCompletionsServer` (see the docstring)."""

    def reply(payload: dict) -> str:
        prompt, candidate, reference = _parts(payload)
        for marker, text in MALFORMED.items():
            if marker in candidate and not (marker == "CASE-garbage" and GARBAGE_ONCE in candidate):
                return text
        if GARBAGE_ONCE in candidate:
            retried = _user_texts(payload)[-1].startswith(_REMINDER_START)
            return _grade(6, "after the reminder") if retried else "The answer looks fine to me, about a six."
        if "CASE-flaky" in candidate:
            return json.dumps({"score": 8 if payload.get("seed", 0) % 2 == 0 else 2, "rationale": "flaky"})
        ref, cand = _words(reference), _words(candidate)
        if mode == "precision":
            return _grade(10 * len(ref & cand) / max(len(cand), 1), "share of the answer's words in the reference")
        overlap = 10 * len(ref & cand) / max(len(ref), 1)
        digest = hashlib.sha256(prompt.encode()).digest()
        if mode == "partial" and digest[0] % 2:
            raise ReplyStatus(404, "no grade recorded for this item")
        if mode == "noisy":
            temperature = payload.get("temperature", PROVIDER_DEFAULT_TEMPERATURE)
            noise = random.Random(f"{payload.get('seed')}:{digest.hex()}").gauss(0, 1.5)
            return _grade(overlap + temperature * noise, "word overlap, noisy")
        return _grade(overlap, "word overlap with the reference")

    return reply


judge_reply = judge_mode("overlap")


def judge_yaml(folder, url: str, name: str = "test-judge", extra: str = "", model: str = "judge-1") -> str:
    path = folder / f"{name}.yaml"
    path.write_text(f"name: {name}\nbackend: openai\nbase_url: {url}\nmodel: {model}\n"
                    f"api_key_env: WAFERSAGE_TEST_JUDGE_KEY\nmax_retries: 1\ntimeout: 10\n{extra}")
    return str(path)
