"""Comparing a reading with a wafer's truth, slot by slot: credit for asked slots, contradictions, extras."""
from __future__ import annotations

from dataclasses import dataclass

from .explanation import Explanation
from .reader import Claim, Reading
from .truth import (CLOCK_DIRECTION_CREDIT, CLOCK_NEAR, DIRECTION_HOURS, PATTERN_ZONES, SlotTruth, WaferTruth,
                    clock_distance)

#: slots where a value that fits no component is an extra (hedging); density and texture have partial credit
EXTRA_SLOTS = ("zone", "extent", "shape")
#: slots whose contradictions count only when the question asks for them (answers describe background density)
ASKED_ONLY = ("density", "texture")
#: a stated failing share ("about 10% of dies") contradicts when it is further than both of these from the truth
SHARE_TOLERANCE_ABS = 0.05
SHARE_TOLERANCE_REL = 0.4
#: a process-step component named only through one of its equipment categories (no cause) earns this much
EQUIPMENT_ONLY = 0.5

#: a fact only implied by a pattern name ("Edge-Ring" for "which zone?") earns this share of the credit, unless the
#: answer also states the slot explicitly and rightly
IMPLIED_CREDIT = 0.5
#: what a stated shape says about the extent as well ("a ring" is symmetric, "a line" linear)
IMPLIED_EXTENT = {"ring": "symmetric", "line": "linear", "blob": "localized"}
#: the implied extents that can contradict ("cluster" is also a verb: "failures cluster along the rim")
CONTRADICTING_IMPLIED_EXTENT = ("ring", "line")


@dataclass(frozen=True)
class SlotResult:
    focus: tuple[str, ...]
    best: tuple[float, ...]  # per graded slot: the asked ones, then the others of ``also``
    mean: tuple[float, ...]
    weights: tuple[float, ...]  # per graded slot
    contradictions: tuple[str, ...]
    hedges: tuple[str, ...]  # contradicting values stated beside a true value of the same slot (half weight)
    extras: tuple[str, ...]
    explanation: Explanation
    aside: frozenset[Claim]  # density statements about a clean zone's background, set aside (_beside_clean_zones)


def _stated_claims(reading: Reading, slot: str, noise_is_pattern: bool = False,
                   aside: frozenset[Claim] = frozenset()) -> list[tuple[str, bool]]:
    """(value, only implied by a pattern name) of each statement of ``slot`` (for a place or a shape, not those
    about background noise: "a few isolated dies in the center", unless ``noise_is_pattern``: a Random or normal
    wafer's scatter is what it shows; nor those in ``aside``)."""
    claims = [c for c in reading.claims if c.slot == slot and c.said and c not in aside]
    out = [(c.value, c.implied) for c in (claims if noise_is_pattern else _foreground(claims))]
    if slot == "extent" and not any(not implied for _, implied in out):
        out += [(IMPLIED_EXTENT[v], implied) for v, implied in _stated_claims(reading, "shape", noise_is_pattern)
                if v in IMPLIED_EXTENT]
    return out


def _foreground(claims: list) -> list:
    """A slot's statements about the pattern: those about background noise ("a few isolated dies in the center")
    are left out when the answer says something else about the slot (alone, they describe the map: a Random or
    normal wafer's noise is its pattern)."""
    pattern = [c for c in claims if not c.background]
    return pattern or claims


def _stated(reading: Reading, slot: str) -> list[str]:
    return list(dict.fromkeys(v for v, _ in _stated_claims(reading, slot)))


def _precision(stated: list[str], fits: frozenset[str], partial: dict[str, float]) -> float:
    """Share of the distinct values stated that fit the wafer: hedging with every value of a slot earns little. A
    neighbouring value (partly credited already) counts as its partial credit beside a true value, fully alone."""
    if not stated:
        return 1.0
    beside_true = any(v in fits for v in stated)
    return sum(1.0 if v in fits else partial.get(v, 0.0) if beside_true else float(v in partial)
               for v in stated) / len(stated)


