"""``Classifier``: a model file in, top-k (label, score) per image out.

An image is a path, a PIL-like image or an array whose colour order ``channels`` states
(``"bgr"``, OpenCV's, by default; see ``image_input``).

Reads the metadata embedded by ``edgecls export``; for a foreign model it derives the
input from the tensor and takes labels and normalization from the model's standard
TFLite Metadata when it has some (MediaPipe Model Maker, model zoos, the Coral
ImageNet models), else labels from a file. Our own entry wins when both exist. The
per-frame path reuses preallocated buffers and, for uint8/int8 models whose input is
plain pixels, never leaves 8-bit integers.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from edgecls.errors import ModelError
from edgecls.metrics import softmax
from edgecls.runtime.backends import load_backend
from edgecls.runtime.base import Backend, BackendOptions
from edgecls.runtime.image_input import to_bgr
from edgecls.runtime.metadata import ModelMetadata, Preprocessing
from edgecls.runtime.preprocess import prepare, prepare_uint8
from edgecls.runtime.tensors import TensorInfo, dequantize
from edgecls.runtime.tflite_standard_metadata import apply_to

log = logging.getLogger(__name__)

Prediction = list[tuple[str, float]]
Image = Any  # a path, a PIL-like image, or an array (see ``image_input.to_bgr``)


def read_labels(path: str | Path) -> list[str]:
    """Class names from a text file, one per line in output-index order."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"labels file {path} does not exist", "pass a text file with one class name per line")
    labels = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    if not labels:
        raise ModelError(f"labels file {path} is empty", "one class name per line, in output order")
    return labels


