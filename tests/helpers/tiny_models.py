"""Tiny real models for tests: ONNX, OpenVINO IR and TFLite (float, int8, uint8).

Every model computes the same function, so tests can check any backend against
``TinyNet.probabilities`` in numpy::

    features = mean over H, W of the RGB input (0..255) / 255       # (N, 3)
    probabilities = softmax(features @ weights + bias)               # (N, classes)

With the default weights the classes are "red", "green" and "blue": a pure red BGR
frame (0, 0, 255) is classified "red" by every backend, which makes the channel
order visible in tests. Metadata is embedded when ``metadata`` is given (edgecls
style, see ``tiny_metadata``), so the same helpers build "foreign" models too.

Building the ONNX/OpenVINO models needs ``onnx`` and ``openvino``; the TFLite ones
import TensorFlow (allowed in tests, never in ``edgecls.runtime``) and take a few
seconds: ``make_tflite`` converts each distinct model once per process.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgecls.runtime.metadata import ModelMetadata, Preprocessing

COLOR_LABELS = ["red", "green", "blue"]


@dataclass
class TinyNet:
    """The weights and the numpy reference of every tiny model."""

    size: tuple[int, int] = (16, 16)
    weights: np.ndarray = field(
        default_factory=lambda: (8.0 * np.eye(3) - 4.0).astype(np.float32)  # (3, classes)
    )
    bias: np.ndarray = field(default_factory=lambda: np.zeros(3, np.float32))

    @property
    def classes(self) -> int:
        return int(self.weights.shape[1])

    def logits(self, batch_rgb: np.ndarray) -> np.ndarray:
        """Logits for a float NHWC batch of RGB pixels 0..255."""
        features = batch_rgb.astype(np.float32).mean(axis=(1, 2)) / 255.0
        return features @ self.weights + self.bias

    def probabilities(self, batch_rgb: np.ndarray) -> np.ndarray:
        """Softmax probabilities for a float NHWC batch of RGB pixels 0..255."""
        logits = self.logits(batch_rgb)
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        return exp / exp.sum(axis=1, keepdims=True)


def tiny_metadata(net: TinyNet | None = None, labels: list[str] | None = None,
                  **fields: object) -> ModelMetadata:
    """edgecls metadata for a tiny model; ``fields`` override any ModelMetadata field."""
    net = net or TinyNet()
    values: dict[str, object] = dict(
        labels=labels or COLOR_LABELS[: net.classes], input_size=net.size,
        preprocessing=Preprocessing(), model_name="tiny", precision="fp32",
    )
    values.update(fields)
    return ModelMetadata(**values)  # type: ignore[arg-type]


def color_frame(label: str, height: int = 48, width: int = 64) -> np.ndarray:
    """A BGR uint8 frame of one pure color ("red", "green" or "blue")."""
    bgr = {"red": (0, 0, 255), "green": (0, 255, 0), "blue": (255, 0, 0)}[label]
    frame = np.empty((height, width, 3), np.uint8)
    frame[:] = bgr
    return frame


# -- ONNX ----------------------------------------------------------------------------
def make_onnx(path: str | Path, net: TinyNet | None = None, metadata: ModelMetadata | None = None,
              layout: str = "NHWC", quantized: bool = False, softmax: bool = True,
              dynamic_batch: bool = True) -> Path:
    """Writes a tiny ONNX classifier (float input; QDQ nodes when ``quantized``)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    net = net or TinyNet()
    h, w = net.size
    batch: int | str = "N" if dynamic_batch else 1
    shape = [batch, h, w, 3] if layout == "NHWC" else [batch, 3, h, w]
    axes = [1, 2] if layout == "NHWC" else [2, 3]
    inits = [
        numpy_helper.from_array(np.array(axes, np.int64), "axes"),
        numpy_helper.from_array(np.array(1 / 255, np.float32), "inv255"),
        numpy_helper.from_array(net.weights, "W"),
        numpy_helper.from_array(net.bias, "B"),
    ]
    nodes = [
        helper.make_node("ReduceMean", ["x", "axes"], ["mean"], keepdims=0),
        helper.make_node("Mul", ["mean", "inv255"], ["features"]),
    ]
    weights = "W"
    if quantized:
        nodes, inits, weights = _add_qdq(nodes, inits, net)
    nodes += [helper.make_node("MatMul", ["features_q" if quantized else "features", weights], ["mm"]),
              helper.make_node("Add", ["mm", "B"], ["logits"])]
    out = "logits"
    if softmax:
        nodes.append(helper.make_node("Softmax", ["logits"], ["probs"], axis=1))
        out = "probs"
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, [batch, net.classes])], inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], producer_name="tiny")
    model.ir_version = 9
    if metadata is not None:
        helper.set_model_props(model, {"edgecls": metadata.to_json()})
    onnx.checker.check_model(model)
    path = Path(path)
    onnx.save(model, str(path))
    return path


