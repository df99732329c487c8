"""Text matching for the rule scorer: normalisation, fuzzy term scores, defect-type mentions, yes/no, clocks.

Every function here works on *normalised* text (:func:`normalise`): lower case, American spelling, every run of
non-alphanumerics turned into one space, padded with a space at both ends so that ``f" {term} " in text`` is a
whole-word test. ``"Edge-Ring at 4 o'clock"`` becomes ``" edge ring at 4 o clock "``.

:func:`term_score` is the one place that decides how well a term appears in an answer (0–100): an exact whole-word
hit (or its plural) scores 100; otherwise terms of at least :data:`MIN_FUZZY_LEN` characters are aligned with
rapidfuzz's ``partial_ratio_alignment``, the aligned window is widened to whole words and scored with
``fuzz.ratio``; the score only stands when the window carries the same numbers as the term (so "3 o'clock" never
matches "9 o'clock" or "six o'clock"). Short terms ("cmp", "ring", "edge") match exactly or not at all: a fuzzy
"ring" would match "during".
"""
from __future__ import annotations

import re
from functools import lru_cache

from rapidfuzz import fuzz

#: fuzzy scores below this are reported as 0; the lowest fuzzy threshold calibration may choose
SCORE_FLOOR = 50.0
#: shorter terms (in characters) match only exactly
MIN_FUZZY_LEN = 5

_SPELLING = {
    "centre": "center", "centred": "centered", "centres": "centers",
    "localised": "localized", "localise": "localize", "doughnut": "donut", "doughnuts": "donuts",
    "colour": "color", "grey": "gray", "nearfull": "near full", "edgering": "edge ring", "edgeloc": "edge loc",
}
_SPELLING_RE = re.compile(r"\b(" + "|".join(sorted(_SPELLING, key=len, reverse=True)) + r")\b")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")

_NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12,
}
_NUMBERS = re.compile(r"(?<![a-z0-9])(\d+|" + "|".join(_NUMBER_WORDS) + r")(?![a-z0-9])")
CLOCK_RE = re.compile(
    r"(?<![a-z0-9])(1[0-2]|[1-9]|" + "|".join(_NUMBER_WORDS) + r") o clock(?![a-z0-9])"
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
#: "center"/"random" as a bare word name a type only in a defect-type answer that names no other place; see
#: :func:`mentioned_types`
_LOCATION_CONTEXT = re.compile(r" (near|at|in|around|towards|toward|from|of) the center ")
_TYPE_ORDER = sorted(
    ((phrase, label) for label, phrases in TYPE_PHRASES.items() for phrase in phrases),
    key=lambda pair: -len(pair[0]),
)
_TYPE_RE = re.compile(r"(?<![a-z0-9])(" + "|".join(re.escape(p) for p, _ in _TYPE_ORDER) + r")(?![a-z0-9])")
_TYPE_OF = dict(_TYPE_ORDER)
_YES_NO_RE = re.compile(r"(?<![a-z0-9])(yes|no)(?![a-z0-9])")


def normalise(text: str) -> str:
    """Lower case, American spelling, alphanumeric words separated by single spaces, padded with spaces."""
    lowered = _SPELLING_RE.sub(lambda m: _SPELLING[m.group(1)], text.lower())
    return " " + " ".join(_NON_ALNUM.sub(" ", lowered).split()) + " "


def term_score(term: str, text: str) -> float:
    """How well normalised ``term`` (no padding) appears in normalised ``text``: 100 exact, else fuzzy or 0."""
    if not term:
        return 0.0
    if f" {term} " in text or f" {term}s " in text or f" {term}es " in text:
        return 100.0
    if len(term) < MIN_FUZZY_LEN:
        return 0.0
    alignment = fuzz.partial_ratio_alignment(term, text, score_cutoff=SCORE_FLOOR)
    if alignment is None:
        return 0.0
    start = text.rfind(" ", 0, alignment.dest_start + 1) + 1
    end = text.find(" ", max(alignment.dest_end - 1, start))
    window = text[start:end if end >= 0 else len(text)].strip()
    if _numbers(window) != _term_numbers(term):
        return 0.0
    score = fuzz.ratio(term, window)
    return score if score >= SCORE_FLOOR else 0.0


def _numbers(text: str) -> list[str]:
    """Numbers in text, number words as digits ("six o clock" and "6 o clock" both give ["6"])."""
    return [str(_NUMBER_WORDS.get(n, n)) for n in _NUMBERS.findall(f" {text} ")]


@lru_cache(maxsize=65536)
def _term_numbers(term: str) -> list[str]:
    return _numbers(term)


def best_score(variants: tuple[str, ...], text: str) -> float:
    """The best :func:`term_score` over a term's normalised variants (stops at an exact hit)."""
    best = 0.0
    for variant in variants:
        score = term_score(variant, text)
        if score >= 100.0:
            return 100.0
        best = max(best, score)
    return best


def clock_hours(text: str) -> set[int]:
    """Clock positions (1–12) named in normalised text, digits or words."""
    return {int(h) if h.isdigit() else _NUMBER_WORDS[h] for h in CLOCK_RE.findall(text)}


def mentioned_types(text: str) -> set[str]:
    """Defect types named in normalised text, longest phrase first (so "edge ring" is not also "ring").

    A bare "center" used as a place ("a cluster near the center") is not a Center pattern: it is dropped when
    the text also names another type and "center" only appears after a preposition.
    """
    found = {_TYPE_OF[m] for m in _TYPE_RE.findall(text)}
    if "Center" in found and len(found) > 1 and _LOCATION_CONTEXT.search(text):
        bare_only = all(p == "center" for p in _TYPE_RE.findall(text) if _TYPE_OF[p] == "Center")
        if bare_only:
            found.discard("Center")
    if "none" in found and len(found) > 1:
        found.discard("none")  # "no other defect" next to a named pattern
    return found


def yes_no(text: str) -> bool | None:
    """The answer's verdict: its first word when that is yes/no (unless the other one follows within six words),
    else the only yes/no word in it; None when unclear."""
    words = text.split()
    if words and words[0] in ("yes", "no"):
        first_clause = set(text.split(" yes ")[0].split()) | set(words[:6])
        if {"yes", "no"} <= first_clause:
            return None  # "Yes, no, ..." hedges both ways
        return words[0] == "yes"
    said = set(_YES_NO_RE.findall(text))
    if len(said) == 1:
        return said.pop() == "yes"
    return None


def type_f1(predicted: set[str], labels: set[str]) -> float:
    """Multi-label F1 of the types named versus the item's labels (both empty counts as a match)."""
    if not predicted and not labels:
        return 1.0
    true_positive = len(predicted & labels)
    if true_positive == 0:
        return 0.0
    precision, recall = true_positive / len(predicted), true_positive / len(labels)
    return 2 * precision * recall / (precision + recall)


def similarity(a: str, b: str) -> float:
    """Character-level similarity of two normalised texts, 0–100 (for echo detection)."""
    return fuzz.ratio(a, b)