class Classifier:
    """Classifies images (paths, PIL images, BGR/RGB/gray arrays) with any model file edgecls loads.

    Args:
        path: a ``.tflite``, ``.onnx`` or OpenVINO ``.xml`` model.
        labels: a labels file or list; overrides embedded labels; needed for foreign models.
        options: threads, device, execution providers (see ``BackendOptions``).
        top_k: default number of (label, score) pairs returned.
        preprocessing: overrides the embedded or derived preprocessing.
        verify: refuse a file that does not match the digest embedded at export
            (``False`` loads it anyway; models without a digest always load).
    """

    def __init__(self, path: str | Path, labels: str | Path | Sequence[str] | None = None,
                 options: BackendOptions | None = None, top_k: int = 5,
                 preprocessing: Preprocessing | None = None, verify: bool = True) -> None:
        self.backend: Backend = load_backend(path, options, verify=verify)
        self._check_image_input()
        self.top_k = top_k
        embedded = self.backend.read_metadata()
        self.is_foreign = embedded is None
        self.metadata: ModelMetadata = embedded or self._foreign_metadata()
        if preprocessing is not None:
            self.metadata.preprocessing = preprocessing
        self.labels = self._resolve_labels(labels)
        self.input_size: tuple[int, int] = tuple(self.metadata.input_size)  # type: ignore[assignment]
        self._check_metadata_fits()
        self._pre = self.metadata.preprocessing
        self._softmax: bool | None = None if self.is_foreign and not self._out.is_quantized \
            else not self.metadata.outputs_probabilities
        self._pixel_shift = self._native_pixel_shift()
        self._native = np.empty(self._native_shape(1), dtype=self._in.dtype) \
            if self._pixel_shift is not None else None
        self._batch = np.empty((1, *self.input_size, 3), dtype=np.float32)

    # -- set-up -------------------------------------------------------------------
    @property
    def _in(self) -> TensorInfo:
        return self.backend.input_info

    @property
    def _out(self) -> TensorInfo:
        return self.backend.output_info

    def _check_image_input(self) -> None:
        info = self._in
        channels_axis = 1 if info.layout == "NCHW" else 3
        if len(info.shape) != 4 or info.shape[channels_axis] not in (3, -1):
            raise ModelError(
                f"{self.backend.path}: a camera frame cannot be fitted to input shape {info.shape}",
                "edgecls runs image classifiers with a (N, H, W, 3) or (N, 3, H, W) input",
            )

    def _check_metadata_fits(self) -> None:
        """Embedded layout wins over the shape guess; the input size must match the model."""
        if not self.is_foreign and self.metadata.layout in ("NHWC", "NCHW"):
            self._in.layout = self.metadata.layout
        actual = self._in.spatial_size
        if actual is not None and actual != self.input_size:
            raise ModelError(f"{self.backend.path}: metadata says input {self.input_size}, the model has {actual}",
                             "re-export the model; its embedded metadata does not match it")

    def _foreign_metadata(self) -> ModelMetadata:
        """Defaults from the input tensor: its size, and raw pixels for 8-bit inputs."""
        info = self._in
        size = info.spatial_size
        if size is None:
            raise ModelError(f"{self.backend.path}: input size is dynamic and no edgecls metadata says it",
                             "export the model with a fixed input size, or with `edgecls export`")
        # Area interpolation: an antialiased shrink, which reproduces the published accuracy
        # of the Coral reference models (bilinear differs by +0.024 top-1 on mobilenet_v1 128).
        pre = Preprocessing(interpolation="area")
        if info.is_quantized:  # 8-bit image models take raw pixels: real = (q - zp) * scale
            scale, zero_point = info.quantization  # type: ignore[misc]
            pre = Preprocessing(interpolation="area", scale=scale, offset=-zero_point * scale)
        meta = ModelMetadata(labels=[], input_size=size, layout=info.layout, preprocessing=pre,
                             input_dtype=info.dtype, producer="unknown")
        standard = self.backend.read_standard_metadata()
        return apply_to(meta, standard, info.is_quantized) if standard is not None else meta

    def _resolve_labels(self, labels: str | Path | Sequence[str] | None) -> list[str]:
        classes = int(np.prod([d for d in self._out.shape[1:] if d > 0])) or None
        if labels is not None:
            names = read_labels(labels) if isinstance(labels, (str, Path)) else list(labels)
        elif self.metadata.labels:
            names = list(self.metadata.labels)
        else:
            log.warning("%s has no embedded labels; pass --labels FILE", self.backend.path)
            return [f"class_{i}" for i in range(classes or 0)]
        if classes == 1001 and len(names) == 1000:  # ImageNet labels without "background"
            names = ["background", *names]
        if classes and len(names) != classes:
            raise ModelError(f"{len(names)} labels for a model with {classes} outputs",
                             "pass the labels file that belongs to this model")
        return names

    def _native_pixel_shift(self) -> int | None:
        """0 or -128 when an 8-bit input is just the pixels (shifted); None otherwise."""
        info, pre = self._in, self.metadata.preprocessing
        if not info.is_quantized or info.layout != "NHWC":
            return None
        scale, zero_point = info.quantization  # type: ignore[misc]
        if abs(pre.scale / scale - 1.0) > 1e-4:
            return None
        shift = pre.offset / scale + zero_point
        wanted = 0 if info.dtype == "uint8" else -128
        return wanted if abs(shift - wanted) < 1e-3 else None

    def _native_shape(self, batch: int) -> tuple[int, ...]:
        return (batch, *self.input_size, 3)

    # -- inference ------------------------------------------------------------------
    def prepare(self, frame_bgr: np.ndarray) -> np.ndarray:
        """One frame as this model's float32 HWC input (see ``preprocess.prepare``)."""
        return prepare(frame_bgr, self.input_size, self._pre)

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Probabilities (N, classes) for a batch of prepared float32 NHWC images."""
        return self._probabilities(self.backend.run(np.asarray(batch, dtype=np.float32)))

    def probabilities(self, image: Image, channels: str = "bgr") -> np.ndarray:
        """Probabilities (classes,) for one image, on the lean per-frame path."""
        frame_bgr = to_bgr(image, channels)
        if self._native is not None:
            prepare_uint8(frame_bgr, self.input_size, self._pre, out=self._pixels(self._native)[0])
            self._shift_pixels(self._native)
            return self._scores_from_raw(self.backend.invoke(self._native))[0]
        self._batch[0] = self.prepare(frame_bgr)
        return self.predict(self._batch)[0]

    def probabilities_batch(self, images: Sequence[Image], channels: str = "bgr") -> np.ndarray:
        """Probabilities (N, classes) for several images."""
        frames_bgr = [to_bgr(image, channels) for image in images]
        if not len(frames_bgr):
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        if self._native is not None:
            native = np.empty(self._native_shape(len(frames_bgr)), dtype=self._in.dtype)
            pixels = self._pixels(native)
            for i, frame in enumerate(frames_bgr):
                prepare_uint8(frame, self.input_size, self._pre, out=pixels[i])
            self._shift_pixels(native)
            return self._scores_from_raw(self.backend.invoke(native))
        return self.predict(np.stack([self.prepare(f) for f in frames_bgr]))

    def classify(self, image: Image, top_k: int | None = None, channels: str = "bgr") -> Prediction:
        """Top-k (label, score) pairs for one image, best first.

        Args:
            image: a file path, a PIL-like image, or an HxW / HxWx3 / HxWx4 array
                (uint8 0..255, or float 0..1).
            top_k: how many pairs (default: the classifier's ``top_k``).
            channels: the colour order of an array: "bgr" (OpenCV), "rgb" or "gray".

        Raises:
            DataError: a path that is missing or not a readable image.
            ValueError: anything else that is not an image, or an unknown ``channels``.
        """
        return self.top(self.probabilities(image, channels), top_k)

    def classify_batch(self, images: Sequence[Image], top_k: int | None = None,
                       channels: str = "bgr") -> list[Prediction]:
        """Top-k (label, score) pairs for each of several images (as ``classify`` takes)."""
        return [self.top(p, top_k) for p in self.probabilities_batch(images, channels)]

    def top(self, probabilities: np.ndarray, top_k: int | None = None) -> Prediction:
        """The k best (label, score) pairs of one probability vector."""
        k = min(top_k or self.top_k, probabilities.shape[0])
        best = np.argpartition(probabilities, -k)[-k:]
        best = best[np.argsort(probabilities[best])[::-1]].tolist()
        return list(zip([self.labels[i] for i in best], probabilities[best].tolist()))

    # -- helpers --------------------------------------------------------------------
    @staticmethod
    def _pixels(native: np.ndarray) -> np.ndarray:
        return native.view(np.uint8)

    def _shift_pixels(self, native: np.ndarray) -> None:
        if self._pixel_shift:  # int8 input: q = pixel - 128, i.e. flip the top bit
            pixels = self._pixels(native)
            np.bitwise_xor(pixels, np.uint8(0x80), out=pixels)

    def _scores_from_raw(self, raw: np.ndarray) -> np.ndarray:
        info = self._out
        scores = dequantize(raw, info.quantization) if info.is_quantized else raw.astype(np.float32)
        return self._probabilities(scores.reshape(scores.shape[0], -1))

    def _probabilities(self, scores: np.ndarray) -> np.ndarray:
        apply = self._softmax
        if apply is None:  # foreign float model: softmax unless it already gives probabilities
            apply = bool(scores.min() < 0 or np.abs(scores.sum(axis=1) - 1).max() > 0.05)
        return softmax(scores) if apply else scores
