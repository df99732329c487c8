"""A judge served by the real OpenAI-compatible test server: replies chosen by markers in the candidate answer,
otherwise a simulated judge (word overlap of candidate and reference, 0-10)."""
from __future__ import annotations

import json
import re

from wafersage.models.testing.server import _last_user_text

MALFORMED = {
    "CASE-fenced": '```json\n{"score": 7, "spatial": 6, "morphology": 7, "root_cause": 8, "rationale": "fine"}\n```',
    "CASE-trailing": 'Here is my grade: {"score": "6", "spatial": 5, "rationale": "ok"} Hope this helps!',
    "CASE-single": "{'score': 8, 'morphology': 9, 'rationale': 'single quotes'}",
    "CASE-range": '{"score": 12, "spatial": -1, "rationale": "too generous"}',
    "CASE-garbage": "I cannot grade this answer.",
    "CASE-noscore": '{"rationale": "forgot the score"}',
}


def judge_reply(payload: dict) -> str:
    prompt = _last_user_text(payload)
    candidate = prompt.split("<<<", 1)[1].rsplit(">>>", 1)[0].strip()
    for marker, reply in MALFORMED.items():
        if marker in candidate:
            return reply
    if "CASE-flaky" in candidate:
        return json.dumps({"score": 8 if payload.get("seed", 0) % 2 == 0 else 2, "rationale": "flaky"})
    reference = re.search(r"Reference answer: (.*)", prompt).group(1)
    ref_words = set(re.findall(r"[a-z0-9']+", reference.lower()))
    cand_words = set(re.findall(r"[a-z0-9']+", candidate.lower()))
    overlap = len(ref_words & cand_words) / max(len(ref_words), 1)
    return json.dumps({"score": round(10 * overlap, 2), "spatial": 5, "morphology": 5, "root_cause": 5,
                       "rationale": "word overlap with the reference"})


def judge_yaml(folder, url: str) -> str:
    path = folder / "judge.yaml"
    path.write_text(f"name: test-judge\nbackend: openai\nbase_url: {url}\nmodel: judge-1\n"
                    "api_key_env: WAFERSAGE_TEST_JUDGE_KEY\nmax_retries: 1\ntimeout: 10\n")
    return str(path)
