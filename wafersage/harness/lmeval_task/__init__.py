"""Old import path of :mod:`wafersage.harness.lmeval.task`, kept for task folders exported before the move."""
