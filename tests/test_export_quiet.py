"""`edgecls export` keeps NNCF's own progress bars off the user's terminal (edgecls draws its own)."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.cli import run_cli
from helpers.export import NNCF_BAR_TEXT


@pytest.fixture(scope="module")
def run_dir(tiny_runs, tmp_path_factory) -> Path:
    return tiny_runs.copy(tmp_path_factory.mktemp("export_quiet"), epochs=2)


def test_int8_export_prints_no_nncf_progress_bar(run_dir, tmp_path, monkeypatch, capsys) -> None:
    """ONNX through NNCF's ONNX backend; OpenVINO INT8 (NNCF by default) is checked on the
    export of tests/test_export_cli.py::test_manifest_fields_and_passing_exit_code."""
    preset = tmp_path / "nncf.yaml"
    preset.write_text("count: 30\nselection: balanced\nseed: 0\n"
                      "methods: {tflite: default, onnx: nncf, openvino: default}\n")
    code, text = run_cli(monkeypatch, capsys, "export", str(run_dir), "-f", "onnx", "-p", "int8",
                         "--calibration", str(preset), "--out", str(tmp_path / "out"),
                         "--no-remedies")
    assert "held-out images" in text, text  # edgecls' own table is there
    assert not [bar for bar in NNCF_BAR_TEXT if bar in text], text


def test_rich_console_is_restored_after_export(run_dir, tmp_path, monkeypatch, capsys) -> None:
    import rich

    before = rich.get_console().quiet
    run_cli(monkeypatch, capsys, "export", str(run_dir), "-f", "onnx", "-p", "fp32",
            "--out", str(tmp_path / "out"))
    assert rich.get_console().quiet == before
