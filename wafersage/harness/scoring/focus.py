"""Which facts a question asks for: its *focus*, a tuple of slots.

Items written by the built-in templates carry their focus (``VQAItem.focus``). For other questions (written by a
model, or from a benchmark made before focus was recorded) it is read from the category and the wording: the
first rules that match name the slots; a question that matches none asks for its category's default.
"""
from __future__ import annotations

import re
from functools import lru_cache

SLOTS = ("zone", "clock", "extent", "shape", "density", "texture", "equipment", "process")
DIMENSION_SLOTS = {"spatial": ("zone", "clock", "extent"), "morphology": ("shape", "density", "texture"),
                   "root_cause": ("equipment", "process")}
#: the slots whose contradictions an answer of each dimension pays for: what it says about the map, or the cause
JUDGED_SLOTS = {"spatial": DIMENSION_SLOTS["spatial"] + DIMENSION_SLOTS["morphology"],
                "morphology": DIMENSION_SLOTS["spatial"] + DIMENSION_SLOTS["morphology"],
                "root_cause": DIMENSION_SLOTS["root_cause"]}

#: dimensions whose answers are graded on every slot of the dimension the wafer has a truth for, the asked ones
#: weighing :data:`ASKED_WEIGHT` and the others 1: graders judge a location or a cause as a whole ("the edge zone"
#: for an arc at 2 o'clock is not all of it). Not morphology, whose answers describe background density and texture
#: beside the pattern: graded whole, rule and grade drift apart on the development sets.
GRADED_WHOLE = ("spatial", "root_cause")
ASKED_WEIGHT = 2.0

_RULES: dict[str, tuple[tuple[str, str], ...]] = {
    "spatial": (
        ("clock", r"clock|direction|quadrant|quarter|which side|angular|bearing"),
        ("zone", r"radial zone|inner|outer|distance from|how far|which part|(?<!clock positions, )where|locat|zone|"
                 r"region|radius"),
        ("extent", r"distribut|spread|symmetric|concentrated in one|one place|arrange|whole map|how .* (lie|sit)"),
    ),
    "morphology": (
        ("shape", r"shape|look like|geometr|structure|form\b|outline|figure"),
        ("density", r"dens|sparse|packed|how many .* fail|fraction"),
        ("texture", r"texture|grouped|apart from each other|together or apart|clustered or scattered|contiguous"),
    ),
    "root_cause": (
        ("equipment", r"equipment|tool|machine|chamber"),
        ("process", r"process step|step|\bcauses?\b|origin|why|produced|mechanism"),
    ),
}
_DEFAULT = {"spatial": ("zone", "extent"), "morphology": ("shape",), "root_cause": ("equipment", "process")}


@lru_cache(maxsize=4096)
def focus_from_question(category: str, question: str) -> tuple[str, ...]:
    """The slots ``question`` (of ``category``) asks for, read from its wording."""
    rules = _RULES.get(category)
    if rules is None:
        return ()
    text = question.lower()
    found = tuple(slot for slot, pattern in rules if re.search(pattern, text))
    return found or _DEFAULT[category]


def focus_of(category: str, question: str, recorded: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """The item's recorded focus, else the one read from its wording."""
    return tuple(recorded) if recorded else focus_from_question(category, question)
