"""The claim reader: what a free-text answer states about a wafer, as slot values with their scope.

:func:`read` turns an answer into a :class:`Reading`: every lexicon phrase found (:mod:`.lexicon`) as a
:class:`Claim` (slot, value, negated), clock positions (digits, words and ranges such as "1-2 o'clock"), defect
types named, failing shares ("about 12%"), the yes/no verdict and the root-cause cues that hold.

Scope: the answer is cut into clauses at sentence ends, commas, brackets and dashes and at "but", "while", "with",
"whereas", "although", "however". A clause opened by a connector ("rather than", "except", "apart from", "not",
...) is excluded: every claim in it is negated. Inside a clause a claim is negated when a negation word stands up to
four words before it ("no failures near the center"), an adjective such as "clean" or "passing" right before it
("a clean center"), or a predicate such as "is clean" or "are mostly passing" right after it; a negation carries
over a list ("neither the center nor the middle", "the center and middle zones are clean"). A negated claim is
never credited and never a contradiction.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import cached_property, lru_cache

from .lexicon import lexicon
from .matching import NUMBER_WORDS, SPELLING, SPELLING_RE, TYPE_ORDER, normalise, yes_no

_HOUR = r"(1[0-2]|[1-9]|" + "|".join(NUMBER_WORDS) + ")"
_CLOCK_RE = re.compile(rf"(?<![a-z0-9]){_HOUR} (?:(?:to|and|or|through) {_HOUR} )?o clock ")
_SHARE_RE = re.compile(r"(?<![a-z0-9.])(\d+(?:\.\d+)?) ?(?:%|percent) of (?:the |all |all the )?dies ")
#: words that mark a clause as describing background noise, not the pattern ("isolated dies in the center")
_BACKGROUND = re.compile(r"(?<![a-z0-9])(?:isolated|scatter\w*|sprinkl\w*|speckl\w*|single|stray|occasional|"
                         r"noise|background|random\w*|sporadic|handful|elsewhere|everywhere else|remainder|"
                         r"rest of the (?:wafer|map)|rest of the dies|a few|small fraction|minority|interior) ")
#: bare type names that count as a type only when capitalised ("Center" is a class, "the center" a place)
_CAPITALISED_ONLY = {"center": re.compile(r"\bCent(?:er|re)\b"), "random": re.compile(r"\bRandom\b")}
_BREAK_WORDS = frozenset({"but", "while", "whereas", "although", "though", "however", "with", "yet"})
_LIST_WORDS = frozenset({"and", "or", "nor", "the", "a", "an", "zone", "zones", "region", "regions", "radial",
                         "area", "areas", "part", "parts", "of", "wafer", "either", "both", "ring", "band", ","})
_TYPE_RE = re.compile(r"(?<![a-z0-9])(?:" + "|".join(re.escape(p) for p, _ in TYPE_ORDER) + r") ")
_TYPE_OF = dict(TYPE_ORDER)
#: type phrases that are also plain descriptions of a place or texture ("right of center", "random scatter")
_PLACE_WORDS = frozenset({"center", "random", "none", "normal", "annular", "annulus", "scratched"})
#: type phrases that describe what they name ("randomly scattered" states the scatter; "Edge-Ring" only implies a ring)
_DESCRIPTIVE_NAMES = _PLACE_WORDS | {"randomly scattered", "random distribution", "random failures", "random failure",
                                     "random defects", "random defect", "no pattern", "no systematic"}


#: "right of the center", "below the center", "0.6 of the radius from the midpoint": a direction or a distance from the
#: midpoint, not a claim that the center fails
_RELATIVE_TO = re.compile(r"(?:(?:left|right|above|below|north|south|east|west)(?: of)?|away from|outside|"
                          r"(?:radius|radii|distances?|way|out|in) from)(?: the)? $")
#: "Random" used as a class label: ending its sentence or clause ("Random."), or before "pattern", "class", ...
_RANDOM_LABEL = re.compile(r"random(?:\s*\||\s+(?:pattern|class|signature|type|label)\b)")
#: "a lower-centre cluster" is a cluster below the midpoint, not a Center pattern
_OFF_CENTER = re.compile(r"(?:lower|upper|left|right|off|below|above) $")
#: descriptive Loc phrases ("a localized cluster"): at the edge they describe an Edge-Loc
_LOC_DESCRIPTIONS = frozenset(p for p, label in TYPE_ORDER if label == "Loc" and " " in p)


def _background_after(text: str, end: int) -> bool:
    """Whether the rest of a density statement, up to the next break or list word, says it is about the background
    ("is sparse, a few percent, over the rest of the wafer")."""
    words = []
    stop = text.find("|", end)
    for word in text[end:stop if stop >= 0 else None].split():
        if word in ("and", "or") or word in _BREAK_WORDS:  # up to the next statement
            break
        words.append(word)
    return bool(_BACKGROUND.search(" ".join(words) + " "))


def _sparse_places(text: str, claims: list[Claim]) -> list[Claim]:
    """A place said to be sparse ("while the centre is sparse") is where the background is, not the pattern."""
    skip = lexicon().after_skip
    out = []
    for c in claims:
        if c.slot == "zone" and [w for w in text[c.end:c.end + 60].split()[:6] if w not in skip][:1] in (
                ["sparse"], ["sparsely"]):
            c = replace(c, background=True)
        out.append(c)
    return out


def _continues_background(text: str, spans: list[tuple[int, int, bool]], clause: tuple[int, int, bool]) -> bool:
    """A "with ..." clause goes on about what the clause before it describes ("the interior is sparse, with only a
    few dies failing")."""
    if not text[clause[0]:clause[1]].lstrip(" ,").startswith("with "):
        return False
    before = [span for span in spans if span[1] <= clause[0] and span[1] > span[0]]
    return bool(before) and bool(_BACKGROUND.search(text[before[-1][0]:before[-1][1]] + " "))


def _edge_clusters(text: str, spans: list[tuple[int, int, bool]], claims: list[Claim]) -> list[Claim]:
    """A descriptive Loc phrase in a clause that places it at the edge ("a localized cluster at the wafer edge")
    names an Edge-Loc."""
    out = []
    for c in claims:
        if c.slot == "type" and c.value == "Loc" and text[c.start:c.end].strip() in _LOC_DESCRIPTIONS:
            clause = _clause_of(spans, c.start)
            if any(o.slot == "zone" and o.value == "edge" and o.said and clause[0] <= o.start < clause[1]
                   for o in claims):
                c = replace(c, value="Edge-Loc")
        out.append(c)
    return out


@dataclass(frozen=True)
class Claim:
    slot: str  # zone, extent, clock_direction, density, texture, shape, equipment, clock, type
    value: str
    negated: bool
    start: int  # character offsets in the reading's text
    end: int
    background: bool = False  # in a clause about background noise ("a few isolated dies in the center")
    implied: bool = False  # only part of a pattern name ("edge" in "Edge-Ring"): yields to explicit statements

    @property
    def said(self) -> bool:
        return not self.negated


@dataclass(frozen=True)
class Reading:
    """Everything the reader took from one answer; ``text`` is the normalised answer the offsets refer to."""

    text: str
    claims: tuple[Claim, ...]
    types: frozenset[str]  # defect types named and not negated
    pattern_names: frozenset[str]  # types named by an explicit pattern name ("edge ring", "donut"), not negated
    verdict: bool | None
    shares: tuple[float, ...]  # failing shares stated, as fractions
    spans: tuple[tuple[int, int, bool], ...]  # clauses: (start, end, excluded)

    @cached_property
    def cue_words(self) -> dict[str, tuple[frozenset[str], ...]]:
        """Per pattern whose root-cause cues hold in an un-excluded clause, the words each holding cue matched (read
        on first use: causes only)."""
        return _cues(self.text, self.spans)

    @cached_property
    def cue_patterns(self) -> frozenset[str]:
        return frozenset(self.cue_words)

    @cached_property
    def labelled(self) -> frozenset[str]:
        """Background types named as the pattern's class label ("Random.", "a Random pattern"), not as scatter
        ("random point failures", "a background of Random failures")."""
        return frozenset({"Random"}) if any(
            c.slot == "type" and c.value == "Random" and c.said and not c.background
            and _RANDOM_LABEL.match(self.text, c.start) for c in self.claims) else frozenset()

    def said(self, slot: str) -> list[str]:
        """The values of ``slot`` stated and not negated (in order, repeats removed); what a pattern name implies
        ("edge" in "Edge-Ring") counts only when the answer states nothing explicit for the slot."""
        return list(dict.fromkeys(c.value for c in self.stated_claims(slot)))

    def stated_claims(self, slot: str) -> list[Claim]:
        said = [c for c in self.claims if c.slot == slot and c.said]
        explicit = [c for c in said if not c.implied]
        return explicit or said

    @property
    def empty(self) -> bool:
        return not self.text.strip(" |,")


def clean_text(answer: str) -> str:
    """Lower case, American spelling, ranges "1-2" as "1 to 2", "n't" as " not", clause marks kept as " | " (sentence
    end) and " , " (comma, bracket, dash), every other run of non-alphanumerics one space; words end with a space."""
    text = SPELLING_RE.sub(lambda m: SPELLING[m.group(1)], answer.lower())
    text = re.sub(r"(\d)\s*[-–—]\s*(\d)", r"\1 to \2", text)
    text = re.sub(r"n['’]t\b", " not", text)
    text = re.sub(r"(\d)\.(\d)", r"\1·\2", text)
    text = re.sub(r"[.;:!?]+(?=\s|$)", " | ", text)
    text = re.sub(r"[,()\[\]–—]|\s-\s", " , ", text)
    text = re.sub(r"[^a-z0-9|,%·]+", " ", text).replace("·", ".")
    return " ".join(text.split()) + " "


def _clause_spans(text: str) -> list[tuple[int, int, bool]]:
    """(start, end, excluded) of each clause; ``excluded`` when a connector opens it."""
    spans, start = [], 0
    cuts = [m.start() for m in re.finditer(r"(?:\| |, )", text)]
    cuts += [m.start() for m in re.finditer(r"(?<![a-z0-9])(?:" + "|".join(_BREAK_WORDS) + r") ", text)]
    cuts += [m.start() for m in lexicon().connectors.finditer(text)]
    for cut in sorted(set(cuts)) + [len(text)]:
        if cut > start:
            spans.append((start, cut))
        start = cut
    out = []
    for a, b in spans:
        piece = text[a:b].lstrip("|, ")
        offset = b - len(piece)
        opener = lexicon().connectors.match(piece)
        out.append((offset, b, bool(opener)))
    return out


def _words_between(text: str, a: int, b: int) -> list[str]:
    return text[a:b].split()


def _negated(text: str, clause: tuple[int, int, bool], start: int, end: int) -> bool:
    c_start, _, excluded = clause
    if excluded:
        return True
    before = text[c_start:start]
    words = before.split()
    lex = lexicon()
    window = " ".join(words[-4:]) + " "
    if lex.negate_before.search(window):
        return True
    if lex.negate_adjacent.search(" ".join(words[-2:]) + " "):
        return True
    return _negated_after(text[end:clause[1]])


def _negated_after(rest: str) -> bool:
    """Whether the words after a claim say it is clean ("... is almost entirely passing")."""
    lex = lexicon()
    words = rest.split()[:8]
    i = 0
    while i < len(words) and words[i] in lex.after_skip:
        i += 1
    return i < len(words) and bool(lex.negate_after.match(" ".join(words[i:]) + " "))


def _propagate(text: str, claims: list[Claim]) -> list[Claim]:
    """Carry a negation over a list of claims joined by list words ("no center or middle failures")."""
    out = list(claims)
    for i in range(1, len(out)):
        prev, cur = out[i - 1], out[i]
        gap = text[prev.start:cur.start].split()[1:]
        if prev.negated != cur.negated and len(gap) <= 4 and all(w in _LIST_WORDS for w in gap):
            if prev.negated:
                out[i] = replace(cur, negated=True)
    for i in range(len(out) - 2, -1, -1):  # "the center and middle zones are clean": back from the negated one
        nxt, cur = out[i + 1], out[i]
        gap = text[cur.start:nxt.start].split()[1:]
        if nxt.negated and not cur.negated and len(gap) <= 3 and all(w in _LIST_WORDS for w in gap) \
                and _negated_after(text[nxt.end:nxt.end + 80]):
            out[i] = replace(cur, negated=True)
    return out


def _clause_of(spans: list[tuple[int, int, bool]], pos: int) -> tuple[int, int, bool]:
    for span in spans:
        if span[0] <= pos < span[1]:
            return span
    return (0, len(spans and spans[-1][1] or 0), False)


def _hour(token: str) -> int:
    return int(token) if token.isdigit() else NUMBER_WORDS[token]


@lru_cache(maxsize=8192)
def read(answer: str) -> Reading:
    """Read ``answer`` (cached by its text)."""
    text = clean_text(answer or "")
    spans = _clause_spans(text)
    raw: list[tuple[str, str, int, int]] = []
    for slot, matcher in lexicon().slots.items():
        raw += [(slot, value, a, b) for a, b, value in matcher.find(text)]
    for m in _CLOCK_RE.finditer(text):
        raw.append(("clock", str(_hour(m.group(1))), m.start(), m.end()))
        if m.group(2):
            raw.append(("clock", str(_hour(m.group(2))), m.start(2), m.end()))
    type_hits = [(m.start(), m.end(), _TYPE_OF[m.group(0).strip()]) for m in _TYPE_RE.finditer(text)
                 if not (_TYPE_OF[m.group(0).strip()] == "Center" and _OFF_CENTER.search(text, max(0, m.start() - 12),
                                                                                        m.start()))]
    raw += [("type", label, a, b) for a, b, label in type_hits]
    raw = [r for r in raw if not (r[0] == "zone" and r[1] == "center" and _RELATIVE_TO.search(text, max(0, r[2] - 24), r[2]))]
    raw.sort(key=lambda r: (r[2], r[1]))
    names = [(a, b) for slot, _, a, b in raw if slot == "type" and text[a:b].strip() not in _DESCRIPTIVE_NAMES]
    claims = []
    noise_words = [(m.start(), m.end()) for m in _BACKGROUND.finditer(text)]
    for slot, value, a, b in raw:
        clause = _clause_of(spans, a)
        background = any(clause[0] <= s and e <= clause[1] + 1 and (e <= a + 1 or s >= b)  # outside the claim
                         for s, e in noise_words) or _continues_background(text, spans, clause) or (
            slot == "density" and _background_after(text, b))
        implied = slot != "type" and any(na <= a and b <= nb for na, nb in names)
        claims.append(Claim(slot, value, _negated(text, clause, a, b), a, b, background, implied))
    claims = _sparse_places(text, _edge_clusters(text, spans, _propagate(text, claims)))
    named = [c for c in claims if c.slot == "type" and c.said and text[c.start:c.end].strip() not in _PLACE_WORDS]
    patterns = {c.value for c in named if c.value not in ("Random", "none")}
    explicit = frozenset(c.value for c in named  # "on a light background of random failures" names no Random
                         if not (patterns and c.value == "Random" and c.background))
    types = explicit | frozenset(c.value for c in claims if c.slot == "type" and c.said
                                 and (rx := _CAPITALISED_ONLY.get(text[c.start:c.end].split()[0]))
                                 and (rx.search(answer or "") or len(text.split()) <= 4))
    shares = tuple(float(m.group(1)) / 100 for m in _SHARE_RE.finditer(text)
                   if not _negated(text, _clause_of(spans, m.start()), m.start(), m.end()))
    return Reading(text=text, claims=tuple(claims), types=types, pattern_names=explicit, verdict=yes_no(normalise(answer or "")),
                   shares=shares, spans=tuple(spans))


def _cues(text: str, spans: tuple[tuple[int, int, bool], ...]) -> dict[str, tuple[frozenset[str], ...]]:
    """Patterns with a root-cause cue whose word groups all occur in one sentence's un-excluded clauses, each with
    the words its holding cues matched."""
    sentences: dict[int, str] = {}
    sentence = 0
    for a, b, excluded in spans:
        if not excluded:
            sentences[sentence] = sentences.get(sentence, "") + " " + text[a:b]
        if "|" in text[b:b + 2]:
            sentence += 1
    found: dict[str, list[frozenset[str]]] = {}
    for pattern, cues in lexicon().cause_cues.items():
        for cue in cues:
            for s in sentences.values():
                hits = [group.search(s) for group in cue]
                if all(hits):
                    found.setdefault(pattern, []).append(frozenset(h.group(0).strip() for h in hits))
                    break
    return {pattern: tuple(words) for pattern, words in found.items()}
