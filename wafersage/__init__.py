"""WaferSAGE: a benchmark harness for wafer-defect visual question answering."""
__version__ = "0.1.0"
