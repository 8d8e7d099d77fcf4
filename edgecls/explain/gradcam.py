"""Grad-CAM and Grad-CAM++ for a float Keras model (imports TensorFlow when run).

Grad-CAM (Selvaraju et al., 2017) weights the channels of the last spatial feature map
by the mean gradient of the class score; Grad-CAM++ (Chattopadhay et al., 2018) by
positive gradients weighted per location. The class score is the logit: when the model
ends in a softmax Dense layer, its pre-activation is recomputed inside the tape.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edgecls.errors import ConfigError, ModelError
from edgecls.explain.heatmap import Explanation, normalize
from edgecls.explain.model import ExplainedModel
from edgecls.models.float_model import input_size, load_float_model
from edgecls.runtime.metadata import Preprocessing
from edgecls.runtime.preprocess import prepare

GRADIENT_METHODS = ("gradcam", "gradcam++")
PREDICT_CHUNK = 64


class KerasModel(ExplainedModel):
    """A float Keras model (RGB 0..255 input, as every edgecls model) to explain.

    Args:
        model: a loaded ``keras.Model``.
        path: where it came from (for captions and JSON).
        labels: class names in output order (default: ``class_<i>``).
    """

    kind = "keras"
    methods = (*GRADIENT_METHODS, "rise", "occlusion")

    def __init__(self, model: Any, path: Path, labels: Sequence[str] | None = None) -> None:
        classes = int(model.output_shape[-1])
        names = list(labels) if labels else [f"class_{i}" for i in range(classes)]
        if len(names) != classes:
            raise ModelError(f"{len(names)} labels for a model with {classes} outputs",
                             "pass the labels file that belongs to this model")
        super().__init__(Path(path), names, input_size(model))
        self.model = model
        self._pre = Preprocessing()  # what training used: RGB 0..255, stretched bilinear

    @classmethod
    def load(cls, path: str | Path, labels: Sequence[str] | None = None) -> KerasModel:
        """Loads a ``.keras`` file (a clear error when it is not one)."""
        return cls(load_float_model(Path(path)), Path(path), labels)

    def prepare(self, image_bgr: np.ndarray) -> np.ndarray:
        return prepare(image_bgr, self.input_size, self._pre)

    @cached_property
    def gradient_model(self) -> _GradientModel:
        """Input -> (last spatial feature map, class score input), built once."""
        return _gradient_model(self)

    def predict(self, batch: np.ndarray) -> np.ndarray:
        import keras

        chunks = [keras.ops.convert_to_numpy(self.model(batch[i:i + PREDICT_CHUNK], training=False))
                  for i in range(0, len(batch), PREDICT_CHUNK)]
        return np.concatenate(chunks).astype(np.float32)


def explain_gradcam(model: KerasModel, image_bgr: np.ndarray, classes: list[int],
                    method: str = "gradcam") -> list[Explanation]:
    """Grad-CAM (or Grad-CAM++) heatmaps of ``classes`` for one BGR image.

    Raises:
        ModelError: the model has no spatial convolutional stage (use RISE instead).
    """
    if method not in GRADIENT_METHODS:
        raise ConfigError(f"unknown gradient method {method!r}", f"use one of {', '.join(GRADIENT_METHODS)}")
    prepared = model.prepare(image_bgr)
    started = time.perf_counter()
    grad = model.gradient_model
    maps, probabilities = _class_activation_maps(grad, prepared, classes, plus=method == "gradcam++")
    seconds = time.perf_counter() - started
    height, width = model.input_size
    return [Explanation(method=method, class_name=model.labels[c], class_index=c,
                        score=float(probabilities[c]), rank=int((probabilities > probabilities[c]).sum()) + 1,
                        heatmap=normalize(cv2.resize(maps[i], (width, height), interpolation=cv2.INTER_LINEAR)),
                        seconds=seconds, options={"layer": grad.layer_name})
            for i, c in enumerate(classes)]


def last_spatial_layer(model: Any) -> Any:
    """The last top-level layer whose output is an (N, H, W, C) map with H, W > 1, at or
    after the first such layer with weights (a convolution, or a nested backbone)."""
    chosen, convolved = None, False
    for layer in model.layers:
        shape = _outer_output(layer).shape
        spatial = len(shape) == 4 and all(d is not None and d > 1 for d in shape[1:3])
        convolved = convolved or (spatial and bool(layer.weights))
        if spatial and convolved:
            chosen = layer
    if chosen is None:
        raise ModelError(f"{getattr(model, 'name', 'the model')} has no spatial convolutional stage "
                         "for Grad-CAM (no convolution outputs an (N, H, W, C) feature map)",
                         "use --method rise or --method occlusion, which work on any model")
    return chosen


def _outer_output(layer: Any) -> Any:
    # The layer's output in the enclosing model's graph: for a nested model (the edgecls
    # "backbone"), ``layer.output`` is the inner graph's tensor, not connected to the input.
    return layer._inbound_nodes[-1].output_tensors[0]


@dataclass
class _GradientModel:
    """Input -> (feature map, score input); ``dense`` maps the score input to logits."""

    model: Any
    layer_name: str
    dense: Any = None  # the final softmax Dense layer, applied without its softmax


def _gradient_model(model: KerasModel) -> _GradientModel:
    import keras

    net = model.model
    layer = last_spatial_layer(net)
    last = net.layers[-1]
    dense = last if _is_softmax_dense(last) else None
    target = last._inbound_nodes[-1].input_tensors[0] if dense is not None else _outer_output(last)
    return _GradientModel(keras.Model(net.inputs, [_outer_output(layer), target]), layer.name, dense)


def _is_softmax_dense(layer: Any) -> bool:
    activation = getattr(layer, "activation", None)
    return hasattr(layer, "kernel") and getattr(activation, "__name__", "") == "softmax"


def _class_activation_maps(grad: _GradientModel, prepared: np.ndarray, classes: list[int],
                           plus: bool) -> tuple[list[np.ndarray], np.ndarray]:
    """One (h, w) activation map per class at the feature map's resolution, and the
    model's probabilities for the image."""
    import tensorflow as tf

    with tf.GradientTape(persistent=True) as tape:
        features, target = grad.model(tf.constant(prepared[None]), training=False)
        tape.watch(features)
        if grad.dense is not None:
            logits = tf.matmul(target, grad.dense.kernel) + grad.dense.bias
            probabilities = tf.nn.softmax(logits)
        else:
            logits = probabilities = target
        scores = [logits[0, c] for c in classes]
    maps = [_weighted_map(features[0].numpy(), tape.gradient(s, features)[0].numpy(), plus) for s in scores]
    del tape
    return maps, probabilities[0].numpy()


def _weighted_map(features: np.ndarray, gradients: np.ndarray, plus: bool) -> np.ndarray:
    """ReLU of the channel-weighted sum of an (h, w, C) feature map."""
    if plus:  # Grad-CAM++: per-location weights from 2nd/3rd powers of the gradient
        g2, g3 = gradients ** 2, gradients ** 3
        denominator = 2 * g2 + features.sum(axis=(0, 1), keepdims=True) * g3
        alpha = g2 / np.where(np.abs(denominator) > 1e-12, denominator, 1.0)
        weights = (alpha * np.maximum(gradients, 0)).sum(axis=(0, 1))
    else:
        weights = gradients.mean(axis=(0, 1))
    return np.maximum(features @ weights, 0).astype(np.float32)
