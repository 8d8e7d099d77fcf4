"""Every weight survives loading, for the backbone + head layout: from a backbone
weights file at build time, and from the checkpoint a resumed run (on one device or
under a mirrored strategy) continues from.

Keras 3.14+ warns "Skipping nested container ... Affected layers will retain their
freshly-initialized weights" when a Functional backbone's ``_operations_by_depth`` has
no group in a weights file. These tests prove that nothing stays fresh: weights,
optimizer variables and predictions before saving equal those after loading."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgecls.rundir import RunDir
from helpers.images import write_image_folder
from helpers.runs import TINY, InterruptAt, tiny_cnn, tiny_config

SKIPPED = "Skipping nested container"
IMAGES = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype(np.float32)


@pytest.fixture(scope="module")
def backbone(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """A backbone weights file with distinctive values (no initializer gives them), and
    the network saved in it."""
    net = tiny_cnn((32, 32), None, include_top=False, weights=None)
    rng = np.random.default_rng(1)
    for variable in net.weights:
        variable.assign(rng.uniform(0.5, 1.5, variable.shape).astype(np.float32))
    path = tmp_path_factory.mktemp("reload_backbone") / "tiny.weights.h5"
    net.save_weights(path)
    return path, net


def test_backbone_weights_file_loads_every_weight_quietly(backbone: tuple[Path, Any]) -> None:
    from edgecls.models import build

    path, net = backbone
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = build(TINY, weights=str(path), include_top=False, num_classes=3, input_size=32)
    assert [str(w.message) for w in caught if SKIPPED in str(w.message)] == []
    loaded = model.get_layer("backbone")
    assert [v.path for v in loaded.weights] == [v.path for v in net.weights]
    for got, want in zip(loaded.weights, net.weights):
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    np.testing.assert_array_equal(loaded.predict(IMAGES, verbose=0), net.predict(IMAGES, verbose=0))


def test_a_weight_the_file_lacks_is_detected(backbone: tuple[Path, Any]) -> None:
    """The check that lets the warning go: one weight not from the file fails it."""
    from edgecls.models.weights import _every_weight_from_file

    path, net = backbone
    assert _every_weight_from_file(net, path)
    copy = tiny_cnn((32, 32), None, include_top=False, weights=None)
    copy.set_weights(net.get_weights())
    copy.weights[0].assign(copy.weights[0] + 1.0)
    assert not _every_weight_from_file(copy, path)


def _snapshot(model: Any) -> dict[str, Any]:
    import keras

    return {"paths": [v.path for v in model.weights],
            "weights": [np.array(v.numpy()) for v in model.weights],
            "optimizer": [np.array(v.numpy()) for v in model.optimizer.variables],
            "predictions": keras.ops.convert_to_numpy(model(IMAGES, training=False))}


def _snapshots() -> Any:
    """Keras callback: the full model's state after each epoch (after the checkpoint is
    saved) and when a fit starts (after a resume loaded it)."""
    import keras

    class Snapshots(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.after_epoch: dict[str, Any] | None = None
            self.at_start: list[dict[str, Any]] = []

        def _full_model(self) -> bool:  # not the head on cached features
            return len(self.model.inputs[0].shape) == 4

        def on_train_begin(self, logs: dict | None = None) -> None:
            if self._full_model():
                self.at_start.append(_snapshot(self.model))

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            if self._full_model():
                self.after_epoch = _snapshot(self.model)

    return Snapshots()


@pytest.mark.parametrize("replicas", ["", "1"], ids=["one_device", "mirrored"])
def test_resumed_fine_tune_continues_from_every_saved_weight(
        backbone: tuple[Path, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        replicas: str) -> None:
    from edgecls.train.fit import train

    monkeypatch.setenv("EDGECLS_CPU_REPLICAS", replicas)  # "1": a MirroredStrategy
    data = write_image_folder(tmp_path / "images", {"circle_r": 8, "square_g": 8})
    run = RunDir(tmp_path / "run")
    config = tiny_config(data, run.root, weights=str(backbone[0]), epochs=3, head_epochs=1)
    before = _snapshots()
    with pytest.raises(KeyboardInterrupt):  # in the second fine-tune epoch
        train(config, callbacks=[before, InterruptAt(epoch=1, batch=0)])
    after = _snapshots()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = train(config, resume=True, callbacks=[after])
    assert result.placement.kind == ("mirrored" if replicas else "default")
    assert [str(w.message) for w in caught if SKIPPED in str(w.message)] == []
    saved, loaded = before.after_epoch, after.at_start[0]
    assert loaded["paths"] == saved["paths"]
    for name in ("weights", "optimizer"):
        assert len(loaded[name]) == len(saved[name])
        for got, want in zip(loaded[name], saved[name]):
            np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(loaded["predictions"], saved["predictions"])
