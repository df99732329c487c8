"""Scoring a run: the rule scorer (rules, claims, matching), the LLM judge, calibration, statistics, the
gaming suite and ``wafersage score``/``calibrate``. Imports ``harness.run``."""
