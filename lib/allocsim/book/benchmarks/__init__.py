"""Benchmarks: each module has run(argv) that prints figures (python -m allocsim bench NAME)."""
