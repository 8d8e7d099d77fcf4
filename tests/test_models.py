"""Model registry: every family builds with the right shapes, normalizes inside, and
loads weights from none / the ImageNet cache / a file, with clear errors otherwise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgecls.errors import EdgeclsError, ModelError
from edgecls.models import build, list_models
from edgecls.models.head import BACKBONE, HEAD_LAYERS

FAMILIES = {
    "mobilenet_v2": {"alpha": 0.35},
    "mobilenet_v3_small": {"alpha": 0.75},
    "mobilenet_v3_large": {"alpha": 0.75},
    "efficientnet_b0": {},
}


def test_registry_lists_the_families() -> None:
    assert set(FAMILIES) <= set(list_models())
    assert list_models("mobilenet_v3*") == ["mobilenet_v3_large", "mobilenet_v3_small"]


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_family_builds_backbone_and_head(name: str) -> None:
    model = build(name, weights=None, include_top=False, num_classes=4, input_size=(32, 48),
                  **FAMILIES[name])
    assert model.name == name
    assert model.input_shape == (None, 32, 48, 3)
    assert model.output_shape == (None, 4)
    names = [layer.name for layer in model.layers]
    assert names[1:] == [BACKBONE, *HEAD_LAYERS]
    images = np.random.default_rng(0).uniform(0, 255, (2, 32, 48, 3)).astype("float32")
    probs = np.asarray(model(images, training=False))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_include_top_gives_the_imagenet_classifier() -> None:
    model = build("mobilenet_v3_small", weights=None, include_top=True, input_size=32,
                  alpha=0.75)
    assert model.output_shape == (None, 1000)


def test_mobilenet_v2_scales_input_to_minus_one_one_inside() -> None:
    model = build("mobilenet_v2", weights=None, include_top=False, input_size=32, alpha=0.35)
    normalize = model.get_layer("normalize")
    assert normalize.scale == pytest.approx(1 / 127.5) and normalize.offset == -1.0


def test_efficientnet_normalization_survives_save_and_load(tmp_path: Path) -> None:
    import keras

    model = build("efficientnet_b0", weights=None, include_top=False, num_classes=2,
                  input_size=32)
    norm = next(layer for layer in model.get_layer(BACKBONE).layers
                if isinstance(layer, keras.layers.Normalization))
    np.testing.assert_allclose(np.asarray(norm.mean).ravel(), [0.485, 0.456, 0.406])
    np.testing.assert_allclose(np.sqrt(np.asarray(norm.variance)).ravel(),
                               [0.229, 0.224, 0.225], rtol=1e-5)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    loaded_norm = next(layer for layer in loaded.get_layer(BACKBONE).layers
                       if isinstance(layer, keras.layers.Normalization))
    np.testing.assert_array_equal(np.asarray(loaded_norm.mean), np.asarray(norm.mean))
    np.testing.assert_array_equal(np.asarray(loaded_norm.variance), np.asarray(norm.variance))


def test_unknown_model_name_lists_the_known_ones() -> None:
    with pytest.raises(EdgeclsError, match="unknown model 'resnet9000'") as info:
        build("resnet9000")
    assert "mobilenet_v2" in info.value.hint


def test_imagenet_offline_with_empty_cache_names_file_and_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.setenv("EDGECLS_OFFLINE", "1")
    with pytest.raises(ModelError) as info:
        build("mobilenet_v3_small", weights="imagenet", include_top=False, num_classes=3,
              input_size=32)
    text = str(info.value)
    assert "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5" in text
    assert str(tmp_path / "keras_home" / "models") in text


def test_imagenet_weights_come_from_the_keras_cache(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file in the cache is used without any download (here: one we wrote there)."""
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    source = build("mobilenet_v3_small", weights=None, include_top=False, input_size=32,
                   alpha=0.75)
    cache = tmp_path / "keras_home" / "models"
    cache.mkdir(parents=True)
    with h5py.File(cache / "weights_mobilenet_v3_small_224_0.75_float_no_top_v2.h5", "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, source)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.setenv("EDGECLS_OFFLINE", "1")
    model = build("mobilenet_v3_small", weights="imagenet", include_top=False, num_classes=3,
                  input_size=32, alpha=0.75)
    for got, want in zip(model.get_layer(BACKBONE).get_weights(), source.get_weights()):
        np.testing.assert_array_equal(got, want)


def test_imagenet_weights_need_a_published_width() -> None:
    with pytest.raises(ModelError, match="alpha=0.3"):
        build("mobilenet_v2", weights="imagenet", num_classes=2, input_size=32, alpha=0.3)


@pytest.mark.parametrize("bad, message", [("missing.weights.h5", "does not exist"),
                                          ("notes.txt", "not a .keras or .weights.h5")])
def test_bad_weights_path(tmp_path: Path, bad: str, message: str) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ModelError, match=message):
        build("mobilenet_v3_small", weights=str(tmp_path / bad), num_classes=2, input_size=32)


def test_weights_file_for_the_whole_model(tmp_path: Path) -> None:
    source = build("mobilenet_v3_small", weights=None, num_classes=3, input_size=32, alpha=0.75)
    source.save_weights(tmp_path / "w.weights.h5")
    model = build("mobilenet_v3_small", weights=tmp_path / "w.weights.h5", num_classes=3,
                  input_size=32, alpha=0.75)
    for got, want in zip(model.get_weights(), source.get_weights()):
        np.testing.assert_array_equal(got, want)


def test_keras_file_with_other_classes_seeds_the_backbone(tmp_path: Path) -> None:
    source = build("mobilenet_v3_small", weights=None, num_classes=5, input_size=32, alpha=0.75)
    source.save(tmp_path / "other.keras")
    model = build("mobilenet_v3_small", weights=tmp_path / "other.keras", num_classes=3,
                  input_size=32, alpha=0.75)
    assert model.output_shape == (None, 3)
    for got, want in zip(model.get_layer(BACKBONE).get_weights(),
                         source.get_layer(BACKBONE).get_weights()):
        np.testing.assert_array_equal(got, want)


def test_weights_of_another_family_are_refused(tmp_path: Path) -> None:
    source = build("mobilenet_v2", weights=None, num_classes=3, input_size=32, alpha=0.35)
    source.save(tmp_path / "v2.keras")
    with pytest.raises(ModelError, match="do not fit"):
        build("mobilenet_v3_small", weights=tmp_path / "v2.keras", num_classes=3, input_size=32)


def test_list_models_through_the_api_names_and_describes_each_family() -> None:
    import edgecls

    listed = edgecls.list_models("mobilenet_v3*")
    assert listed.names == ["mobilenet_v3_large", "mobilenet_v3_small"]
    assert listed.models["mobilenet_v3_small"].startswith("MobileNetV3-Small")
    assert listed.to_dict()["models"][0]["name"] == "mobilenet_v3_large"
    assert "<table" in listed._repr_html_() and "MobileNetV3-Large" in listed._repr_html_()
    assert edgecls.list_models("nothing*").names == []
