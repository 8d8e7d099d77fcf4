"""The Python API (``import edgecls``): top-level names, a light import, results that
render in a notebook, and the CLI's typed errors."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import edgecls
from edgecls.errors import EdgeclsError
from helpers.cli import run_cli

PACKAGE = Path(edgecls.__file__).parent


@pytest.fixture(scope="module")
def api_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[edgecls.Run, str]:
    """A run trained through ``Run.train`` (tiny CNN, 2 epochs: a few seconds) and what it
    printed with ``progress=False``; the module's other API tests use it."""
    import contextlib
    import io

    from helpers.images import write_image_folder
    from helpers.runs import CLASSES, TINY

    root = tmp_path_factory.mktemp("api")
    data = write_image_folder(root / "images", CLASSES, size=32)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
        run = edgecls.Run.train(data=data, out=root / "run", model=TINY, weights="none", img_size=32,
                                epochs=2, batch_size=8, lr=0.01, patience=None,
                                augment={"enabled": False}, progress=False)
    return run, printed.getvalue()


def _submodule_names() -> set[str]:
    return {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"} | \
           {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}


def test_all_lists_every_lazy_name() -> None:
    assert sorted(edgecls.__all__) == sorted(edgecls._API)
    assert set(edgecls.__all__) <= set(dir(edgecls))


def test_no_top_level_name_is_a_submodule_name() -> None:
    """Importing ``edgecls.train.fit`` sets ``edgecls.train`` to the package: a function
    of that name in edgecls/__init__.py would be replaced."""
    assert not set(edgecls.__all__) & _submodule_names()


def test_no_top_level_name_is_shadowed_after_importing_every_subpackage() -> None:
    before = {name: getattr(edgecls, name) for name in edgecls.__all__}
    for name in sorted(_submodule_names()):
        if name != "__main__":
            importlib.import_module(f"edgecls.{name}")
    after = {name: getattr(edgecls, name) for name in edgecls.__all__}
    assert after == before
    assert edgecls.Run.__module__ == "edgecls.api.run" and callable(edgecls.benchmark)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'trian'"):
        edgecls.trian  # noqa: B018


def test_import_edgecls_and_its_api_names_import_no_tensorflow() -> None:
    code = ("import sys, edgecls\n"
            "names = [getattr(edgecls, n) for n in edgecls.__all__]\n"
            "heavy = [m for m in ('tensorflow', 'keras', 'matplotlib', 'torch') if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_check_data_report_renders_and_matches_the_cli_json(image_folder: Path, tmp_path: Path) -> None:
    report = edgecls.check_data(image_folder, json_path=tmp_path / "check.json", progress=False)
    assert report.ok and report.classes == {"circle_b": 20, "circle_r": 20, "square_g": 20}
    html = report._repr_html_()
    assert "<table" in html and "circle_b" in html and "60 usable images in 3 classes" in html
    assert (tmp_path / "check.json").is_file() and report.to_dict()["total_usable"] == 60


def test_write_digits_writes_the_same_folder_as_the_cli(monkeypatch, capsys, tmp_path: Path) -> None:
    """The demo dataset from Python and from ``edgecls data digits`` is the same set of files."""
    written = edgecls.write_digits(tmp_path / "api", size=12)
    code, output = run_cli(monkeypatch, capsys, "data", "digits", str(tmp_path / "cli"), "--size", "12")
    assert code == 0 and "wrote 1797 digit images" in output
    api_files = sorted(p.relative_to(written).as_posix() for p in written.rglob("*.png"))
    assert len(api_files) == 1797 and len({f.split("/")[0] for f in api_files}) == 10
    assert api_files == sorted(p.relative_to(tmp_path / "cli").as_posix() for p in (tmp_path / "cli").rglob("*.png"))


def test_typed_errors_carry_the_cli_message(monkeypatch, capsys, tmp_path: Path) -> None:
    with pytest.raises(EdgeclsError) as api_error:
        edgecls.Run(tmp_path / "missing")
    code, output = run_cli(monkeypatch, capsys, "export", str(tmp_path / "missing"))
    assert code == 2 and f"error: {api_error.value.message}" in output

    with pytest.raises(EdgeclsError) as api_error:
        edgecls.benchmark(tmp_path / "nothing.tflite", progress=False)
    code, output = run_cli(monkeypatch, capsys, "bench", str(tmp_path / "nothing.tflite"))
    assert code == 2 and f"error: {api_error.value.message}" in output


def test_training_refuses_a_one_class_folder_before_tensorflow_like_the_cli(monkeypatch, capsys,
                                                                            tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "only").mkdir(parents=True)
    with pytest.raises(EdgeclsError) as api_error:
        edgecls.Run.train(data=data, out=tmp_path / "run", progress=False)
    code, output = run_cli(monkeypatch, capsys, "train", "--data", str(data), "--out", str(tmp_path / "run2"))
    assert code == 2 and f"error: {api_error.value.message}" in output
    assert not (tmp_path / "run").exists()


def test_run_train_is_silent_without_progress_and_renders_its_history(api_run) -> None:
    run, printed = api_run
    assert printed == ""
    assert run.train_result.epochs == 2 and run.config["model"] == "tiny_cnn" and len(run.history) == 2
    html = run._repr_html_()
    assert "<svg" in html and "data:image/png;base64," in html and "test accuracy" in html


def test_a_run_evaluates_exports_benches_and_explains_through_the_api(api_run) -> None:
    run = api_run[0]
    assert run.labels == ["circle_b", "circle_r", "square_g"]
    assert edgecls.Run(run.path).labels == run.labels

    evaluation = run.evaluate(split="test")
    assert 0.0 <= evaluation.accuracy <= 1.0
    html = evaluation._repr_html_()
    assert "<table" in html and "data:image/png;base64," in html  # the confusion matrix, inline

    result = run.export(formats="tflite", precisions=["fp32"], max_drop=5.0, progress=False)
    assert [p.name for p in result.paths] == ["model_fp32.tflite"] and result.paths[0].is_file()
    assert set(result.verdicts.values()) <= {"passed", "inconclusive"} and result.passed
    assert result.intervals["model_fp32.tflite"] is not None
    assert result.to_dict()["max_drop_pp"] == 5.0 and result.check() is result
    html = result._repr_html_()
    assert "model_fp32.tflite" in html and "budget 5 pp" in html

    bench = edgecls.benchmark(run.path, data=run.path, runs=3, warmup=1, progress=False)
    assert bench.passed and [r["file"] for r in bench.records] == ["model_fp32.tflite"]
    html = bench._repr_html_()
    assert "<table" in html and "<svg" in html and "<!DOCTYPE" not in html and "body {" not in html

    image = next((Path(run.config["data"]) / "circle_r").iterdir())
    explained = edgecls.explain_images(result.paths[0], [image], masks=8, progress=False)
    assert explained.to_dict()["method"] == "rise" and len(explained.report.results) == 1
    assert explained._repr_html_().count("data:image/png;base64,") == 1


def test_progress_bars_draw_on_a_terminal_and_are_silenced_by_one_argument() -> None:
    from io import StringIO

    from rich.console import Console

    from edgecls.present.progress import fraction_bar, is_live

    for enabled, drawn in ((True, True), (False, False)):
        out = StringIO()
        with fraction_bar("export", Console(file=out, force_terminal=True), enabled=enabled) as say:
            say("tflite int8", 0.5)
        assert ("tflite int8" in out.getvalue()) is drawn
    assert is_live(Console(file=StringIO(), force_jupyter=True))
    assert not is_live(Console(file=StringIO(), force_terminal=False, force_jupyter=False))


def test_run_prune_returns_the_pruned_run(api_run, tmp_path: Path) -> None:
    run = api_run[0]
    with pytest.raises(edgecls.ConfigError, match="unknown key.*sparsity"):
        run.prune(tmp_path / "narrow", structured=True, sparsity=0.5)
    pruned = run.prune(tmp_path / "sparse", epochs=1, sparsity=0.5, min_weights=64, progress=False)
    assert pruned.run.path == tmp_path / "sparse" and pruned.run.labels == run.labels
    assert pruned.to_dict()["overall_sparsity"] > 0.3
    assert "weights gzip KB" in pruned._repr_html_()


def test_a_refused_artifact_fails_check_with_the_gate_error(tmp_path: Path) -> None:
    from edgecls.export.manifest import ArtifactRecord, Manifest

    failed = ArtifactRecord(format="tflite", precision="int8", path="model_int8.tflite", size_bytes=1,
                            sha256="0", accuracy=0.80, float_accuracy=0.90, agreement=0.85, drop_pp=10.0,
                            kl_divergence=0.1, per_class_drop_pp={}, passed=False, settings={},
                            verdict="failed", interval_pp=(6.0, 14.0), gate_note="the drop is real")
    manifest = Manifest(run="run", model="best.keras", labels=["a", "b"], input_size=(32, 32), max_drop_pp=1.0,
                        held_out_images=200, held_out_by_split={"val": 100, "test": 100}, float_accuracy=0.9,
                        calibration=None, cpu="cpu", artifacts=[failed])
    result = edgecls.ExportResult(manifest, tmp_path)
    assert not result.passed and result.verdicts == {"model_int8.tflite": "failed"}
    with pytest.raises(edgecls.GateError, match=r"model_int8.tflite \(failed: \+10.00 pp\): lost more than 1 pp"):
        result.check()
    assert "<tr class='failed'>" in result._repr_html_() and "the drop is real" in result._repr_html_()


def test_written_files_match_the_json_schemas_generated_for_the_docs(api_run, tmp_path: Path) -> None:
    """The schemas on the docs' file-format page are generated from the dataclasses and the
    bench validator; a real manifest, artifact metadata and bench JSON must satisfy them."""
    import json

    import jsonschema

    from edgecls.api.schemas import bench_schema, manifest_schema, metadata_schema

    run = api_run[0]
    result = run.export(formats="tflite", precisions=["fp32"], max_drop=5.0, progress=False)
    manifest = json.loads((result.out / "manifest.json").read_text())
    jsonschema.validate(manifest, manifest_schema())
    metadata = json.loads(edgecls.Classifier(result.paths[0]).metadata.to_json())
    jsonschema.validate(metadata, metadata_schema())
    edgecls.benchmark(result.paths, data=run.path, runs=2, warmup=0, json_path=tmp_path / "b.json",
                      progress=False)
    jsonschema.validate(json.loads((tmp_path / "b.json").read_text()), bench_schema())
    manifest["artifacts"][0]["drop_pp"] = "small"  # a wrong type is caught
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(manifest, manifest_schema())
