"""Running a model over a benchmark: prompts, the response cache, the runner, the run folder, ``wafersage eval``,
shards and their merge, and questions exported for answers produced elsewhere."""
