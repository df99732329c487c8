"""What an item score is made of, for people: the facts matched, partly matched, contradicted and missed."""
from __future__ import annotations

from pydantic import BaseModel, Field


class Explanation(BaseModel):
    """Why an answer scored what it did, in facts: ``slot: value`` strings."""

    matched: list[str] = Field(default_factory=list)
    partial: list[str] = Field(default_factory=list)
    contradicted: list[str] = Field(default_factory=list)
    hedged: list[str] = Field(default_factory=list, description="wrong values stated beside a true one")
    missed: list[str] = Field(default_factory=list)
    extra: list[str] = Field(default_factory=list)
    phrases: list[str] = Field(default_factory=list, description="answer words behind matched facts")
    contradicting_phrases: list[str] = Field(default_factory=list, description="answer words that contradict")