def _hours(reading: Reading) -> list[int]:
    return [int(h) for h in reading.said("clock")]


def _component_sats(slot: str, reading: Reading, truth: WaferTruth,
                    aside: frozenset[Claim]) -> tuple[list[float], list[float], list[str]]:
    """Per component of ``slot``: the satisfaction (0–1, times the precision of what the answer states for the
    slot, leaving out the statements ``aside``), its weight and a label for the explanation."""
    if slot == "clock":
        hours, directions = _hours(reading), reading.said("clock_direction")
        sats = []
        for t in truth.clocks:
            sat = 1.0 if t in hours else CLOCK_NEAR if any(clock_distance(t, h) == 1 for h in hours) else 0.0
            if sat < CLOCK_DIRECTION_CREDIT and any(t in DIRECTION_HOURS[d] for d in directions):
                sat = CLOCK_DIRECTION_CREDIT
            sats.append(sat)
        return sats, _equal(sats), [f"clock: {t} o'clock" for t in truth.clocks]
    if slot == "process":
        equipment = set(reading.said("equipment"))
        patterns = sorted(truth.pattern_equipment) or sorted(t for t in truth.types if t == "none")
        sats = [1.0 if p in reading.cue_patterns else EQUIPMENT_ONLY if equipment & truth.pattern_equipment.get(p, set())
                else 0.0 for p in patterns]
        return sats, _equal(sats), [f"process: cause of {p}" for p in patterns]
    spec: SlotTruth = truth.slots[slot]
    claims = _stated_claims(reading, slot, truth.noise_is_pattern, aside)
    explicit = {v for v, implied in claims if not implied}
    stated = list(dict.fromkeys(v for v, _ in claims))
    sats = []
    engaged = bool(explicit & (frozenset().union(*spec.components) | frozenset(spec.partial)))
    mixture = len(spec.patterns) > 1
    placed = set(reading.said("zone")) | set(reading.types) if mixture else set()
    for i, component in enumerate(spec.components):
        said_here = component & set(stated) if mixture else frozenset()
        if said_here and not _placed(spec.patterns[i], placed) and said_here <= frozenset().union(
                *(c for j, c in enumerate(spec.components) if j != i)):
            sats.append(0.0)  # "localized" fits both a Center and an Edge-Loc: which one is it about?
        elif component & explicit:
            sats.append(1.0)
        elif component & set(stated):
            sats.append(1.0 if engaged else IMPLIED_CREDIT)
        else:
            sats.append(max([spec.partial.get(v, 0.0) for v in stated], default=0.0))
    fits = frozenset().union(*spec.components)
    if slot == "shape":
        fits |= {"scatter"}  # background noise is on every map
    if slot == "equipment":
        fits |= frozenset().union(*truth.pattern_equipment.values()) if truth.pattern_equipment else frozenset()
    precision = _precision(stated, fits, spec.partial)
    return [s * precision for s in sats], spec.weight_list(), [f"{slot}: {' or '.join(sorted(c))}"
                                                               for c in spec.components]


def _placed(pattern: str, placed: set[str]) -> bool:
    """Whether an answer's zones and pattern names place a mixture's ``pattern`` (patterns anywhere always are)."""
    zones = PATTERN_ZONES.get(pattern)
    return zones is None or pattern in placed or bool(zones & placed)


def _equal(items: list) -> list[float]:
    return [1.0 / len(items)] * len(items) if items else []


def _known(slot: str, truth: WaferTruth) -> bool:
    if slot == "clock":
        return bool(truth.clocks)
    if slot == "process":
        return bool(truth.pattern_equipment) or "none" in truth.types
    return truth.slots[slot].known


