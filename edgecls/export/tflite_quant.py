"""TFLite INT8 quantizers besides the converter's own: LiteRT's quantizer (static int8
recipe on the float flatbuffer; the ``litert-quantizer`` package, formerly
``ai-edge-quantizer``, whose name the method keeps) and empirical bias correction of the
converter's INT8 flatbuffer.

Every path starts and ends with flatbuffer bytes from the official converter or LiteRT's
quantizer; nothing here re-implements quantization, it only chooses ranges and biases:

- ``ai_edge_quantize``: ``litert_quantizer.Quantizer`` with ``recipe.static_wi8_ai8``
  (per-channel int8 weights, per-tensor int8 activations calibrated with a moving average
  of each image's min/max, where the converter keeps the absolute min/max).
- ``correct_biases``: for every convolution and dense layer of the converter's INT8 model,
  the mean shift its quantized weights and bias add to each output channel, given the
  float model's mean input on calibration images (``(W_q - W) E[x] + (b_q - b)``), is
  subtracted from its int32 bias (Nagel et al. 2019, "Data-free quantization through
  weight equalization and bias correction", empirical variant; NNCF's fast bias
  correction does the same per layer).
- ``tflite_ranges``: the converter's calibrate-only pass and MLIR quantizer with
  percentile activation ranges in between (``converter+percentile-ranges``).
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

import numpy as np

CONVERTER = "tflite-converter"
AI_EDGE_QUANTIZER = "ai-edge-quantizer"
BIAS_CORRECTION = "converter+bias-correction"
AI_EDGE_BIAS_CORRECTION = "ai-edge-quantizer+bias-correction"
PERCENTILE_RANGES = "converter+percentile-ranges"  # edgecls.export.tflite_ranges
PERCENTILE_BIAS_CORRECTION = "converter+percentile-ranges+bias-correction"
QUANTIZERS = (CONVERTER, AI_EDGE_QUANTIZER, BIAS_CORRECTION, AI_EDGE_BIAS_CORRECTION,
              PERCENTILE_RANGES, PERCENTILE_BIAS_CORRECTION)
_BIASED_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
_BIAS_CORRECTION_IMAGES = 64


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """ai-edge-quantizer draws tqdm bars on stderr, prints a report on stdout and warns that
    keeping every tensor (what calibration needs) is meant for debugging."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        yield


def ai_edge_quantize(float_model: bytes, images: Iterable[np.ndarray], io_type: str) -> bytes:
    """Full-integer INT8 of a float flatbuffer by ``ai-edge-quantizer``.

    Args:
        float_model: the float32 flatbuffer from the converter.
        images: calibration batches (1, H, W, 3) float32, RGB 0..255.
        io_type: "uint8", "int8" or "float32" input and output, as the converter makes
            them (a QUANTIZE op after the input, one before the output).
    """
    from ai_edge_litert.interpreter import Interpreter
    from litert_quantizer import quantizer

    signatures = Interpreter(model_content=float_model).get_signature_list()
    key = next(iter(signatures))
    name = signatures[key]["inputs"][0]
    with _quiet():
        engine = quantizer.Quantizer(bytearray(float_model), _static_int8_recipe())
        ranges = engine.calibrate({key: [{name: np.asarray(i, np.float32)} for i in images]},
                                  num_threads=max(1, os.cpu_count() or 1))
        result = engine.quantize(ranges, enable_progress_report=False)
    return _with_io_type(_inline_buffers(bytes(result.quantized_model)), io_type)


def _static_int8_recipe() -> Any:
    """``recipe.static_wi8_ai8`` with float model input and output, which
    ``_with_io_type`` then turns into the requested integer type."""
    from litert_quantizer import algorithm_manager, qtyping, recipe_manager

    manager = recipe_manager.RecipeManager()
    manager.add_static_config(".*", qtyping.TFLOperationName.ALL_SUPPORTED,
                              activation_num_bits=8, weight_num_bits=8)
    for end in (qtyping.TFLOperationName.INPUT, qtyping.TFLOperationName.OUTPUT):
        manager.add_quantization_config(".*", end,
                                        algorithm_key=algorithm_manager.AlgorithmName.NO_QUANTIZE)
    return manager.get_quantization_recipe()


