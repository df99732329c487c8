"""The benchmark folder format: item/rubric schema, loading with hash checks (:class:`~.folder.Benchmark`),
splits and the Hugging Face export. Imports ``maps``."""
