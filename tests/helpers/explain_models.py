"""Models with known evidence for the explain tests.

- ``make_quadrant_onnx``: a constructed ONNX classifier that looks only at the top-left
  quadrant of its input (class "red" = red minus green there): the heatmap must find it.
- ``train_square_cnn``: a tiny Keras CNN trained in seconds on noise images where a
  coloured square at a random place is the only class evidence.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgecls.runtime.metadata import ModelMetadata, Preprocessing

SQUARE_COLORS_BGR = {"red": (40, 40, 230), "blue": (230, 40, 40), "green": (40, 230, 40)}
SQUARE = 8


def make_quadrant_onnx(path: str | Path, size: int = 32) -> Path:
    """An ONNX model whose class scores depend only on the top-left ``size/2`` square."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    half = size // 2
    weights = np.array([[8.0, -8.0], [-8.0, 8.0], [0.0, 0.0]], np.float32)  # RGB -> (red, green)
    inits = [
        numpy_helper.from_array(np.array([0, 0], np.int64), "starts"),
        numpy_helper.from_array(np.array([half, half], np.int64), "ends"),
        numpy_helper.from_array(np.array([1, 2], np.int64), "axes"),
        numpy_helper.from_array(np.array(1 / 255, np.float32), "inv255"),
        numpy_helper.from_array(weights, "W"),
    ]
    nodes = [
        helper.make_node("Slice", ["x", "starts", "ends", "axes"], ["quadrant"]),
        helper.make_node("ReduceMean", ["quadrant", "axes"], ["mean"], keepdims=0),
        helper.make_node("Mul", ["mean", "inv255"], ["features"]),
        helper.make_node("MatMul", ["features", "W"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=1),
    ]
    graph = helper.make_graph(
        nodes, "quadrant", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", size, size, 3])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", 2])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    meta = ModelMetadata(labels=["red", "green"], input_size=(size, size), preprocessing=Preprocessing(),
                         model_name="quadrant", precision="fp32")
    helper.set_model_props(model, {"edgecls": meta.to_json()})
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return Path(path)


def square_image(color: str, rng: np.random.Generator, size: int = 32) -> tuple[np.ndarray, tuple[int, int]]:
    """A noise BGR image with one coloured ``SQUARE`` px square; returns it and the square's
    top-left corner (y, x)."""
    image = rng.integers(60, 160, (size, size, 3), dtype=np.uint8)
    y, x = (int(v) for v in rng.integers(0, size - SQUARE + 1, 2))
    image[y:y + SQUARE, x:x + SQUARE] = SQUARE_COLORS_BGR[color]
    return image, (y, x)


def square_dataset(count: int, seed: int, size: int = 32) -> tuple[np.ndarray, np.ndarray, list]:
    """``count`` square images (RGB float, what Keras models take), labels and corners."""
    rng = np.random.default_rng(seed)
    labels = list(SQUARE_COLORS_BGR)
    images, classes, corners = [], [], []
    for i in range(count):
        image, corner = square_image(labels[i % len(labels)], rng, size)
        images.append(image[..., ::-1].astype(np.float32))
        classes.append(i % len(labels))
        corners.append(corner)
    return np.stack(images), np.array(classes), corners


def square_cnn(size: int = 32, seed: int = 0):
    """The untrained tiny CNN: RGB 0..255 in, softmax over the square colours out."""
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu")(x)
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="last_conv")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(len(SQUARE_COLORS_BGR), activation="softmax")(x)
    return keras.Model(inputs, outputs)


def train_square_cnn(size: int = 32, seed: int = 0, epochs: int = 6):
    """The tiny CNN trained on 600 square images (a few seconds on two cores)."""
    import keras

    model = square_cnn(size, seed)
    images, classes, _ = square_dataset(450, seed, size)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(images, classes, epochs=epochs, batch_size=32, verbose=0)
    return model
