"""Which part of a model's reply gets scored.

Models trained with the paper's system prompt answer ``<REASONING>…</REASONING><SOLUTION>…</SOLUTION>``: only the
solution is the answer. Replies without tags are scored whole, minus any reasoning block.
"""
from __future__ import annotations

import re

SOLUTION_RE = re.compile(r"<SOLUTION>(.*?)</SOLUTION>", re.DOTALL)
REASONING_RE = re.compile(r"<REASONING>.*?(</REASONING>|$)", re.DOTALL)


def solution_text(text: str) -> str | None:
    """The last complete ``<SOLUTION>`` block's content, or None when there is none."""
    blocks = SOLUTION_RE.findall(text)
    return blocks[-1].strip() if blocks else None


def scored_answer(text: str) -> str:
    """The text the scorer reads: the ``<SOLUTION>`` content when present, else the reply without reasoning."""
    solution = solution_text(text)
    return solution if solution is not None else REASONING_RE.sub("", text).strip()