def _with_io_type(model: bytes, io_type: str) -> bytes:
    import tensorflow as tf
    from tensorflow.lite.python import util

    if io_type == "float32":
        return model
    dtype = tf.uint8 if io_type == "uint8" else tf.int8
    return bytes(util.modify_model_io_type(model, dtype, dtype))


def _inline_buffers(model: bytes) -> bytes:
    """The same model with every weight inside the flatbuffer (ai-edge-quantizer appends
    weights after it, by offset, which leaves no room for metadata)."""
    from tensorflow.lite.tools import flatbuffer_utils

    objects = flatbuffer_utils.read_model_from_bytearray(bytearray(model))  # reads them in
    return bytes(flatbuffer_utils.convert_object_to_bytearray(objects))


@dataclass
class _Layer:
    """One convolution or dense layer of the INT8 model and its float twin."""

    kind: str
    input: str  # tensor name, the same in both models
    bias_buffer: int
    bias_scale: np.ndarray  # int32 bias step per output channel
    bias_q: np.ndarray  # int32
    weights_q: np.ndarray  # dequantized, the float layout
    weights: np.ndarray  # float
    bias: np.ndarray  # float


def correct_biases(int8_model: bytes, float_model: bytes, images: np.ndarray) -> tuple[bytes, int]:
    """``int8_model`` with each layer's int32 bias shifted by minus the mean error its
    quantization adds to its outputs, given the float model's mean input over ``images``
    (float32 RGB 0..255, (N, H, W, 3)).

    Returns:
        The corrected flatbuffer and the number of layers corrected.
    """
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(int8_model))
    layers = _layers(model, flatbuffer_utils.read_model_from_bytearray(bytearray(float_model)))
    errors = _layer_errors(layers, float_model, images)
    for layer, error in errors:
        steps = np.round(error / layer.bias_scale).astype(np.int64)
        bias = np.clip(layer.bias_q.astype(np.int64) - steps, -2**31, 2**31 - 1).astype("<i4")
        model.buffers[layer.bias_buffer].data = np.frombuffer(bias.tobytes(), np.uint8)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model)), len(errors)


def layer_errors(int8_model: bytes, float_model: bytes, images: np.ndarray) -> list[np.ndarray]:
    """Per layer (``correct_biases``'s order): the mean error its quantization adds to each
    output channel, in output units, given the float model's mean input; and its bias step."""
    from tensorflow.lite.tools import flatbuffer_utils

    layers = _layers(flatbuffer_utils.read_model_from_bytearray(bytearray(int8_model)),
                     flatbuffer_utils.read_model_from_bytearray(bytearray(float_model)))
    return [np.stack([error, layer.bias_scale])
            for layer, error in _layer_errors(layers, float_model, images)]


