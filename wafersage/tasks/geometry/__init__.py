"""Measuring a map: :func:`~.measure.measure` (zones, clocks, regions), the fixed feature vector and the
geometry-only defect-type rules (:mod:`.infer`). Imports ``maps`` only."""
