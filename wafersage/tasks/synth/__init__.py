"""Synthesis, maps to benchmark folder: cleaning (Stage 0a), facts and descriptions (0b), rubrics (1), VQA
items (2) and the builder (:func:`~.build.build_benchmark`). Imports every ``tasks`` subpackage above it in the README's map."""
