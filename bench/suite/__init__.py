"""Ember's benchmark suite (issue #10): the same workloads on Ember, Dask distributed and
plain Python, checked against each other, timed, and memory-sampled. Entry point:
bench/bench_suite.py (``make bench-suite``)."""
