"""The seeded generator of defect patterns and MixedWM38 mixtures (:func:`~.generator.generate_maps`), with
ground truth per component. Imports ``maps`` and ``geometry``."""