def _layer_errors(layers: list[_Layer], float_model: bytes,
                  images: np.ndarray) -> list[tuple[_Layer, np.ndarray]]:
    means = _input_means(float_model, [layer.input for layer in layers],
                         images[:_BIAS_CORRECTION_IMAGES])
    out = []
    for layer in (layer for layer in layers if layer.input in means):
        mean = means[layer.input]
        weight_error = layer.weights_q - layer.weights
        if layer.kind == "DEPTHWISE_CONV_2D":  # (1, kh, kw, C): channel c sees input c
            channels = weight_error.shape[-1]
            shift = weight_error.sum(axis=(0, 1, 2)) * np.repeat(mean, channels // len(mean))
        else:  # CONV_2D (O, kh, kw, I) and FULLY_CONNECTED (O, I)
            shift = weight_error.reshape(len(weight_error), -1, len(mean)).sum(axis=1) @ mean
        out.append((layer, shift + layer.bias_q * layer.bias_scale - layer.bias))
    return out


def _layers(model: Any, reference: Any) -> list[_Layer]:
    """The INT8 layers with an int32 bias whose float twin (same output tensor name, same
    weight shape) is found in ``reference``."""
    twins = {}
    graph = reference.subgraphs[0]
    for op in graph.operators:
        if op_name(reference, op) in _BIASED_OPS and len(op.inputs) >= 3:
            twins[tensor_name(graph.tensors[op.outputs[0]].name)] = op
    found = []
    graph = model.subgraphs[0]
    for op in graph.operators:
        kind = op_name(model, op)
        if kind not in _BIASED_OPS or len(op.inputs) < 3 or op.inputs[2] < 0:
            continue
        twin = twins.get(tensor_name(graph.tensors[op.outputs[0]].name))
        layer = _layer(kind, model, op, reference, twin) if twin is not None else None
        if layer is not None:
            found.append(layer)
    return found


def _layer(kind: str, model: Any, op: Any, reference: Any, twin: Any) -> _Layer | None:
    tensors, ref_tensors = model.subgraphs[0].tensors, reference.subgraphs[0].tensors
    weights, bias = tensors[op.inputs[1]], tensors[op.inputs[2]]
    if bias.quantization is None or weights.quantization is None or twin.inputs[2] < 0:
        return None
    float_weights = _array(reference, ref_tensors[twin.inputs[1]], np.float32)
    float_bias = _array(reference, ref_tensors[twin.inputs[2]], np.float32)
    codes = _array(model, weights, np.int8)
    bias_q = _array(model, bias, np.int32)
    if float_weights is None or float_bias is None or codes is None or bias_q is None:
        return None
    if codes.shape != float_weights.shape or bias_q.shape != float_bias.shape:
        return None
    axis = int(weights.quantization.quantizedDimension)
    shape = [1] * codes.ndim
    shape[axis] = -1
    scale = np.asarray(weights.quantization.scale, np.float64).reshape(shape)
    zero = np.asarray(weights.quantization.zeroPoint, np.float64).reshape(shape)
    return _Layer(kind=kind, input=tensor_name(tensors[op.inputs[0]].name),
                  bias_buffer=bias.buffer,
                  bias_scale=np.asarray(bias.quantization.scale, np.float64), bias_q=bias_q,
                  weights_q=(codes - zero) * scale, weights=float_weights.astype(np.float64),
                  bias=float_bias.astype(np.float64))


def _array(model: Any, tensor: Any, dtype: Any) -> np.ndarray | None:
    """A constant tensor's values, or None when it has no data of that type."""
    data = model.buffers[tensor.buffer].data
    if data is None or not len(data):
        return None
    values = np.frombuffer(np.asarray(data, np.uint8).tobytes(), np.dtype(dtype).newbyteorder("<"))
    if values.size != int(np.prod(tensor.shape)):
        return None
    return values.reshape(tuple(tensor.shape))


def op_name(model: Any, op: Any) -> str:
    """The builtin operator name ("CONV_2D") of ``op`` in a flatbuffer object model."""
    from tensorflow.lite.python import schema_py_generated as schema

    code = model.operatorCodes[op.opcodeIndex]
    value = max(code.builtinCode, code.deprecatedBuiltinCode)
    return next((name for name, v in vars(schema.BuiltinOperator).items() if v == value), "")


def tensor_name(raw: Any) -> str:
    """A tensor name from the flatbuffer object model (bytes) as text."""
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def _input_means(float_model: bytes, names: list[str], images: np.ndarray) -> dict[str, np.ndarray]:
    """Per-channel mean (over images and positions) of each named tensor of the float model
    (a name it lacks is left out)."""
    from ai_edge_litert.interpreter import Interpreter

    with warnings.catch_warnings():  # "intended for debugging": reading tensors is the point
        warnings.simplefilter("ignore", UserWarning)
        interpreter = Interpreter(model_content=float_model, experimental_preserve_all_tensors=True)
    interpreter.allocate_tensors()
    index = {d["name"]: d["index"] for d in interpreter.get_tensor_details()}
    wanted = [name for name in dict.fromkeys(names) if name in index]
    sums: dict[str, np.ndarray] = {}
    entry = interpreter.get_input_details()[0]["index"]
    for image in images:
        interpreter.set_tensor(entry, np.asarray(image[None], np.float32))
        interpreter.invoke()
        for name in wanted:
            value = interpreter.get_tensor(index[name]).astype(np.float64)
            sums[name] = sums.get(name, 0.0) + value.reshape(-1, value.shape[-1]).mean(axis=0)
    return {name: total / len(images) for name, total in sums.items()}
