"""`edgecls bench` on tiny real models of every backend, through the edgecls runtime."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.tiny_models import TinyNet, make_onnx, make_openvino, make_tflite, tiny_metadata, write_not_a_model

from edgecls.bench.runner import BenchOptions, run_bench
from edgecls.bench.schema import STATUS_BELOW_FLOOR, STATUS_FAILED, STATUS_PASSED, validate_report
from edgecls.errors import EdgeclsError
from helpers.bench import QUICK
from helpers.cli import edgecls
from helpers.images import write_color_folder

NET = TinyNet()


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One tiny model per backend and precision, built once for this module."""
    root = tmp_path_factory.mktemp("bench_models")
    return {
        "tflite_fp32": make_tflite(root / "tiny_fp32.tflite", NET, tiny_metadata(NET)),
        "tflite_int8": make_tflite(root / "tiny_int8.tflite", NET, tiny_metadata(NET, precision="int8"), "int8"),
        "onnx_fp32": make_onnx(root / "tiny_fp32.onnx", NET, tiny_metadata(NET, extra={"run": "tiny-run"})),
        "onnx_int8": make_onnx(root / "tiny_int8.onnx", NET, tiny_metadata(NET, precision="int8"), quantized=True),
        "openvino_fp32": make_openvino(root / "tiny_fp32.xml", NET, tiny_metadata(NET)),
    }


