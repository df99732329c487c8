"""Balanced answers and the vision-indispensable filter: population thresholds for numeric premises, each item's
asked value and the answer balance per template, and fact-level blind adversaries cross-fitted by wafer."""
