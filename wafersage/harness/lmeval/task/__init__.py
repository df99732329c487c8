"""The lm-evaluation-harness task folder that ``wafersage export lm-eval`` writes.

This package holds its templates (``*.yaml.j2`` for the task and group YAMLs, ``utils.py.j2`` for the hooks
module) and :mod:`.runtime`, the code those hooks call at evaluation time: it loads the benchmark folder recorded
in the task folder's ``wafersage_task.json`` and prompts and scores exactly as ``wafersage eval`` and
``wafersage score`` do.
"""
