"""Structured channel pruning: block discovery, equality at ratio 0, narrower shapes for
every family, channel selection, MAC counting, fine-tune (with distillation) and export."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from helpers.images import write_image_folder
from helpers.models import randomize_batchnorm
from helpers.runs import CLASSES, make_run
from helpers.runs import SIZE as SIZE_RUN

FAMILIES = ("mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large", "efficientnet_b0",
            "efficientnet_lite0")
SIZE = 40


def _images(count: int = 2, size: int = SIZE) -> np.ndarray:
    return np.random.default_rng(0).uniform(0, 255, (count, size, size, 3)).astype(np.float32)


def _outputs(model, x: np.ndarray) -> np.ndarray:
    """One eager call (``predict`` would trace a function per model)."""
    return np.asarray(model(x, training=False))


@pytest.fixture(scope="module")
def built():
    """``built(name)``: one untrained backbone with a head at ``SIZE`` px per family for the
    module (tests randomize its BatchNorms, always alike, and change nothing else)."""
    import keras

    from edgecls.models import build

    models = {}

    def get(name: str):
        if name not in models:
            keras.utils.set_random_seed(0)
            models[name] = build(name, num_classes=3, input_size=SIZE, include_top=False)
        return models[name]

    return get


@pytest.fixture(scope="module", params=FAMILIES)
def family_model(request, built):
    return request.param, built(request.param)


def test_ratio_zero_keeps_the_output(family_model) -> None:
    from edgecls.optimize.selection import plan, prune_channels

    name, model = family_model
    randomize_batchnorm(model)
    groups, keep = plan(model, 0.0, criterion="bn")
    assert all(len(keep[g.key]) == g.channels for g in groups)
    pruned = prune_channels(model, groups, keep)
    x = _images()
    np.testing.assert_allclose(_outputs(pruned, x), _outputs(model, x),
                               rtol=0, atol=1e-6)


def test_pruned_blocks_are_narrower_and_consistent(family_model) -> None:
    from edgecls.optimize.cost import count_macs
    from edgecls.optimize.selection import plan, prune_channels

    name, model = family_model
    groups, keep = plan(model, 0.5, criterion="l1", per_block=True)
    expected_blocks = {"mobilenet_v2": 16, "mobilenet_v3_small": 10, "mobilenet_v3_large": 14,
                       "efficientnet_b0": 15, "efficientnet_lite0": 15}[name]
    assert len(groups) == expected_blocks
    pruned = prune_channels(model, groups, keep)
    backbone = pruned.get_layer("backbone")
    for group in groups:
        width = len(keep[group.key])
        assert width % 8 == 0 and 8 <= width < group.channels
        for source in group.sources:
            assert backbone.get_layer(source).get_weights()[0].shape[-1] == width
        for sink in group.sinks:
            assert backbone.get_layer(sink).get_weights()[0].shape[2] == width
    assert _outputs(pruned, _images()).shape == (2, 3)
    assert pruned.count_params() < model.count_params()
    assert count_macs(pruned) < 0.8 * count_macs(model)


def test_kept_channels_carry_the_original_weights(built) -> None:
    import keras

    from edgecls.optimize.selection import plan, prune_channels

    model = built("efficientnet_b0")
    randomize_batchnorm(model)
    groups, keep = plan(model, 0.4, criterion="bn")
    pruned = prune_channels(model, groups, keep)
    group = next(g for g in groups if len(keep[g.key]) < g.channels)
    index = keep[group.key]
    old, new = model.get_layer("backbone"), pruned.get_layer("backbone")
    gamma = old.get_layer(group.expand_bn).get_weights()[0]
    assert gamma[index].min() >= np.delete(gamma, index).max()  # bn criterion keeps the largest
    for name in group.sources:
        np.testing.assert_array_equal(new.get_layer(name).get_weights()[0],
                                      old.get_layer(name).get_weights()[0][..., index])
    dw = next(n for n in group.members if isinstance(old.get_layer(n), keras.layers.DepthwiseConv2D))
    np.testing.assert_array_equal(new.get_layer(dw).get_weights()[0],
                                  old.get_layer(dw).get_weights()[0][:, :, index, :])
    for name in group.sinks:
        np.testing.assert_array_equal(new.get_layer(name).get_weights()[0],
                                      old.get_layer(name).get_weights()[0][:, :, index, :])


def test_select_channels_rounds_to_multiples_of_eight() -> None:
    from edgecls.optimize.selection import round_channels, select_channels

    rng = np.random.default_rng(0)
    scores = {"a": rng.uniform(size=96), "b": rng.uniform(size=40), "c": rng.uniform(size=16)}
    keep = select_channels(scores, 0.9, per_block=True)
    assert {k: len(v) for k, v in keep.items()} == {"a": 8, "b": 8, "c": 8}
    keep = select_channels(scores, 0.3, per_block=False)
    assert all(len(v) % 8 == 0 and len(v) >= 8 for v in keep.values())
    assert sum(len(v) for v in keep.values()) == pytest.approx(0.7 * 152, abs=12)
    assert all(np.all(np.diff(v) > 0) for v in keep.values())
    assert round_channels(3, 16) == 8 and round_channels(13, 16) == 16 and round_channels(21, 96) == 24


def test_count_macs_matches_hand_count() -> None:
    import keras

    from edgecls.optimize.cost import count_macs

    image = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", use_bias=False)(image)       # 64*27*4
    x = keras.layers.DepthwiseConv2D(3, strides=2, padding="same")(x)          # 16*9*4
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(5)(x)                                               # 4*5
    assert count_macs(keras.Model(image, x)) == 64 * 27 * 4 + 16 * 9 * 4 + 20


def test_ratio_for_mac_reduction_hits_the_target(built) -> None:
    from edgecls.optimize.cost import count_macs
    from edgecls.optimize.selection import plan, prune_channels, ratio_for_mac_reduction

    for name in ("efficientnet_lite0", "mobilenet_v3_small"):  # V3: SE blocks with bare ops
        model = built(name)
        ratio = ratio_for_mac_reduction(model, 0.3, criterion="l1")
        pruned = prune_channels(model, *plan(model, ratio, criterion="l1"))
        assert 1 - count_macs(pruned) / count_macs(model) == pytest.approx(0.3, abs=0.03)
        pruned = prune_channels(model, *plan(model, None, criterion="l1", mac_reduction=0.3))
        assert 1 - count_macs(pruned) / count_macs(model) == pytest.approx(0.3, abs=0.03)


def test_bad_options_are_user_errors() -> None:
    from edgecls.errors import ConfigError
    from edgecls.optimize.structured import StructuredConfig

    for config in (StructuredConfig(ratio=1.0), StructuredConfig(criterion="random"),
                   StructuredConfig(alpha=2.0)):
        with pytest.raises(ConfigError):
            config.check()


def _mbconv_run(root: Path) -> Path:
    """A run dir whose best.keras is a small MobileNetV2 briefly trained on generated images."""
    from edgecls.models import build

    return make_run(root, epochs=4, learning_rate=0.003, model=lambda: build(
        "mobilenet_v2", num_classes=len(CLASSES), input_size=SIZE_RUN, include_top=False,
        alpha=0.35))


def _test_accuracy(run: Path, subsets: tuple[str, ...] = ("test",)) -> float:
    """Top-1 of a run's best.keras on its test split (or ``subsets``), computed here independently."""
    from edgecls.data.pipeline import load_arrays
    from edgecls.data.split import Split
    from edgecls.models.float_model import input_size, load_float_model

    model = load_float_model(run / "best.keras")
    split = Split.load(run / "split.json")
    items = [item for subset in subsets for item in split.items(subset)]
    images, labels = load_arrays(items, input_size(model))
    predicted = model.predict(images.astype("float32"), verbose=0).argmax(axis=1)
    return float(np.mean(predicted == labels))


