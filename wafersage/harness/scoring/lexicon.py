"""The answer lexicon (``data/lexicon.yaml``) compiled for the claim reader.

Each slot (zone, extent, clock direction, density, texture, shape, equipment) maps values to phrasings; a phrase is
compiled to a whole-word regular expression on normalised text (see the YAML's header for the phrase syntax).
Equipment takes the knowledge table's category names and synonyms too, so a fab's own table is read the same way.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from ...tasks.synth.knowledge import load_knowledge

LEXICON_PATH = Path(__file__).with_name("data") / "lexicon.yaml"
CLOSED_SLOTS = ("zone", "extent", "clock_direction", "density", "texture", "shape")


def _word(token: str) -> str:
    if token == "~":
        return r"(?:[a-z0-9]+ ){0,3}"
    alternatives = []
    for option in token.split("/"):
        if option.endswith("*"):
            alternatives.append(re.escape(option[:-1]) + r"[a-z0-9]*")
        else:
            alternatives.append(re.escape(option) + r"(?:s|es)?")
    body = alternatives[0] if len(alternatives) == 1 else "(?:" + "|".join(alternatives) + ")"
    return body + " "


def phrase_regex(phrase: str) -> str:
    """The regex source of one lexicon phrase on normalised text (words separated by single spaces, the match
    including one trailing space)."""
    return "".join(_word(t) for t in phrase.lower().split())


def trie_regex(phrases: list[str]) -> str:
    """One regex source for many phrases, factored word by word ("edge (?:ring )?" for "edge" and "edge ring"): the
    engine tries a word once instead of once per phrase; a longer phrase wins over its prefix, as in an alternation
    ordered longest first."""
    root: dict = {}
    for phrase in phrases:
        node = root
        for token in phrase.lower().split():
            node = node.setdefault(_word(token), {})
        node[""] = {}  # the phrase may end here

    def longest(node: dict) -> int:
        return max((len(k) + longest(v) for k, v in node.items()), default=0)

    def emit(node: dict) -> str:
        branches = sorted(((k, v) for k, v in node.items() if k), key=lambda kv: -(len(kv[0]) + longest(kv[1])))
        if not branches:
            return ""
        body = "(?:" + "|".join(k + emit(v) for k, v in branches) + ")"
        return body + "?" if "" in node else body

    return emit(root)


@dataclass(frozen=True)
class SlotMatcher:
    """One slot's phrases: :meth:`find` yields (start, end, value) of the longest phrases, left to right."""

    slot: str
    pattern: re.Pattern[str]
    values: tuple[tuple[str, re.Pattern[str]], ...]

    @classmethod
    def of(cls, slot: str, table: dict[str, list[str]]) -> "SlotMatcher":
        phrases = sorted(((str(p), value) for value, ps in table.items() for p in ps), key=lambda x: -len(x[0]))
        pattern = re.compile(r"(?<![a-z0-9])" + trie_regex([p for p, _ in phrases]))
        values = tuple((value, re.compile("(?:" + "|".join(phrase_regex(p) for p in ps) + r")\Z"))
                       for value, ps in ((v, sorted(map(str, ps), key=len, reverse=True)) for v, ps in table.items()))
        return cls(slot, pattern, values)

    def find(self, text: str) -> list[tuple[int, int, str]]:
        found = []
        for match in self.pattern.finditer(text):
            piece = match.group(0)
            value = next((v for v, rx in self.values if rx.match(piece)), None)
            if value is not None:
                found.append((match.start(), match.end(), value))
        return found


@dataclass(frozen=True)
class Lexicon:
    slots: dict[str, SlotMatcher]
    cause_cues: dict[str, tuple[tuple[tuple[re.Pattern[str], ...], ...], ...]]
    negate_before: re.Pattern[str]  # negates a claim up to four words after it
    negate_adjacent: re.Pattern[str]  # negates a claim right after it ("clean center")
    negate_after: re.Pattern[str]  # negates the claim just before it ("the center is clean")
    connectors: re.Pattern[str]  # opens an excluded clause ("rather than", "except")
    after_skip: frozenset[str]  # words between a claim and its `negate_after` word ("is almost entirely")


def _alternation(phrases: list[str]) -> re.Pattern[str]:
    ordered = sorted(map(str, phrases), key=len, reverse=True)
    return re.compile(r"(?<![a-z0-9])(?:" + "|".join(phrase_regex(p) for p in ordered) + ")")


@lru_cache(maxsize=1)
def lexicon() -> Lexicon:
    """The compiled lexicon (read once)."""
    data = yaml.safe_load(LEXICON_PATH.read_text(encoding="utf-8"))
    equipment = {k: list(v) for k, v in data["equipment"].items()}
    for name, synonyms in load_knowledge().equipment_categories.items():
        equipment.setdefault(name, []).extend([name, *synonyms])
    slots = {slot: SlotMatcher.of(slot, data[slot]) for slot in CLOSED_SLOTS}
    slots["equipment"] = SlotMatcher.of("equipment", equipment)
    cues = {pattern: tuple(tuple(_alternation(group) for group in cue) for cue in cue_list)
            for pattern, cue_list in data["cause_cues"].items()}
    negation = data["negation"]
    return Lexicon(slots, cues, *(_alternation(negation[k]) for k in ("before", "adjacent", "after", "connectors")),
                   frozenset(map(str, negation["after_skip"])))