def _contradictions(reading: Reading, truth: WaferTruth, judged: tuple[str, ...], asked: tuple[str, ...],
                    aside: frozenset[Claim]) -> tuple[list[str], list[str], list[str]]:
    """(contradictions, hedges, phrases): a wrong value stated beside a true one of the same slot is a hedge; a
    statement about background noise (or ``aside``), or a density or texture the question did not ask for, is
    neither."""
    found, hedges, phrases = [], [], []
    said_claims = [c for c in reading.claims if c.said and not c.implied and c not in aside
                   and (truth.noise_is_pattern or not c.background)]
    for slot in judged:
        if slot == "clock" and truth.clocks and "Scratch" not in truth.types:  # a scratch runs any way
            for claim in (c for c in said_claims if c.slot == "clock"):
                if all(clock_distance(int(claim.value), t) >= 3 for t in truth.clocks):
                    found.append(f"clock: {claim.value} o'clock")
                    phrases.append(reading.text[claim.start:claim.end].strip())
            for claim in (c for c in said_claims if c.slot == "clock_direction"):
                if all(clock_distance(h, t) >= 2 for h in DIRECTION_HOURS[claim.value] for t in truth.clocks):
                    found.append(f"clock: {claim.value}")
                    phrases.append(reading.text[claim.start:claim.end].strip())
            continue
        if slot not in truth.slots or (slot in ASKED_ONLY and slot not in asked):
            continue
        spec = truth.slots[slot]
        stated = {c.value for c in said_claims if c.slot == slot}
        if slot == "extent":
            stated |= {IMPLIED_EXTENT[c.value] for c in said_claims
                       if c.slot == "shape" and c.value in CONTRADICTING_IMPLIED_EXTENT}
        hedged = any(component & stated for component in spec.components)
        for value in sorted(stated & spec.contradicting):
            (hedges if hedged else found).append(f"{slot}: {value}")
            phrases += [reading.text[c.start:c.end].strip() for c in said_claims if c.slot == slot and c.value == value]
    if "equipment" in judged:
        for phrase in truth.avoid_phrases:
            if f" {phrase} " in f" {reading.text}":
                found.append(f"cause: {phrase}")
                phrases.append(phrase)
    for t in truth.contradicting_types(reading.pattern_names, reading.labelled):
        found.append(f"type: {t}")
    if truth.fail_ratio > 0:
        found += [f"fail share: {100 * share:g}% (true {100 * truth.fail_ratio:.0f}%)"
                  for share in reading.shares if not _share_fits(share, truth)]
    return found, hedges, phrases


def _share_fits(share: float, truth: WaferTruth) -> bool:
    return abs(share - truth.fail_ratio) <= max(SHARE_TOLERANCE_ABS, SHARE_TOLERANCE_REL * truth.fail_ratio)


def verdict_support(reading: Reading, truth: WaferTruth, slots: tuple[str, ...],
                    aside: frozenset[Claim]) -> tuple[float, list[str]]:
    """How well a yes/no answer's explanation backs its verdict: the best satisfaction (0–1) of any component of
    ``slots`` the wafer has a truth for (a failing share stated within tolerance, or a value the wafer contradicts
    stated as absent, "the outer zone is clean", counts fully), and the facts it states rightly. ``aside``: the
    statements :func:`slot_results` set aside."""
    best, matched = 0.0, []
    for slot in (s for s in slots if _known(s, truth)):
        sats, weights, labels = _component_sats(slot, reading, truth, aside)
        best = max([best, *sats])
        matched += [label for sat, label in zip(sats, labels) if sat >= 1.0]
        if slot in truth.slots:
            denied = sorted({c.value for c in reading.claims if c.slot == slot and c.negated}
                            & truth.slots[slot].contradicting)
            best = 1.0 if denied else best
            matched += [f"{slot}: not {value}" for value in denied]
    fitting = [share for share in reading.shares if truth.fail_ratio > 0 and _share_fits(share, truth)]
    if fitting:
        best = 1.0
        matched.append(f"fail share: {100 * fitting[0]:g}%")
    return best, matched


