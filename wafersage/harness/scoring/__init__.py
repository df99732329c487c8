"""Scoring a run: the rule scorer (facts read from the map, claims read from the answer: truth, reader, lexicon,
focus, slots, rules), the LLM judge, calibration, statistics, the gaming suite and ``wafersage score``/``calibrate``.
Imports ``harness.run``."""

#: Version of the scorer, recorded in every ``summary.json`` and item score. Bump it with any change to the scorer
#: (rules, reader, lexicon, truth, answer parsing) that can change a score: ``wafersage compare`` and ``report``
#: refuse runs scored with different versions and name the command that rescores them. "2": facts, not phrasing;
#: "2.1": scatter over the whole wafer states a normal or Random wafer, descriptive type phrases state their shape;
#: "2.2": one of a mixture's values earns its share of the failures, no floor (``partial_floor`` 0); "2.3": a right
#: yes/no verdict that no true fact backs earns 8, not 10; "2.4": a spatial or root-cause answer is graded on its
#: dimension's unasked slots too, at half an asked slot's weight; "2.5": "Random" used as a class label ("Random.",
#: "a Random pattern") contradicts a map without Random scatter as its pattern.
SCORER_VERSION = "2.5"
