"""The specialist's map classifier and ``validate-real`` (inferred types against real labels)."""
