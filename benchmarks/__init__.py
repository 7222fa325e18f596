"""Benchmarks of keras_lrn (not part of the installed package)."""
