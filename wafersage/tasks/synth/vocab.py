"""The words of the benchmark: spatial, morphology and pattern vocabulary with synonyms.

Rubric terms, reference answers and the question leak check all draw on this one table, so a term the rubric
asks for is always phrased the way the answers phrase it. Every :class:`~wafersage.tasks.bench.schema.Term` here is
built once at import time and shared (they are frozen).

Matching note for scorers: clock terms differ from each other by one word or digit ("3 o'clock" vs
"9 o'clock"), so they should be matched exactly (:data:`CLOCK_TERM_RE` finds them), not fuzzily.
"""
from __future__ import annotations

import re

from ..geometry.measure import QUADRANTS
from ..bench.schema import Term
from ..maps.wafer import LABELS

NUMBER_WORDS = ("twelve", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven")

#: direction on the wafer of each clock position (12 o'clock at the top)
CLOCK_DIRECTION: dict[int, str] = {
    12: "top", 1: "upper right", 2: "upper right", 3: "right side", 4: "lower right", 5: "lower right",
    6: "bottom", 7: "lower left", 8: "lower left", 9: "left side", 10: "upper left", 11: "upper left",
}


def _clock_term(k: int) -> Term:
    direction = CLOCK_DIRECTION[k]
    synonyms = [f"{NUMBER_WORDS[k % 12]} o'clock", f"{k}:00", f"{k} o’clock"]
    if " " in direction:  # "upper right" -> also "upper-right" and "top right"
        synonyms += [direction.replace(" ", "-"), direction.replace("upper", "top").replace("lower", "bottom")]
    else:
        synonyms.append(direction)
    return Term(term=f"{k} o'clock", synonyms=synonyms)


#: clock position (1..12) -> must-hit term, e.g. "4 o'clock" with "four o'clock", "lower right"
CLOCK_TERMS: dict[int, Term] = {k: _clock_term(k) for k in range(1, 13)}

#: clock terms to avoid for a position: the canonical form and its number-word form
CLOCK_AVOID: dict[int, tuple[str, str]] = {k: (f"{k} o'clock", f"{NUMBER_WORDS[k % 12]} o'clock") for k in range(1, 13)}

#: finds clock positions written with digits or number words; group 1 is the number
CLOCK_TERM_RE = re.compile(
    r"\b(1[0-2]|[1-9]|" + "|".join(NUMBER_WORDS) + r")\s*(?:o['’]\s?clock|:00)", re.IGNORECASE
)

#: radial zone -> must-hit term (names as in :data:`wafersage.tasks.geometry.measure.ZONES`)
ZONE_TERMS: dict[str, Term] = {
    "center": Term(term="center", synonyms=["centre", "central", "wafer center"]),
    "middle": Term(term="middle", synonyms=["mid-radius", "intermediate radius", "middle region"]),
    "edge": Term(term="edge", synonyms=["periphery", "peripheral", "outer rim", "wafer edge"]),
}

#: radial zone -> phrases an answer contradicting the zone would use
ZONE_AVOID: dict[str, tuple[str, ...]] = {
    "center": ("center", "centre"),
    "middle": ("mid-radius",),
    "edge": ("edge", "periphery"),
}

#: quadrant (names as in :data:`wafersage.tasks.geometry.measure.QUADRANTS`) -> term
QUADRANT_TERMS: dict[str, Term] = {
    q: Term(term=f"{q.replace('-', ' ')} quadrant", synonyms=[q, q.replace("-", " "),
                                                             q.replace("upper", "top").replace("lower", "bottom")])
    for q in QUADRANTS
}

#: spatial distribution -> must-hit term; the keys are what rubrics store in ``distribution``
DISTRIBUTION_TERMS: dict[str, Term] = {
    "radially symmetric": Term(term="radially symmetric", synonyms=[
        "rotationally symmetric", "concentric", "all around the wafer"]),
    "localized": Term(term="localized", synonyms=["localised", "local", "confined to one region", "concentrated"]),
    "linear": Term(term="linear", synonyms=["line-shaped", "straight track", "elongated"]),
    "wafer-wide": Term(term="wafer-wide", synonyms=[
        "across the whole wafer", "across the entire wafer", "throughout the wafer", "over the whole wafer",
        "uniformly distributed", "everywhere"]),
    "sparse": Term(term="isolated dies", synonyms=["isolated", "a few isolated", "sparse"]),
}

#: distribution -> wording that contradicts it
DISTRIBUTION_AVOID: dict[str, tuple[str, ...]] = {
    "radially symmetric": ("one side only",),
    "localized": ("wafer-wide", "across the whole wafer"),
    "linear": ("wafer-wide", "across the whole wafer"),
    "wafer-wide": ("confined to one region", "single cluster"),
    "sparse": ("wafer-wide", "large cluster"),
}

#: pattern -> morphology must-hit term naming the pattern
PATTERN_TERMS: dict[str, Term] = {
    "Center": Term(term="center cluster", synonyms=["central cluster", "centre cluster", "center pattern", "bullseye"]),
    "Donut": Term(term="donut", synonyms=["doughnut", "donut-shaped", "annulus"]),
    "Edge-Loc": Term(term="edge-localized cluster", synonyms=["edge-loc", "edge loc", "edge cluster",
                                                             "localized edge cluster"]),
    "Edge-Ring": Term(term="edge ring", synonyms=["edge-ring", "ring along the edge", "peripheral ring",
                                                  "circumferential ring"]),
    "Loc": Term(term="localized cluster", synonyms=["local cluster", "isolated cluster", "loc pattern"]),
    "Near-full": Term(term="near-full", synonyms=["near full", "nearly full", "almost the entire wafer",
                                                  "whole-wafer failure"]),
    "Random": Term(term="random", synonyms=["randomly scattered", "random scatter", "scattered", "spotty"]),
    "Scratch": Term(term="scratch", synonyms=["linear scratch", "streak", "scratch line"]),
    "none": Term(term="no defect pattern", synonyms=["no systematic pattern", "normal wafer", "no pattern",
                                                     "defect-free"]),
}

#: pattern -> morphology must-hit term for the geometric structure it forms
STRUCTURE_TERMS: dict[str, Term] = {
    "Center": Term(term="round blob", synonyms=["compact round blob", "circular blob", "round patch", "disc"]),
    "Donut": Term(term="annular band", synonyms=["ring-shaped band", "band around an intact middle"]),
    "Edge-Ring": Term(term="thin band along the circumference", synonyms=[
        "circumferential band", "band along the rim", "thin band"]),
    "Edge-Loc": Term(term="arc-shaped patch", synonyms=["arc", "crescent", "patch at the rim"]),
    "Loc": Term(term="compact blob", synonyms=["blob", "compact patch", "clump"]),
    "Scratch": Term(term="thin continuous track", synonyms=["thin line", "narrow line", "continuous track",
                                                           "curved line"]),
    "Random": Term(term="isolated dies", synonyms=["isolated failing dies", "individual dies", "single dies"]),
    "Near-full": Term(term="near-complete coverage", synonyms=["almost complete coverage",
                                                               "covers nearly all dies"]),
    "none": Term(term="a few isolated dies", synonyms=["few isolated dies", "isolated dies"]),
}

#: pattern -> the phrase a rubric lists in must-avoid when the pattern is absent and contradicted
PATTERN_AVOID: dict[str, tuple[str, ...]] = {
    "Center": ("center cluster",),
    "Donut": ("donut", "doughnut"),
    "Edge-Loc": ("edge-loc",),
    "Edge-Ring": ("edge ring", "edge-ring"),
    "Loc": ("localized cluster",),
    "Near-full": ("near-full", "nearly full"),
    "Random": ("random",),
    "Scratch": ("scratch",),
}

#: absent-pattern avoid phrases that a present pattern's correct description may legitimately share wording with
COMPATIBLE_WORDING: dict[str, frozenset[str]] = {
    "Edge-Loc": frozenset({"Loc"}),
    "Loc": frozenset({"Edge-Loc"}),
    "Random": frozenset({"Near-full"}),
    "Near-full": frozenset({"Random"}),
}

#: how defect types are named in answers (readable, with the WM-811K class in parentheses where it differs)
TYPE_NAMES: dict[str, str] = {
    "Center": "Center", "Donut": "Donut", "Edge-Loc": "Edge-Loc (edge-localized)", "Edge-Ring": "Edge-Ring",
    "Loc": "Loc (localized)", "Near-full": "Near-full", "Random": "Random", "Scratch": "Scratch",
    "none": "none (no defect pattern)",
}

#: density level -> must-hit term
DENSITY_TERMS: dict[str, Term] = {
    "dense": Term(term="dense", synonyms=["densely packed", "high density", "solid", "compact"]),
    "moderate": Term(term="moderate density", synonyms=["moderately dense", "medium density", "partially filled"]),
    "sparse": Term(term="sparse", synonyms=["low density", "thinly spread", "few failing dies"]),
}
DENSITY_AVOID: dict[str, tuple[str, ...]] = {"dense": ("sparse",), "moderate": (), "sparse": ("densely packed",)}

#: words that name or hint a defect type; a question must contain none of them (see ``vqa.check_question``)
HINT_WORDS: dict[str, tuple[str, ...]] = {
    "Center": ("center", "centre", "central", "centered", "centred", "bullseye", "bull's-eye", "core"),
    "Donut": ("donut", "doughnut", "ring", "annular", "annulus", "mid-radius", "hole"),
    "Edge-Loc": ("edge", "edge-loc", "edgeloc", "edge_loc", "periphery", "peripheral", "rim", "border",
                 "local", "localized", "localised", "cluster"),
    "Edge-Ring": ("edge", "edge-ring", "edgering", "edge_ring", "ring", "circumferential", "periphery",
                  "peripheral", "rim", "border", "annular"),
    "Loc": ("loc", "local", "localized", "localised", "cluster", "blob", "spot"),
    "Near-full": ("near-full", "near full", "nearly full", "near_full", "nearfull", "full", "whole wafer",
                  "entire wafer", "almost all", "global"),
    "Random": ("random", "randomly", "scattered", "scatter", "sporadic", "spray", "speckle"),
    "Scratch": ("scratch", "line", "linear", "streak", "straight", "elongated", "track"),
    "none": ("normal", "defect-free", "no defect", "no pattern", "clean", "healthy"),
}


def _hint_regex(words: tuple[str, ...]) -> re.Pattern[str]:
    alternatives = sorted({re.escape(w).replace(r"\ ", r"[\s_-]+") for w in words}, key=len, reverse=True)
    return re.compile(r"\b(" + "|".join(alternatives) + r")(?:s|es)?\b", re.IGNORECASE)


#: label -> compiled matcher of its hint words (compiled once)
HINT_RE: dict[str, re.Pattern[str]] = {label: _hint_regex(HINT_WORDS[label]) for label in LABELS}
