# Re-export: lm-eval task folders exported before the layout move import this path in their utils.py.
from wafersage.harness.lmeval.task.runtime import runtime_for  # noqa: F401
