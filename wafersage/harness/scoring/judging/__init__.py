"""LLM judges: one judge grading answers (:mod:`.judge`, prompt ``judge.j2``) and several judges together, with
coverage and agreement (:mod:`.judges`)."""
