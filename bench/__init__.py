"""Benchmarks for ordex (not tests: run them as modules, e.g. ``python -m bench.bench_submit``)."""
