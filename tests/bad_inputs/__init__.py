"""Helpers of the bad-input corpus (tests/test_bad_inputs.py)."""