def _beside_clean_zones(reading: Reading, truth: WaferTruth) -> frozenset[Claim]:
    """Density statements sharing a clause with a zone the wafer leaves clean ("while the centre is sparse"): about
    that zone's background, not the pattern."""
    clean = truth.slots["zone"].contradicting

    def clause(pos: int) -> int:
        return next((a for a, b, _ in reading.spans if a <= pos < b), -1)

    zones = {clause(c.start) for c in reading.claims if c.slot == "zone" and c.value in clean}
    return frozenset(c for c in reading.claims if c.slot == "density" and zones and clause(c.start) in zones)


def _extras(reading: Reading, truth: WaferTruth, judged: tuple[str, ...]) -> list[str]:
    """Values stated that fit no component without contradicting: extra zones, shapes, extents; for a cause,
    equipment categories the wafer's patterns do not implicate and causes of patterns it does not have."""
    extras = []
    if "equipment" in judged:
        spec = truth.slots["equipment"]
        fits = frozenset().union(*spec.components) | spec.contradicting
        fits |= frozenset().union(*truth.pattern_equipment.values()) if truth.pattern_equipment else frozenset()
        extras += [f"equipment: {v}" for v in reading.said("equipment") if v not in fits]
        extras += [f"cause of {p}" for p in _other_causes(reading, truth)]
    for slot in (s for s in EXTRA_SLOTS if s in judged and truth.slots[s].known):
        spec = truth.slots[slot]
        fits = frozenset().union(*spec.components) | spec.contradicting | set(spec.partial)
        if slot == "shape":
            fits |= {"scatter"}  # background noise is on every map
        extras += [f"{slot}: {v}" for v in _stated(reading, slot) if v not in fits]
    return extras


def _other_causes(reading: Reading, truth: WaferTruth) -> list[str]:
    """Patterns the wafer lacks whose causes the answer names, leaving out those named only by words that already
    name a cause of one of its patterns ("particles" is a cause of Loc and of Random: on a Loc wafer it names Loc's)."""
    explained = frozenset().union(*(w for p in reading.cue_patterns & truth.types for w in reading.cue_words[p]))
    return [p for p in sorted(reading.cue_patterns - truth.types)
            if any(not words <= explained for words in reading.cue_words[p])]


def slot_results(reading: Reading, truth: WaferTruth, focus: tuple[str, ...], fallback: tuple[str, ...],
                 judged: tuple[str, ...], also: tuple[str, ...] = (), asked_weight: float = 1.0) -> SlotResult:
    """Credit per asked slot (the ``fallback`` slots the wafer has a truth for when no asked one has), weighing
    ``asked_weight`` each, and per slot of ``also`` the wafer has a truth for and the question did not ask, weighing
    1; the contradictions and extras over the ``judged`` slots."""
    asked = tuple(s for s in focus if _known(s, truth)) or tuple(s for s in fallback if _known(s, truth))
    graded = asked + tuple(s for s in also if s not in asked and _known(s, truth))
    best, mean, matched, partial, missed = [], [], [], [], []
    aside = _beside_clean_zones(reading, truth)
    for slot in graded:
        sats, weights, labels = _component_sats(slot, reading, truth, aside)
        top = max(weights, default=1.0)
        best.append(max((s * w / top for s, w in zip(sats, weights)), default=0.0))
        mean.append(sum(s * w for s, w in zip(sats, weights)))
        for sat, label in zip(sats, labels):
            (matched if sat >= 1.0 else partial if sat > 0 else missed).append(label)
    contradictions, hedges, bad_phrases = _contradictions(reading, truth, judged, asked, aside)
    extras = _extras(reading, truth, judged)
    good = [reading.text[c.start:c.end].strip() for c in reading.claims if c.said and c.slot in graded + ("clock_direction",)]
    explanation = Explanation(matched=matched, partial=partial, contradicted=contradictions, hedged=hedges,
                              missed=missed,
                              extra=extras, phrases=list(dict.fromkeys(good)),
                              contradicting_phrases=list(dict.fromkeys(bad_phrases)))
    weights = tuple(asked_weight if slot in asked else 1.0 for slot in graded)
    return SlotResult(asked, tuple(best), tuple(mean), weights, tuple(contradictions), tuple(hedges), tuple(extras),
                      explanation, aside)
