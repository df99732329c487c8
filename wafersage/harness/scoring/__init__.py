"""Scoring a run: the rule scorer (rules, claims, matching), the LLM judge, calibration, statistics, the
gaming suite and ``wafersage score``/``calibrate``. Imports ``harness.run``."""

#: Version of the scorer, recorded in every ``summary.json``. Bump it with any change to the scorer (rules, claims,
#: matching, vocabularies, answer parsing) that can change a score: ``wafersage compare`` and ``report`` refuse runs
#: scored with different versions and name the command that rescores them.
SCORER_VERSION = "1"
