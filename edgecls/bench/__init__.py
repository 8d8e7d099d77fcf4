"""Bench and report: latency, size, memory and accuracy of artifacts, merged across machines.

``runner.run_bench`` measures models (each in a fresh subprocess, through the edgecls
runtime, never TensorFlow); ``report.merge_reports`` merges the JSON files it writes;
``render_md`` and ``render_html`` (and ``edgecls.cli.bench_table`` on a terminal) show
them. Report keys: SCHEMA.md.
"""
