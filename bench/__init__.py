"""Benchmarks run by hand (not part of pytest); see BENCHMARKS.md."""
