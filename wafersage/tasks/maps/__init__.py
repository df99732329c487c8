"""The wafer-map record (:class:`~.wafer.WaferMap`), the map store, palettes and PNG rendering, and the readers
of real datasets (``readers/``). Imports nothing else of ``tasks``."""
