"""Hardening tests: fuzzing, load, limits and security (issue 10)."""
