"""Text matching for the rule scorer: normalisation, term scores, negation, defect-type mentions, yes/no, clocks.

Every function here works on *normalised* text (:func:`normalise`): lower case, American spelling, every run of
non-alphanumerics turned into one space, a sentence end (``.``, ``;``, ``!``, ``?`` before a space) kept as the word
``|``, padded with a space at both ends so that ``f" {term} " in text`` is a whole-word test.
``"Edge-Ring at 4 o'clock. Dense"`` becomes ``" edge ring at 4 o clock | dense "``.

:func:`term_score` decides how well an *open* phrase (a cause, a process step) appears in an answer (0–100): an
exact, un-negated whole-word hit (or its plural) scores 100; otherwise terms of at least :data:`MIN_FUZZY_LEN`
characters are compared with ``fuzz.ratio`` to every run of as many whole words in the answer whose words each start
with the same letter as the term's and differ from them in length by at most :data:`FUZZY_LENGTH_SLACK` (so
"clusterd" matches "clustered", but "deposition" never matches "position" nor "linear" "near"); the score only
stands when the run carries the same numbers as the term. Closed-vocabulary facts (zones, clock positions, density
levels, equipment, ...) are matched exactly by :mod:`wafersage.harness.scoring.claims`, never fuzzily.

A fact is *negated* (:func:`is_negated`) when "no", "not", "without", "n't", "rather than", ... stand at most
:data:`NEGATION_WINDOW` words before it in the same sentence; a negated phrase never counts as said.
"""
from __future__ import annotations

import re
from functools import lru_cache

from rapidfuzz import fuzz

#: fuzzy scores below this are reported as 0; the lowest fuzzy threshold calibration may choose
SCORE_FLOOR = 50.0
#: shorter terms (in characters) match only exactly
MIN_FUZZY_LEN = 5
#: a fuzzy word may differ from the term's word by this share of its length (at least one character)
FUZZY_LENGTH_SLACK = 0.2
#: words that negate a phrase named within NEGATION_WINDOW words after them ("t" is what normalise leaves of "n't")
NEGATIONS = frozenset({"no", "not", "never", "without", "nor", "neither", "t", "lacks", "lacking"})
NEGATION_PAIRS = frozenset({("rather", "than"), ("instead", "of"), ("free", "of"), ("other", "than")})
NEGATION_WINDOW = 4
_CLAUSE_BREAKS = frozenset({"|", "but", "while", "whereas"})

_SPELLING = {
    "centre": "center", "centred": "centered", "centres": "centers",
    "localised": "localized", "localise": "localize", "doughnut": "donut", "doughnuts": "donuts",
    "colour": "color", "grey": "gray", "nearfull": "near full", "edgering": "edge ring", "edgeloc": "edge loc",
    "oclock": "o clock",
}
_SPELLING_RE = re.compile(r"\b(" + "|".join(sorted(_SPELLING, key=len, reverse=True)) + r")\b")
_NON_ALNUM = re.compile(r"[^a-z0-9|]+")
_SENTENCE_END = re.compile(r"[.;!?]+(?=\s|$)|\|")

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
    marked = _SENTENCE_END.sub(lambda m: " | " if m.group(0) != "|" else " ", lowered)
    joined = " ".join(_NON_ALNUM.sub(" ", marked).split())
    while "| |" in joined:
        joined = joined.replace("| |", "|")
    return " " + joined.removeprefix("|").removesuffix("|").strip() + " "


def is_negated(text: str, start: int) -> bool:
    """Whether the phrase starting at character ``start`` of normalised ``text`` is negated (see module doc); a
    leading yes/no verdict ("No, the failures ...") negates nothing."""
    if not _has_negation(text):
        return False
    reach = max(0, start - _NEGATION_CHARS)
    before = text[reach:start].split()
    if reach and before:
        before = before[1:]  # possibly cut
    leading_verdict = not reach and bool(before) and before[0] in ("yes", "no")
    window: list[str] = []
    for index in range(len(before) - 1, max(-1, len(before) - 1 - NEGATION_WINDOW), -1):
        if before[index] in _CLAUSE_BREAKS or (index == 0 and leading_verdict):
            break
        window.append(before[index])
    window.reverse()
    return any(w in NEGATIONS for w in window) or any(pair in NEGATION_PAIRS for pair in zip(window, window[1:]))


_NEGATION_CHARS = 100  # enough text before a phrase to hold NEGATION_WINDOW words
_NEGATION_WORDS = tuple(f" {w} " for w in NEGATIONS | {a for a, _ in NEGATION_PAIRS})


@lru_cache(maxsize=4096)
def _has_negation(text: str) -> bool:
    return any(w in text for w in _NEGATION_WORDS)


def exact_hit(term: str, text: str) -> bool:
    """Whether normalised ``term`` (or its plural) occurs in ``text`` as whole words, at least once un-negated."""
    for suffix in ("", "s", "es"):
        needle = f" {term}{suffix} "
        at = text.find(needle)
        while at >= 0:
            if not is_negated(text, at + 1):
                return True
            at = text.find(needle, at + 1)
    return False


def term_score(term: str, text: str) -> float:
    """How well normalised open phrase ``term`` (no padding) appears in normalised ``text``: 100 exact, else fuzzy
    over whole words of similar length, or 0 (see module doc)."""
    if not term:
        return 0.0
    if exact_hit(term, text):
        return 100.0
    if len(term) < MIN_FUZZY_LEN:
        return 0.0
    return _fuzzy_words(term, text)


@lru_cache(maxsize=4096)
def _word_spans(text: str) -> tuple[tuple[str, int], ...]:
    spans, at = [], 0
    for word in text.split():
        at = text.index(f" {word} ", at) + 1
        spans.append((word, at))
        at += len(word)
    return tuple(spans)


def _similar_word(a: str, b: str) -> bool:
    return a[:1] == b[:1] and abs(len(a) - len(b)) <= max(1, int(FUZZY_LENGTH_SLACK * len(a)))


def _fuzzy_words(term: str, text: str) -> float:
    parts = term.split()
    spans = _word_spans(text)
    numbers = _term_numbers(term)
    best = 0.0
    first = parts[0]
    for i in range(len(spans) - len(parts) + 1):
        if spans[i][0][:1] != first[:1]:
            continue
        window = spans[i:i + len(parts)]
        if not all(_similar_word(p, w) for p, (w, _) in zip(parts, window)):
            continue
        phrase = " ".join(w for w, _ in window)
        score = fuzz.ratio(term, phrase, score_cutoff=max(best, SCORE_FLOOR))
        if score > best and _numbers(phrase) == numbers and not is_negated(text, window[0][1]):
            best = score
    return best


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


@lru_cache(maxsize=4096)
def word_ngrams(text: str, longest: int = 4) -> frozenset[str]:
    """Every run of 1..``longest`` consecutive words of normalised ``text`` (whole-word phrase lookup by set)."""
    words = text.split()
    return frozenset(" ".join(words[i:i + n]) for n in range(1, longest + 1) for i in range(len(words) - n + 1))


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