@pytest.fixture(scope="module")
def pruned_run(tmp_path_factory):
    from edgecls.optimize.structured import StructuredConfig, structured_prune_run

    root = tmp_path_factory.mktemp("structured")
    run = _mbconv_run(root)
    out = root / "run-pruned"
    config = StructuredConfig(ratio=0.5, epochs=1, batch_size=16, learning_rate=1e-3,
                              distill=True, augment=False)
    return run, out, structured_prune_run(run, out, config)


@pytest.mark.slow
def test_pruned_run_is_a_smaller_normal_run(pruned_run) -> None:
    run, out, report = pruned_run
    for name in ("split.json", "labels.txt", "best.keras", "prune_report.json"):
        assert (out / name).is_file()
    assert (out / "split.json").read_bytes() == (run / "split.json").read_bytes()
    saved = json.loads((out / "prune_report.json").read_text())
    assert saved["schema_version"] == 1 and saved["kind"] == "structured"
    assert saved["after"]["macs"] < saved["before"]["macs"]
    assert saved["after"]["parameters"] < saved["before"]["parameters"]
    assert report.mac_reduction > 0.2
    assert report.accuracy_after == pytest.approx(_test_accuracy(out), abs=1e-6)
    assert report.accuracy_before == pytest.approx(_test_accuracy(run), abs=1e-6)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


