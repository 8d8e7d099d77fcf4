"""Runs for the comparison tests, without training: a hand-built model that reads the
colour of the generated images (``helpers.images``) is right on nearly all of them, an
untrained one guesses."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from edgecls.data.split import Split, prepare_split
from helpers.images import write_image_folder

CLASSES = {"circle_r": 60, "square_g": 60, "circle_b": 60}
SIZE = 32
_BGR = [(255, 40, 40), (40, 255, 40), (40, 40, 255)]  # helpers.images colours, in CLASSES order


def colour_model(labels: list[str]) -> Any:
    """Mean RGB of the image, matched against each class's shape colour (centred), softmax."""
    import keras

    kernel = np.zeros((3, len(labels)), dtype=np.float32)
    for index, name in enumerate(CLASSES):
        rgb = np.array(_BGR[index][::-1], dtype=np.float32)
        kernel[:, labels.index(name)] = (rgb - rgb.mean()) / 20.0
    inputs = keras.Input((SIZE, SIZE, 3), name="image")
    pooled = keras.layers.GlobalAveragePooling2D()(inputs)
    outputs = keras.layers.Dense(len(labels), activation="softmax")(pooled)
    model = keras.Model(inputs, outputs, name="colour")
    model.layers[-1].set_weights([kernel, np.zeros(len(labels), np.float32)])
    return model


def write_run(root: Path) -> Path:
    """A run directory (generated images, split, labels) whose best.keras is ``colour_model``."""
    data = write_image_folder(root / "images", CLASSES, size=SIZE)
    run = root / "run"
    split = prepare_split(data, run)
    colour_model(split.labels).save(run / "best.keras")
    return run


def copy_run(run: Path, dest: Path, model: Any) -> Path:
    """``run``'s split and labels with ``model`` as its best.keras."""
    dest.mkdir(parents=True)
    for name in ("split.json", "labels.txt"):
        shutil.copy(run / name, dest / name)
    model.save(dest / "best.keras")
    return dest


def drop_test_images(run: Path, count: int) -> None:
    """Removes ``count`` test images from ``run``'s split (as if they were added later)."""
    split = Split.load(run / "split.json")
    split.subsets["test"] = split.subsets["test"][count:]
    split.save(run / "split.json")
