"""Text helpers of the rule scorer: normalisation, defect-type phrases, the yes/no verdict, the type match, echo
similarity.

:func:`normalise` gives lower case, American spelling, every run of non-alphanumerics one space, a sentence end
(``.``, ``;``, ``!``, ``?`` before a space) kept as the word ``|``, padded with a space at both ends:
``"Edge-Ring at 4 o'clock. Dense"`` becomes ``" edge ring at 4 o clock | dense "``. The claim reader
(:mod:`.reader`) reads facts; what is here decides verdicts, types and echoes.
"""
from __future__ import annotations

import re
from functools import lru_cache

from rapidfuzz import fuzz

SPELLING = {
    "centre": "center", "centred": "centered", "centres": "centers",
    "localised": "localized", "localise": "localize", "doughnut": "donut", "doughnuts": "donuts",
    "colour": "color", "grey": "gray", "nearfull": "near full", "edgering": "edge ring", "edgeloc": "edge loc",
    "oclock": "o clock",
}
SPELLING_RE = re.compile(r"\b(" + "|".join(sorted(SPELLING, key=len, reverse=True)) + r")\b")
_NON_ALNUM = re.compile(r"[^a-z0-9|]+")
_SENTENCE_END = re.compile(r"[.;!?]+(?=\s|$)|\|")

NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12,
}
CLOCK_RE = re.compile(
    r"(?<![a-z0-9])(1[0-2]|[1-9]|" + "|".join(NUMBER_WORDS) + r") o clock(?![a-z0-9])"
)

#: phrases (normalised) that name each defect type; longest phrases are matched first and masked
TYPE_PHRASES: dict[str, tuple[str, ...]] = {
    "Edge-Ring": ("edge ring", "ring along the edge", "ring around the edge", "edge ring pattern"),
    "Edge-Loc": ("edge loc", "edge local", "edge localized", "localized edge", "local edge"),
    "Near-full": ("near full", "nearly full", "almost full", "near full wafer"),
    "Donut": ("donut", "donuts", "annular", "annulus"),
    "Scratch": ("scratch", "scratches", "scratched"),
    "Random": ("random pattern", "random defect", "random type", "random failures", "random failure",
               "randomly scattered", "random distribution", "random defects", "random"),
    "Loc": ("loc", "local cluster", "localized cluster", "localized defect", "localized pattern",
            "localized blob", "local defect"),
    "Center": ("center pattern", "center defect", "center type", "center cluster", "center blob",
               "central cluster", "central blob", "center failure", "center failures", "center signature",
               "center"),
    "none": ("no defect", "no defects", "no pattern", "no defect pattern", "no failure pattern", "normal",
             "defect free", "none", "clean wafer", "no systematic"),
}
TYPE_ORDER = sorted(
    ((phrase, label) for label, phrases in TYPE_PHRASES.items() for phrase in phrases),
    key=lambda pair: -len(pair[0]),
)
_YES_NO_RE = re.compile(r"(?<![a-z0-9])(yes|no)(?![a-z0-9])")


@lru_cache(maxsize=8192)
def normalise(text: str) -> str:
    """Lower case, American spelling, alphanumeric words separated by single spaces, padded with spaces (cached by
    text: the reader and the echo check normalise the same answer)."""
    lowered = SPELLING_RE.sub(lambda m: SPELLING[m.group(1)], text.lower())
    marked = _SENTENCE_END.sub(lambda m: " | " if m.group(0) != "|" else " ", lowered)
    joined = " ".join(_NON_ALNUM.sub(" ", marked).split())
    while "| |" in joined:
        joined = joined.replace("| |", "|")
    return " " + joined.removeprefix("|").removesuffix("|").strip() + " "


def clock_hours(text: str) -> set[int]:
    """Clock positions (1–12) named in normalised text, digits or words."""
    return {int(h) if h.isdigit() else NUMBER_WORDS[h] for h in CLOCK_RE.findall(text)}


def yes_no(text: str) -> bool | None:
    """The answer's verdict: its first word when that is yes/no (unless the other one follows within three words of
    its first sentence), else the only yes/no word in it; None when unclear."""
    words = text.split()
    if words and words[0] in ("yes", "no"):
        opening = words[:words.index("|")] if "|" in words else words
        if {"yes", "no"} <= set(opening[:3]):
            return None  # "Yes, no, ..." hedges both ways
        return words[0] == "yes"
    said = set(_YES_NO_RE.findall(text))
    if len(said) == 1:
        return said.pop() == "yes"
    return None


def type_match(predicted: set[str], labels: set[str]) -> float:
    """Precision × recall of the types named versus the item's labels (both empty counts as a match). Harder on a
    missing component than F1, as graders are: 2 of 3 named earns 0.67 (F1 0.8), 1 of 3 earns 0.33 (F1 0.5)."""
    if not predicted and not labels:
        return 1.0
    true_positive = len(predicted & labels)
    return true_positive / len(predicted) * true_positive / len(labels) if true_positive else 0.0


def similarity(a: str, b: str) -> float:
    """Character-level similarity of two normalised texts, 0–100 (for echo detection)."""
    return fuzz.ratio(a, b)
