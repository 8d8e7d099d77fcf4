"""A run's float Keras model: load it, read its input size, predict in batches.

The one place train, optimize and export read a ``.keras`` file, so every stage gives the
same clear error for a broken file and runs the model the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgecls.errors import ModelError

PREDICT_BATCH = 32


def load_float_model(path: str | Path, compile: bool = False) -> Any:
    """The Keras model saved at ``path`` (a clear error when the file is not one).

    Args:
        path: a ``.keras`` file.
        compile: restore the optimizer and loss too (resuming training needs them).

    Raises:
        ModelError: the file is missing or Keras cannot read it.
    """
    import keras

    try:
        return keras.saving.load_model(str(path), compile=compile)
    except Exception as exc:  # Keras raises many types for a broken file
        raise ModelError(f"cannot load the Keras model {path}: {str(exc).splitlines()[0][:200]}",
                         "re-run `edgecls train`, or pass the run directory it wrote") from None


def input_size(model: Any) -> tuple[int, int]:
    """(height, width) of a model with a static input size.

    Raises:
        ModelError: the input is not (None, H, W, 3) with fixed H and W.
    """
    shape = model.input_shape
    if len(shape) != 4 or shape[1] is None or shape[2] is None or shape[3] != 3:
        raise ModelError(f"the model's input shape {shape} is not (None, H, W, 3) with fixed H, W",
                         "export needs a fixed input size; rebuild the model with input_size")
    return int(shape[1]), int(shape[2])


def build_for_fit(model: Any, dataset: Any) -> None:
    """Creates a compiled model's optimizer, loss and metric variables before ``fit``.

    On one device Keras creates them while tracing the first train step, and TensorFlow
    traces a function that created variables a second time; built here from
    ``dataset``'s element spec, each step is traced once. Under a distribution strategy
    Keras builds them itself before tracing (nothing is done here).
    """
    build = getattr(model, "_symbolic_build", None)  # private in Keras 3; without it fit traces twice
    if build is not None and getattr(model, "_distribute_strategy", None) is None:
        build(data_batch=dataset.element_spec)


def predict(model: Any, images: np.ndarray, batch_size: int = PREDICT_BATCH) -> np.ndarray:
    """float32 class scores (N, C) of a Keras model on prepared uint8/float images.

    Runs ``batch_size`` images at a time in inference mode, so memory stays bounded
    whatever the number of images.
    """
    chunks = [np.asarray(model(images[start:start + batch_size].astype(np.float32), training=False))
              for start in range(0, len(images), batch_size)]
    return np.concatenate(chunks).astype(np.float32)
