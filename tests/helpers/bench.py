"""Bench options for tests: a few timed runs, enough to exercise every stage quickly."""

QUICK = dict(runs=15, warmup=2)
