"""The lexicon's phrases compile to one word-factored regex per slot: it must find what an alternation of the
phrases ordered longest first finds (the reader's semantics), only faster."""
from __future__ import annotations

import random
import re

import yaml

from wafersage.harness.scoring.lexicon import CLOSED_SLOTS, LEXICON_PATH, phrase_regex, trie_regex


def _alternation(phrases: list[str]) -> re.Pattern[str]:
    ordered = sorted(phrases, key=len, reverse=True)
    return re.compile(r"(?<![a-z0-9])(?:" + "|".join(phrase_regex(p) for p in ordered) + ")")


def test_the_factored_regex_finds_what_the_longest_first_alternation_finds():
    data = yaml.safe_load(LEXICON_PATH.read_text(encoding="utf-8"))
    rng = random.Random(0)
    for slot in CLOSED_SLOTS:
        phrases = [str(p) for values in data[slot].values() for p in values]
        words = [w.rstrip("*") for p in phrases for w in p.split() if w != "~"] + ["the", "dies", "fail", "a"]
        texts = [" ".join(rng.choice(words) for _ in range(rng.randint(3, 14))) + " " for _ in range(400)]
        texts += [f"the failures are {p.replace('~', 'all the').replace('*', 'al')} here " for p in phrases]
        plain, factored = _alternation(phrases), re.compile(r"(?<![a-z0-9])" + trie_regex(phrases))
        for text in texts:
            assert [m.span() for m in factored.finditer(text)] == [m.span() for m in plain.finditer(text)], (slot, text)