@pytest.mark.slow
def test_pruned_run_exports_int8_tflite(pruned_run, tmp_path) -> None:
    from edgecls.data.pipeline import load_arrays
    from edgecls.data.split import HELD_OUT, Split
    from edgecls.export.pipeline import ExportConfig, export_run
    from edgecls.runtime import Classifier

    _, out, report = pruned_run
    # A budget no tiny model can miss, so the artifact is published as first exported.
    manifest = export_run(out, ExportConfig(out=tmp_path, formats=["tflite"],
                                            precisions=["int8"], max_drop=100.0))
    artifact = manifest.artifacts[0]
    # the gate scores every held-out image (val + test); the prune report, the test split
    assert manifest.float_accuracy == pytest.approx(_test_accuracy(out, HELD_OUT), abs=1e-6)
    assert artifact.drop_pp == pytest.approx(100 * (artifact.float_accuracy - artifact.accuracy),
                                             abs=1e-3)
    assert artifact.agreement >= 0.5  # tiny model: near-tie outputs
    split = Split.load(out / "split.json")
    held_out = [item for subset in HELD_OUT for item in split.items(subset)]
    images, labels = load_arrays(held_out, manifest.input_size)
    classifier = Classifier(tmp_path / artifact.path)  # the published file, run by the runtime
    top1 = classifier.predict(images.astype(np.float32)).argmax(axis=1)
    assert artifact.accuracy == pytest.approx(float(np.mean(top1 == labels)), abs=1e-6)


def test_structured_cli_bad_ratio_exits_2(tmp_path, monkeypatch, capsys) -> None:
    import sys

    from edgecls.cli import main

    monkeypatch.setattr(sys, "argv", ["edgecls", "prune", str(tmp_path), "--structured",
                                      "--ratio", "1.2"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2 and "--ratio must be in [0, 1)" in capsys.readouterr().err


def test_unsupported_model_is_a_user_error() -> None:
    import keras

    from edgecls.errors import EdgeclsError
    from edgecls.optimize.selection import plan

    image = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(8, 3)(image)
    model = keras.Model(image, keras.layers.GlobalAveragePooling2D()(x))
    with pytest.raises(EdgeclsError, match="no inverted-residual"):
        plan(model, 0.3)


def test_structured_cli_prunes_refits_and_reports(tmp_path, monkeypatch, capsys) -> None:
    """The whole command on a small untrained MobileNetV2 run: energy scores, refit, one
    fine-tune epoch that keeps the best validation weights, the table and a new run."""
    import sys

    import keras

    from edgecls.cli import main
    from edgecls.data.split import prepare_split
    from edgecls.models import build

    data = write_image_folder(tmp_path / "images", {"a": 20, "b": 20}, size=32)
    run = tmp_path / "run"
    run.mkdir()
    prepare_split(data, run)
    keras.utils.set_random_seed(0)
    build("mobilenet_v2", num_classes=2, input_size=32, include_top=False,
          alpha=0.35).save(run / "best.keras")
    out = tmp_path / "narrow"
    monkeypatch.setattr(sys, "argv", ["edgecls", "prune", str(run), "--structured",
                                      "--mac-reduction", "0.3", "--epochs", "1",
                                      "--batch-size", "8", "--out", str(out)])
    with pytest.raises(SystemExit) as exit_info:
        main()
    printed = capsys.readouterr().out
    assert exit_info.value.code in (0, None), printed
    assert "MACs (M)" in printed and "fine-tune: kept" in printed
    saved = json.loads((out / "prune_report.json").read_text())
    assert saved["criterion"] == "energy" and saved["reconstruct"] is True
    assert 0.25 < saved["mac_reduction"] < 0.35
    assert len(saved["val_accuracy"]) == 2 and saved["best_epoch"] in (0, 1)
    assert set(saved["reconstruction_error"]) <= set(saved["blocks"])