def _add_qdq(nodes: list, inits: list, net: TinyNet) -> tuple[list, list, str]:
    """QuantizeLinear/DequantizeLinear around the features and weights (int8, QDQ format)."""
    from onnx import helper, numpy_helper

    w_scale = float(np.abs(net.weights).max() / 127)
    inits = inits + [
        numpy_helper.from_array(np.array(1 / 255, np.float32), "f_scale"),
        numpy_helper.from_array(np.array(-128, np.int8), "f_zp"),
        numpy_helper.from_array(np.round(net.weights / w_scale).astype(np.int8), "Wq"),
        numpy_helper.from_array(np.array(w_scale, np.float32), "w_scale"),
        numpy_helper.from_array(np.array(0, np.int8), "w_zp"),
    ]
    nodes = nodes + [
        helper.make_node("QuantizeLinear", ["features", "f_scale", "f_zp"], ["features_i8"]),
        helper.make_node("DequantizeLinear", ["features_i8", "f_scale", "f_zp"], ["features_q"]),
        helper.make_node("DequantizeLinear", ["Wq", "w_scale", "w_zp"], ["W_dq"]),
    ]
    return nodes, inits, "W_dq"


# -- OpenVINO ------------------------------------------------------------------------
def make_openvino(xml_path: str | Path, net: TinyNet | None = None,
                  metadata: ModelMetadata | None = None, layout: str = "NHWC") -> Path:
    """Writes a tiny OpenVINO IR (``.xml`` + ``.bin``) converted from the tiny ONNX model."""
    import openvino as ov

    xml_path = Path(xml_path)
    onnx_path = make_onnx(xml_path.with_suffix(".src.onnx"), net, layout=layout)
    model = ov.convert_model(str(onnx_path))
    if metadata is not None:
        model.set_rt_info(metadata.to_json(), ["edgecls"])
    ov.save_model(model, str(xml_path), compress_to_fp16=False)
    onnx_path.unlink()
    return xml_path


# -- TFLite --------------------------------------------------------------------------
def make_tflite(path: str | Path, net: TinyNet | None = None, metadata: ModelMetadata | None = None,
                quantize: str = "none", softmax: bool = True, batch: int | None = 1) -> Path:
    """Writes a tiny TFLite classifier, converted with TensorFlow in the test process (once
    per process for each model: the converted bytes are reused, the metadata added per call).

    Args:
        quantize: "none" (float32), "int8" or "uint8" (full-integer, with that input and
            output type; input scale about 1, i.e. raw pixels).
        metadata: embedded with ``embed_tflite_metadata`` when given.
        batch: the input's batch (None: free, as Keras exports write it).
    """
    from edgecls.runtime.tflite_metadata import embed_tflite_metadata

    net = net or TinyNet()
    weights, bias = np.asarray(net.weights, np.float32), np.asarray(net.bias, np.float32)
    data = _converted(tuple(net.size), weights.tobytes(), weights.shape, bias.tobytes(),
                      quantize, softmax, batch)
    if metadata is not None:
        data = embed_tflite_metadata(data, metadata)
    path = Path(path)
    path.write_bytes(data)
    return path


@functools.cache
def _converted(size: tuple[int, int], weights: bytes, shape: tuple[int, int], bias: bytes,
               quantize: str, softmax: bool, batch: int | None) -> bytes:
    """The TFLite flatbuffer of one tiny net (arguments hashable, so conversions are cached)."""
    import tensorflow as tf

    net = TinyNet(size, np.frombuffer(weights, np.float32).reshape(shape).copy(),
                  np.frombuffer(bias, np.float32).copy())
    h, w = net.size

    @tf.function(input_signature=[tf.TensorSpec([batch, h, w, 3], tf.float32)])
    def model(x: tf.Tensor) -> tf.Tensor:
        features = tf.reduce_mean(x, axis=[1, 2]) / 255.0
        logits = tf.matmul(features, tf.constant(net.weights)) + tf.constant(net.bias)
        return tf.nn.softmax(logits) if softmax else logits

    converter = tf.lite.TFLiteConverter.from_concrete_functions([model.get_concrete_function()], model)
    if quantize != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: _representative(net)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = {"int8": tf.int8, "uint8": tf.uint8}[quantize]
        converter.inference_output_type = converter.inference_input_type
    return converter.convert()


def _representative(net: TinyNet):
    """Calibration images covering the full 0..255 range, incl. pure colors."""
    rng = np.random.default_rng(0)
    h, w = net.size
    yield [np.zeros((1, h, w, 3), np.float32)]
    yield [np.full((1, h, w, 3), 255, np.float32)]
    for channel in range(3):
        image = np.zeros((1, h, w, 3), np.float32)
        image[..., channel] = 255
        yield [image]
    for _ in range(20):
        yield [rng.uniform(0, 255, (1, h, w, 3)).astype(np.float32)]


def write_not_a_model(path: str | Path) -> Path:
    """A text file dressed as a model (any suffix), for bad-input tests."""
    path = Path(path)
    path.write_text("this is not a model\n" * 20)
    return path
