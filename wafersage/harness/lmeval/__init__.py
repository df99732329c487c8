"""The lm-evaluation-harness export: a task folder whose hooks call :mod:`.task.runtime`."""
