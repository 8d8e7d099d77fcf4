"""`edgecls report`: merging bench files from several machines, rendering, bad inputs."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from edgecls.bench.render_html import render_html
from edgecls.bench.render_md import render_markdown
from edgecls.bench.report import merge_reports, pareto_front
from edgecls.bench.schema import SchemaError, load_report, validate_report
from edgecls.cli.bench_table import print_report
from edgecls.errors import EdgeclsError
from helpers.cli import edgecls

FIXTURES = Path(__file__).parent / "fixtures" / "reports"
X86 = FIXTURES / "x86_laptop.json"
PI = FIXTURES / "raspberry_pi_4.json"
OLD = FIXTURES / "old_schema.json"
BROKEN = FIXTURES / "broken.json"
OTHER_LABELS = FIXTURES / "other_labels.json"


def _row(merged, group: str, file: str):
    return next(r for r in merged.rows if r.group == group and r.record["file"] == file)


def test_fixtures_are_valid_reports() -> None:
    for path in (X86, PI, OTHER_LABELS):
        validate_report(load_report(path))


def test_merge_groups_by_target_and_orders_by_format_then_precision() -> None:
    merged = merge_reports([X86, PI])
    groups = merged.groups()
    assert list(groups) == ["raspberry-pi-4", "x86-cpu"]
    x86 = [(r.record["format"], r.record["precision"]) for r in groups["x86-cpu"]]
    assert x86 == [("tflite", "fp32"), ("tflite", "int8"), ("onnx", "fp32"), ("onnx", "int8"),
                   ("openvino", "fp32"), ("openvino", "int8")]
    assert not merged.warnings


def test_drop_is_against_fp32_of_the_same_machine() -> None:
    merged = merge_reports([X86, PI])
    pi_int8 = _row(merged, "raspberry-pi-4", "model_int8.tflite")
    pi_fp32 = _row(merged, "raspberry-pi-4", "model_fp32.tflite")
    assert pi_int8.float_source == "fp32 model_fp32.tflite"
    assert pi_int8.float_top1 == pi_fp32.top1
    assert pi_int8.drop_pp == pytest.approx(100 * (pi_fp32.top1 - pi_int8.top1), abs=1e-3)
    # the x86 ONNX int8 model is compared with the x86 ONNX fp32 model, not the Pi's
    x86_onnx = _row(merged, "x86-cpu", "model_int8.onnx")
    assert x86_onnx.float_source == "fp32 model_fp32.onnx"
    assert x86_onnx.float_per_class == _row(merged, "x86-cpu", "model_fp32.onnx").record["accuracy"]["per_class"]


def test_float_twin_must_come_from_the_same_run(tmp_path: Path) -> None:
    data = json.loads(X86.read_text())
    data["records"][1]["run"] = "another-run"  # model_int8.tflite
    path = tmp_path / "two_runs.json"
    path.write_text(json.dumps(data))
    merged = merge_reports([path])
    assert _row(merged, "x86-cpu", "model_int8.tflite").drop_pp is None
    assert _row(merged, "x86-cpu", "model_int8.onnx").float_source == "fp32 model_fp32.onnx"


def test_reference_is_the_float_baseline_when_no_fp32_record(tmp_path: Path) -> None:
    data = json.loads(X86.read_text())
    data["records"] = [data["records"][1]]  # int8 only
    per_class = {label: 0.95 for label in data["records"][0]["labels"]}
    data["records"][0]["accuracy"]["reference"] = {"model": "/x/model_fp32.tflite", "top1": 0.95,
                                                   "per_class": per_class, "agreement": 0.97}
    path = tmp_path / "int8_only.json"
    path.write_text(json.dumps(data))
    row = merge_reports([path]).rows[0]
    assert row.float_source == "reference model_fp32.tflite" and row.float_per_class == per_class
    assert row.drop_pp == pytest.approx(100 * (0.95 - row.top1), abs=1e-3)


def test_bad_files_are_named_and_skipped_the_rest_reported() -> None:
    merged = merge_reports([OLD, X86, BROKEN, PI])
    assert len(merged.warnings) == 2
    assert str(OLD) in merged.warnings[0] and "schema_version is 0" in merged.warnings[0]
    assert str(BROKEN) in merged.warnings[1] and "not valid JSON" in merged.warnings[1]
    assert len(merged.rows) == 10
    assert merged.sources == [str(X86), str(PI)]


def test_a_file_given_twice_is_reported_once() -> None:
    merged = merge_reports([X86, X86])
    assert len(merged.rows) == 6 and merged.warnings == [f"skipped {X86}: given twice"]


def test_only_bad_files_is_a_user_error() -> None:
    with pytest.raises(EdgeclsError, match="nothing to report"):
        merge_reports([OLD, BROKEN])


def test_missing_file_and_wrong_kind_are_skipped(tmp_path: Path) -> None:
    other = tmp_path / "metrics.json"
    other.write_text(json.dumps({"schema_version": 1, "top1": 0.9}))
    merged = merge_reports([tmp_path / "absent.json", other, X86])
    assert len(merged.warnings) == 2
    assert "cannot read" in merged.warnings[0]
    assert "kind" in merged.warnings[1]


def test_different_label_sets_are_refused() -> None:
    with pytest.raises(EdgeclsError, match="different label sets") as info:
        merge_reports([X86, OTHER_LABELS])
    assert "pets_int8.tflite" in str(info.value) and "2 labels: 'cat', 'dog'" in str(info.value)


@pytest.mark.parametrize("problem, message", [
    (lambda d: d["records"][0].pop("status"), "lacks the key 'status'"),
    (lambda d: d["records"][0].update(status="great"), "status is 'great'"),
    (lambda d: d["records"][0]["latency"].update(p50_ms="fast"), "p50_ms has the wrong type"),
    (lambda d: d.update(records={}), "records has the wrong type"),
])
def test_schema_validation_names_the_problem(problem, message: str) -> None:
    data = json.loads(X86.read_text())
    problem(data)
    with pytest.raises(SchemaError, match=re.escape(message)):
        validate_report(data)


def test_pareto_front() -> None:
    points = [(10.0, 0.95), (4.0, 0.93), (5.0, 0.92), (2.7, 0.93), (8.0, 0.95), (3.0, 0.80)]
    # (4.0, 0.93) is beaten by (2.7, 0.93); (5.0, .92) by both; (10, .95) by (8, .95)
    assert pareto_front(points) == [3, 4]
    assert pareto_front([(1.0, 0.5)]) == [0]


def test_terminal_table_shows_groups_rows_and_failure_reason() -> None:
    console = Console(record=True, width=200)
    print_report(merge_reports([X86, PI, BROKEN]), console)
    text = console.export_text()
    assert "raspberry-pi-4" in text and "x86-cpu" in text
    assert "Raspberry Pi 4 Model B" in text
    assert "model_int8.xml (4 threads): failed: load failed: OpenVINO is not installed" in text
    assert "warning: skipped" in text and "broken.json" in text
    assert "+1.91pp" in text  # Pi INT8 TFLite lost 1.91 pp vs Pi FP32 TFLite: + is a loss


def test_narrow_terminal_gets_one_column_per_model() -> None:
    console = Console(record=True, width=80)
    print_report(merge_reports([PI]), console)
    lines = console.export_text().splitlines()
    assert max(len(line) for line in lines if not line.startswith("  model_int8.xml")) <= 80
    p50 = next(line for line in lines if line.startswith(" p50 "))
    assert p50.split()[1:] == ["58.40", "21.90", "34.60", "–"]


def test_markdown_has_a_table_per_target() -> None:
    md = render_markdown(merge_reports([X86, PI]))
    assert "## raspberry-pi-4" in md and "## x86-cpu" in md
    header = next(line for line in md.splitlines() if line.startswith("| model |"))
    assert "p50 ms" in header and "drop vs float" in header and "status" in header
    rows = [line for line in md.splitlines() if line.startswith("| model_")]
    assert len(rows) == 10
    assert all(line.count("|") == header.count("|") for line in rows)


def test_no_top5_column_for_models_without_a_top5(tmp_path: Path) -> None:
    """Bench leaves top5 out for a model of 5 classes or fewer: the report drops the column."""
    data = json.loads(X86.read_text())
    for record in data["records"]:
        (record.get("accuracy") or {}).pop("top5", None)
    path = tmp_path / "two_classes.json"
    path.write_text(json.dumps(data))
    md = render_markdown(merge_reports([path]))
    header = next(line for line in md.splitlines() if line.startswith("| model |"))
    assert "top-5" not in header and "top-1" in header
    rows = [line for line in md.splitlines() if line.startswith("| model_")]
    assert rows and all(line.count("|") == header.count("|") for line in rows)
    assert "<th>top-5</th>" not in render_html(merge_reports([path]))


def test_html_is_self_contained_with_table_and_plots() -> None:
    html = render_html(merge_reports([X86, PI, OLD]))
    assert html.count("<table class='bench'>") == 2
    assert html.count("<svg") >= 2 + 2 + 9  # 2 accuracy/latency, size, per-class, 9 confusions
    assert "Pareto front" in html and "Per-class accuracy drop" in html and "+ is a loss" in html
    assert "Size per artifact" in html and "Confusion matrices" in html
    assert "schema_version is 0" in html
    # nothing to fetch: no scripts, stylesheets or images by URL (SVG namespaces are not fetched)
    assert not re.search(r"<(script|link|img|iframe)\b", html)
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert "@import" not in html and not re.search(r"url\((?!#)", html)  # only in-page refs


def test_size_plot_tells_apart_same_name_different_size(tmp_path: Path) -> None:
    from edgecls.bench.plots import size_per_artifact

    data = json.loads(PI.read_text())
    data["records"][1]["size_bytes"] = 4_000_000  # another model_int8.tflite than the x86 one
    path = tmp_path / "pi.json"
    path.write_text(json.dumps(data))
    svg = size_per_artifact(merge_reports([X86, path]).rows)
    assert "model_int8.tflite (raspberry-pi-4)" in svg and "model_int8.tflite (x86-cpu)" in svg
    assert "model_fp32.tflite (" not in svg  # the same file on both machines: one bar


def test_report_cli_writes_html_and_markdown(tmp_path: Path) -> None:
    html, md = tmp_path / "r.html", tmp_path / "r.md"
    proc = subprocess.run(
        [sys.executable, "-m", "edgecls", "report", str(X86), str(PI), str(BROKEN),
         "--html", str(html), "--md", str(md)],
        capture_output=True, text=True, env={**_env(), "COLUMNS": "200"}, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "broken.json" in proc.stdout and "x86-cpu" in proc.stdout
    assert html.read_text().startswith("<!DOCTYPE html>")
    assert "## x86-cpu" in md.read_text()


def test_report_cli_refuses_mixed_label_sets(tmp_path: Path) -> None:
    proc = edgecls("report", str(X86), str(OTHER_LABELS))  # in-process; the test above starts one
    assert proc.returncode == 2
    assert "different label sets" in proc.stderr
    assert "Traceback" not in proc.stderr


def _env() -> dict[str, str]:
    import os

    return {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
