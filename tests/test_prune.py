"""Native Keras 3 magnitude pruning: schedule, masks, target sparsity, exportable output."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest



def test_polynomial_schedule_rises_to_target() -> None:
    from edgecls.optimize.prune import polynomial_sparsity

    values = [polynomial_sparsity(step, 100, 0.6) for step in (0, 25, 50, 100, 150)]
    assert values[0] == 0.0 and values[-2] == pytest.approx(0.6) and values[-1] == pytest.approx(0.6)
    assert values == sorted(values)


def test_magnitude_mask_drops_the_smallest_weights() -> None:
    from edgecls.optimize.prune import magnitude_mask

    weights = np.arange(-50, 50, dtype=np.float32).reshape(10, 10)
    mask = magnitude_mask(weights, 0.3)
    assert mask.sum() == 70
    assert np.abs(weights[~mask]).max() <= np.abs(weights[mask]).min()


@pytest.fixture(scope="module")
def pruned(tiny_runs, tmp_path_factory) -> tuple[Path, Path, object]:
    from edgecls.optimize.prune import PruneConfig, prune_run

    root = tmp_path_factory.mktemp("prune")
    run = tiny_runs.copy(root)
    out = root / "run-pruned"
    config = PruneConfig(sparsity=0.6, epochs=3, batch_size=16, learning_rate=1e-3,
                         frequency=2, min_weights=64, augment=False)
    return run, out, prune_run(run, out, config)


def test_pruning_reaches_target_sparsity(pruned) -> None:
    import keras

    from edgecls.optimize.prune import prunable_kernels

    _, out, report = pruned
    assert report.layers and all(v == pytest.approx(0.6, abs=0.01) for v in report.layers.values())
    model = keras.saving.load_model(out / "best.keras", compile=False)
    kernels = prunable_kernels(model, 64)
    assert [k.path for k in kernels] == list(report.layers)
    for kernel in kernels:
        assert np.mean(kernel.numpy() == 0) == pytest.approx(0.6, abs=0.01)
    assert report.gzip_bytes_after < report.gzip_bytes_before
    assert report.accuracy_after >= report.accuracy_before - 0.2


def test_pruned_run_is_a_normal_run(pruned) -> None:
    run, out, _ = pruned
    for name in ("split.json", "labels.txt", "best.keras", "prune_report.json"):
        assert (out / name).is_file()
    assert (out / "split.json").read_bytes() == (run / "split.json").read_bytes()
    report = json.loads((out / "prune_report.json").read_text())
    assert report["schema_version"] == 1
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_pruned_run_exports(pruned, tmp_path) -> None:
    from edgecls.export.pipeline import ExportConfig, export_run

    _, out, _ = pruned
    manifest = export_run(out, ExportConfig(out=tmp_path, formats=["tflite"], precisions=["fp32"]))
    assert manifest.artifacts[0].agreement == 1.0


@pytest.mark.parametrize("args, message", [
    (["--sparsity", "1.5"], "--sparsity must be between 0 and 1"),
    (["--epochs", "0"], "--epochs must be at least 1"),
])
def test_bad_prune_options_exit_2(tmp_path, monkeypatch, capsys, args, message) -> None:
    from edgecls.cli import main

    monkeypatch.setattr(sys, "argv", ["edgecls", "prune", str(tmp_path), *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_prune_without_model_is_a_user_error(tmp_path) -> None:
    from edgecls.errors import EdgeclsError
    from edgecls.optimize.prune import PruneConfig, prune_run

    with pytest.raises(EdgeclsError, match="holds no trained model"):
        prune_run(tmp_path, tmp_path / "out", PruneConfig())


def test_prune_refuses_an_out_folder_of_other_files(pruned, tmp_path) -> None:
    from edgecls.errors import ConfigError
    from edgecls.optimize.prune import PruneConfig, prune_run

    run, _, _ = pruned
    foreign = tmp_path / "my_photos"
    foreign.mkdir()
    (foreign / "holiday.jpg").write_bytes(b"mine")
    with pytest.raises(ConfigError, match="folder of other files"):
        prune_run(run, foreign, PruneConfig(epochs=1))
    assert sorted(p.name for p in foreign.iterdir()) == ["holiday.jpg"]
