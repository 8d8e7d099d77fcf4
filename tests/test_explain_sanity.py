"""Sanity checks from the saliency literature on a tiny CNN trained in seconds.

- Known evidence: the only class evidence is a coloured square at a random place; the
  heatmap's peak must fall on it (Grad-CAM, Grad-CAM++ and RISE).
- Model-parameter randomization (Adebayo et al., 2018): the heatmaps of the same
  architecture with random weights must differ strongly from the trained model's.
- Float vs INT8: the INT8 TFLite export of the same model explains nearly the same.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers.explain_models import (
    SQUARE,
    SQUARE_COLORS_BGR,
    square_cnn,
    square_dataset,
    train_square_cnn,
)

from edgecls.errors import ConfigError, ModelError
from edgecls.explain import ExplainSettings, RiseOptions, explain
from edgecls.explain.agnostic import explain_agnostic
from edgecls.explain.compare import rank_correlation
from edgecls.explain.gradcam import KerasModel, explain_gradcam
from edgecls.runtime.metadata import ModelMetadata
from edgecls.runtime.tflite_metadata import embed_tflite_metadata

LABELS = list(SQUARE_COLORS_BGR)
RISE = RiseOptions(masks=200, batch_size=50)
IMAGES = 6


@pytest.fixture(scope="module")
def trained() -> KerasModel:
    return KerasModel(train_square_cnn(epochs=4), Path("trained.keras"), LABELS)


@pytest.fixture(scope="module")
def randomized() -> KerasModel:
    return KerasModel(square_cnn(seed=7), Path("random.keras"), LABELS)


@pytest.fixture(scope="module")
def held_out() -> list[tuple[np.ndarray, int, tuple[int, int]]]:
    images, classes, corners = square_dataset(IMAGES, seed=99)
    return [(img[..., ::-1].astype(np.uint8), int(c), corner) for img, c, corner in zip(images, classes, corners)]


def on_square(heatmap: np.ndarray, corner: tuple[int, int], margin: int = 2) -> bool:
    y, x = np.unravel_index(int(np.argmax(heatmap)), heatmap.shape)
    top, left = corner
    return top - margin <= y < top + SQUARE + margin and left - margin <= x < left + SQUARE + margin


@pytest.mark.parametrize("method", ["gradcam", "gradcam++", "rise"])
def test_heatmap_peak_is_on_the_evidence(trained: KerasModel, held_out, method: str) -> None:
    hits = 0
    for image, label, corner in held_out:
        if method == "rise":
            [e] = explain_agnostic(trained, image, [label], "rise", RISE)
        else:
            [e] = explain_gradcam(trained, image, [label], method)
        assert e.class_name == LABELS[label] and e.rank == 1  # the model learned the task
        hits += on_square(e.heatmap, corner)
    assert hits >= IMAGES - 1


@pytest.mark.parametrize("method", ["gradcam", "rise"])
def test_model_parameter_randomization_changes_the_heatmaps(trained: KerasModel, randomized: KerasModel,
                                                           held_out, method: str) -> None:
    correlations = []
    for image, label, _ in held_out:
        if method == "rise":
            [a] = explain_agnostic(trained, image, [label], "rise", RISE)
            [b] = explain_agnostic(randomized, image, [label], "rise", RISE)  # same masks (seed)
        else:
            [a] = explain_gradcam(trained, image, [label])
            [b] = explain_gradcam(randomized, image, [label])
        correlations.append(rank_correlation(a.heatmap, b.heatmap))
    assert np.mean(correlations) < 0.5, correlations


def test_gradcam_needs_a_spatial_stage_and_says_what_to_use() -> None:
    import keras

    inputs = keras.Input((8, 8, 3))
    outputs = keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(inputs))
    flat = KerasModel(keras.Model(inputs, outputs), Path("flat.keras"), ["a", "b"])
    with pytest.raises(ModelError, match="no spatial convolutional stage") as error:
        explain_gradcam(flat, np.zeros((8, 8, 3), np.uint8), [0])
    assert "--method rise" in str(error.value)
    with pytest.raises(ConfigError, match="unknown class"):
        explain(flat, [np.zeros((8, 8, 3), np.uint8)], ExplainSettings(class_name="c"))


def test_float_and_int8_explain_alike(trained: KerasModel, held_out, tmp_path: Path) -> None:
    import tensorflow as tf

    keras_path = tmp_path / "square.keras"
    trained.model.save(keras_path)
    images, _, _ = square_dataset(40, seed=3)
    converter = tf.lite.TFLiteConverter.from_keras_model(trained.model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([image[None]] for image in images)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.uint8
    meta = ModelMetadata(labels=LABELS, input_size=(32, 32), precision="int8")
    int8 = tmp_path / "square_int8.tflite"
    int8.write_bytes(embed_tflite_metadata(converter.convert(), meta))

    report = explain(keras_path, [image for image, _, _ in held_out[:3]],
                     ExplainSettings(rise=RISE), compare=int8, labels=LABELS)
    assert report.method == "rise" and report.compared_model.kind == "litert"
    for result in report.results:
        assert result.top1_changed is False
        assert result.differences[0].rank_correlation > 0.7


def test_gradcam_reaches_into_the_edgecls_backbone_layout() -> None:
    import keras

    from edgecls.models.head import attach_head

    inputs = keras.Input((32, 32, 3))
    features = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(inputs)
    model = attach_head(keras.Model(inputs, features), num_classes=3)
    wrapped = KerasModel(model, Path("nested.keras"), LABELS)
    [e] = explain_gradcam(wrapped, np.full((40, 40, 3), 128, np.uint8), [1], "gradcam++")
    assert e.options["layer"] == "backbone" and e.heatmap.shape == (32, 32)
    assert e.score == pytest.approx(wrapped.predict(wrapped.prepare(np.full((40, 40, 3), 128, np.uint8))[None])[0, 1],
                                    abs=1e-5)
