"""Running a model over a benchmark: prompts, the response cache, the runner, the run folder and ``wafersage eval``."""