@pytest.fixture(scope="module")
def colors(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_color_folder(tmp_path_factory.mktemp("colors"))


def test_every_backend_measured_and_scored(models: dict[str, Path], colors: Path) -> None:
    options = BenchOptions(data=colors, reference=models["onnx_fp32"], min_accuracy=0.9, **QUICK)
    report = run_bench(list(models.values()), options)
    validate_report(report)
    records = {Path(r["model"]).name: r for r in report["records"]}
    assert set(records) == {p.name for p in models.values()}
    backends = {"tflite": "litert", "onnx": "onnxruntime", "openvino": "openvino"}
    for record in records.values():
        assert record["status"] == STATUS_PASSED, record["reason"]
        assert record["backend"]["name"] == backends[record["format"]]
        assert record["backend"]["version"] not in ("", "unknown")
        assert record["labels"] == ["red", "green", "blue"]
        assert record["size_bytes"] == _size(Path(record["model"]))
        latency = record["latency"]
        assert latency["runs"] == 15 and latency["warmup"] == 2
        assert latency["min_ms"] <= latency["p50_ms"] <= latency["p90_ms"] <= latency["p99_ms"] <= latency["max_ms"]
        assert len(latency["block_p50_ms"]) == 5
        assert record["load_ms"] > 0 and record["first_inference_ms"] > 0
        assert record["memory"]["peak_rss_mb"] > record["memory"]["baseline_rss_mb"] > 0
        accuracy = record["accuracy"]
        assert accuracy["images"] == 9 and accuracy["top1"] == 1.0 and accuracy["macro_f1"] == 1.0
        assert accuracy["confusion"] == [[3, 0, 0], [0, 3, 0], [0, 0, 3]]
        assert accuracy["reference"]["agreement"] == 1.0
        assert accuracy["reference"]["per_class"] == {"red": 1.0, "green": 1.0, "blue": 1.0}
    assert records["tiny_int8.tflite"]["precision"] == "int8"
    assert records["tiny_int8.tflite"]["input"]["dtype"] == "int8"
    assert "threads" in records["tiny_fp32.onnx"]["backend"]["settings"]
    assert records["tiny_fp32.onnx"]["run"] == "tiny-run" and records["tiny_fp32.onnx"]["model_name"] == "tiny"
    assert report["settings"]["images"] == 9 and report["machine"]["cores_logical"] >= 1


def test_failures_do_not_stop_the_other_models(models: dict[str, Path], tmp_path: Path) -> None:
    broken = write_not_a_model(tmp_path / "broken.tflite")
    report = run_bench([broken, tmp_path / "absent.onnx", models["onnx_fp32"]], BenchOptions(**QUICK))
    statuses = [(r["file"], r["status"]) for r in report["records"]]
    assert statuses == [("broken.tflite", STATUS_FAILED), ("absent.onnx", STATUS_FAILED),
                        ("tiny_fp32.onnx", STATUS_PASSED)]
    assert report["records"][0]["reason"].startswith("load failed:")
    assert "Traceback" not in report["records"][0]["reason"]
    assert "does not exist" in report["records"][1]["reason"]


def test_below_accuracy_floor(models: dict[str, Path], tmp_path: Path) -> None:
    mislabelled = write_color_folder(tmp_path / "swapped", per_class=2, swap=True)
    report = run_bench([models["onnx_fp32"]], BenchOptions(data=mislabelled, min_accuracy=0.5, **QUICK))
    record = report["records"][0]
    assert record["status"] == STATUS_BELOW_FLOOR
    assert record["accuracy"]["top1"] == 0.0
    assert "< floor 0.5000" in record["reason"]


def test_thread_counts_give_one_record_each(models: dict[str, Path], colors: Path) -> None:
    options = BenchOptions(data=colors, threads=[1, 2], seconds=0.05, warmup=1)
    records = run_bench([models["tflite_int8"]], options)["records"]
    assert [r["threads"] for r in records] == [1, 2]
    assert [r["backend"]["settings"]["threads"] for r in records] == [1, 2]
    assert all(r["latency"]["runs"] >= 10 for r in records)  # time budget, at least 10 runs
    assert records[1]["accuracy"]["scored_with_threads"] == 1
    assert records[0]["accuracy"]["top1"] == records[1]["accuracy"]["top1"]


def test_data_classes_unknown_to_the_model_fail_with_a_reason(models: dict[str, Path], tmp_path: Path) -> None:
    folder = write_color_folder(tmp_path / "data", per_class=1)
    (folder / "red").rename(folder / "purple")
    record = run_bench([models["onnx_fp32"]], BenchOptions(data=folder, **QUICK))["records"][0]
    assert record["status"] == STATUS_FAILED
    assert "data classes not among the model's labels: purple" in record["reason"]


def test_run_dir_scores_its_test_split(models: dict[str, Path], tmp_path: Path) -> None:
    from edgecls.data.split import prepare_split

    split = prepare_split(write_color_folder(tmp_path / "data", per_class=8), tmp_path / "run")
    record = run_bench([models["onnx_int8"]], BenchOptions(data=tmp_path / "run", **QUICK))["records"][0]
    assert record["status"] == STATUS_PASSED, record["reason"]
    assert record["accuracy"]["images"] == len(split.items("test")) > 0
    assert record["accuracy"]["top1"] == 1.0


def test_presplit_folder_scores_its_test_subset(models: dict[str, Path], tmp_path: Path) -> None:
    write_color_folder(tmp_path / "ds" / "train", per_class=2)
    write_color_folder(tmp_path / "ds" / "test", per_class=1)
    report = run_bench([models["onnx_fp32"]], BenchOptions(data=tmp_path / "ds", **QUICK))
    assert report["settings"]["data"].endswith("(test subset)")
    assert report["records"][0]["accuracy"]["images"] == 3


@pytest.mark.parametrize("options, message", [
    (dict(min_accuracy=0.9), "needs labelled data"),
    (dict(runs=0), "--runs must be at least 1"),
    (dict(threads=[0]), "thread counts"),
])
def test_bad_options_are_user_errors(models: dict[str, Path], options: dict, message: str) -> None:
    with pytest.raises(EdgeclsError, match=message):
        run_bench([models["onnx_fp32"]], BenchOptions(**options))


def test_bench_cli_writes_json_and_prints_the_table(models: dict[str, Path], colors: Path, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = _cli("bench", str(models["openvino_fp32"]), "--data", str(colors), "--runs", "10",
                "--warmup", "1", "--target", "intel-cpu-openvino", "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    validate_report(report)
    record, machine = report["records"][0], report["machine"]
    assert record["target"] == "intel-cpu-openvino" == machine["target"]
    assert machine["target_profile"]["backend"] == "openvino"
    assert record["threads"] == machine["target_profile"]["threads"]
    assert record["backend"]["settings"]["device"] == machine["target_profile"]["device"]
    assert "tiny_fp32.xml" in proc.stdout and "intel-cpu-openvino" in proc.stdout


def test_bench_cli_unknown_target_is_exit_2(models: dict[str, Path], tmp_path: Path) -> None:
    proc = _cli("bench", str(models["onnx_fp32"]), "--target", "raspbery-pi-4", "--json", str(tmp_path / "x.json"))
    assert proc.returncode == 2 and "unknown target 'raspbery-pi-4'" in proc.stderr


def test_bench_cli_shows_models_of_different_label_sets(models: dict[str, Path], tmp_path: Path) -> None:
    other = make_onnx(tmp_path / "cmy.onnx", NET, tiny_metadata(NET, labels=["cyan", "magenta", "yellow"]))
    out = tmp_path / "b.json"
    proc = _cli("bench", str(models["onnx_fp32"]), str(other), "--runs", "5", "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "tiny_fp32.onnx" in proc.stdout and "cmy.onnx" in proc.stdout


def test_bench_cli_json_into_a_folder_is_refused_before_measuring(models: dict[str, Path], tmp_path: Path) -> None:
    proc = _cli("bench", str(models["onnx_fp32"]), "--json", str(tmp_path))
    assert proc.returncode == 2 and "is a folder" in proc.stderr


def test_bench_cli_bad_threads_is_exit_2(models: dict[str, Path], tmp_path: Path) -> None:
    proc = _cli("bench", str(models["onnx_fp32"]), "--threads", "two", "--json", str(tmp_path / "x.json"))
    assert proc.returncode == 2 and "--threads 'two'" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "x.json").exists()


@pytest.mark.parametrize("name, message", [("absent.tflite", "does not exist"),
                                           ("notes.txt", "unknown model format")])
def test_bench_cli_missing_or_unknown_model_is_exit_2(models: dict[str, Path], tmp_path: Path,
                                                      name: str, message: str) -> None:
    (tmp_path / "notes.txt").write_text("not a model")
    proc = _cli("bench", str(models["onnx_fp32"]), str(tmp_path / name), "--json", str(tmp_path / "x.json"))
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "x.json").exists()  # refused before measuring


def test_bench_of_a_run_measures_its_export_folder_into_bench_json(models: dict[str, Path],
                                                                   tmp_path: Path) -> None:
    """A newcomer's `edgecls bench RUN`: every model file of RUN/export/, and the JSON
    lands in ./bench.json when --json is not given."""
    import json
    import shutil

    export = tmp_path / "run" / "export"
    export.mkdir(parents=True)
    for key in ("tflite_int8", "onnx_fp32"):
        shutil.copy(models[key], export)
    (export / "manifest.json").write_text("{}")  # not a model: left alone
    proc = subprocess.run([sys.executable, "-m", "edgecls", "bench", "run", "--runs", "3",
                           "--warmup", "1"], capture_output=True, text=True, cwd=tmp_path,
                          env={**_env(), "COLUMNS": "200"}, timeout=300)
    assert proc.returncode == 0, proc.stderr
    records = json.loads((tmp_path / "bench.json").read_text())["records"]
    assert sorted(Path(r["file"]).name for r in records) == ["tiny_fp32.onnx", "tiny_int8.tflite"]


def test_bench_of_a_glob_skips_the_side_files_of_given_models(models: dict[str, Path],
                                                             tmp_path: Path) -> None:
    """README's `edgecls bench RUN/export/model_*` also matches OpenVINO's weights (.bin)."""
    xml = models["openvino_fp32"]
    proc = _cli("bench", str(xml), str(xml.with_suffix(".bin")), "--runs", "3", "--warmup", "1",
                "--json", str(tmp_path / "x.json"))
    assert proc.returncode == 0, proc.stderr
    records = json.loads((tmp_path / "x.json").read_text())["records"]
    assert [Path(r["file"]).name for r in records] == ["tiny_fp32.xml"]


def test_bench_of_a_lone_side_file_names_its_model(models: dict[str, Path], tmp_path: Path) -> None:
    weights = models["openvino_fp32"].with_suffix(".bin")
    proc = _cli("bench", str(weights), "--json", str(tmp_path / "x.json"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"is a side file of the model {models['openvino_fp32']}" in proc.stderr


def test_bench_of_a_folder_without_models_is_exit_2(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    proc = _cli("bench", str(tmp_path / "empty"), "--json", str(tmp_path / "x.json"))
    assert proc.returncode == 2 and "is a folder without model files" in proc.stderr


def test_bench_does_not_import_tensorflow() -> None:
    code = ("import sys, edgecls.cli.bench, edgecls.bench.runner, edgecls.bench.worker, "
            "edgecls.bench.report; assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, env=_env(), timeout=120)


def test_coral_model_on_imagenette(shared_dir: Path, tmp_path: Path) -> None:
    """A real INT8 model, real images whose folder names are ImageNet label names."""
    coral = shared_dir / "models" / "coral"
    data = tmp_path / "imagenette"
    data.mkdir()
    for wnid, name in [("n01440764", "tench"), ("n03888257", "parachute"), ("n03445777", "golf ball")]:
        (data / name).symlink_to(shared_dir / "data" / "imagenette" / "val" / wnid)
    options = BenchOptions(data=data, labels_file=coral / "imagenet_labels.txt", max_per_class=4,
                           runs=5, warmup=1, threads=[2])
    record = run_bench([coral / "mobilenet_v1_0.25_128_quant.tflite"], options)["records"][0]
    assert record["status"] == STATUS_PASSED, record["reason"]
    assert record["accuracy"]["images"] == 12
    assert record["accuracy"]["top5"] >= 0.5
    assert len(record["labels"]) == 1001 and record["input"]["dtype"] == "uint8"


def _size(model: Path) -> int:
    size = model.stat().st_size
    return size + model.with_suffix(".bin").stat().st_size if model.suffix == ".xml" else size


def _cli(*args: str) -> subprocess.CompletedProcess:
    """In this process; the test of a run's export folder starts a real one."""
    return edgecls(*args, env={"COLUMNS": "200"})


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
