"""Every backend on tiny real models: same scores as the numpy reference, quantization,
layouts, metadata, CPU-dependent settings and files that are not models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers.tiny_models import TinyNet, make_onnx, make_openvino, make_tflite, tiny_metadata, write_not_a_model

from edgecls.errors import ModelError
from edgecls.runtime import BackendOptions, load_backend
from edgecls.runtime.cpu import parse_cpuinfo
from edgecls.runtime.onnxruntime import X64_QUANT_PRECISION, resolve_providers

NET = TinyNet()


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One tiny model per backend and variant, built once for this module."""
    root = tmp_path_factory.mktemp("tiny_backends")
    meta = tiny_metadata(NET)
    return {
        "onnx": make_onnx(root / "m.onnx", NET, meta),
        "onnx_nchw": make_onnx(root / "nchw.onnx", NET, tiny_metadata(NET, layout="NCHW"), layout="NCHW"),
        "onnx_qdq": make_onnx(root / "q.onnx", NET, meta, quantized=True),
        "openvino": make_openvino(root / "m.xml", NET, meta),
        "tflite": make_tflite(root / "m.tflite", NET, meta),
        "tflite_int8": make_tflite(root / "i8.tflite", NET, tiny_metadata(NET, precision="int8"), "int8"),
        "tflite_uint8": make_tflite(root / "u8.tflite", NET, None, "uint8"),
    }


def _batch(n: int = 4) -> np.ndarray:
    rng = np.random.default_rng(1)
    batch = rng.uniform(0, 255, (n, *NET.size, 3)).astype(np.float32)
    batch[0, ..., 0] = 255  # a clearly "red" image
    return batch


@pytest.mark.parametrize("name", ["onnx", "onnx_nchw", "openvino", "tflite"])
def test_float_backends_match_reference(models: dict[str, Path], name: str) -> None:
    backend = load_backend(models[name], BackendOptions(threads=1))
    batch = _batch()
    np.testing.assert_allclose(backend.run(batch), NET.probabilities(batch), atol=1e-5)
    assert backend.settings["threads"] == 1
    assert backend.read_metadata().labels == ["red", "green", "blue"]


@pytest.mark.parametrize("name", ["tflite_int8", "tflite_uint8", "onnx_qdq"])
def test_quantized_backends_close_to_reference(models: dict[str, Path], name: str) -> None:
    backend = load_backend(models[name])
    batch = _batch(6)
    scores = backend.run(batch)
    reference = NET.probabilities(batch)
    assert scores.dtype == np.float32 and scores.shape == reference.shape
    np.testing.assert_allclose(scores, reference, atol=0.03)
    assert (scores.argmax(1) == reference.argmax(1)).all()


@pytest.mark.parametrize("name,dtype", [("tflite_int8", "int8"), ("tflite_uint8", "uint8")])
def test_int8_io_uses_the_models_own_quantization(models: dict[str, Path], name: str, dtype: str) -> None:
    backend = load_backend(models[name])
    info = backend.input_info
    assert info.dtype == dtype and info.quantization is not None
    scale, zero_point = info.quantization
    assert scale == pytest.approx(1.0, rel=0.01)  # pixels 0..255 map onto the 8-bit range
    assert zero_point == (-128 if dtype == "int8" else 0)
    assert backend.output_info.is_quantized


def test_onnx_nchw_layout_is_detected(models: dict[str, Path]) -> None:
    backend = load_backend(models["onnx_nchw"])
    assert backend.input_info.layout == "NCHW"
    assert backend.input_info.spatial_size == NET.size


def test_tflite_batch_resize(models: dict[str, Path]) -> None:
    backend = load_backend(models["tflite"])
    batch = _batch(3)
    np.testing.assert_allclose(backend.run(batch), NET.probabilities(batch), atol=1e-5)


def test_tflite_refused_batch_leaves_the_model_usable(shared_dir: Path) -> None:
    """XNNPack cannot reshape some foreign models (the Coral ones): the refusal is a clear
    error and the interpreter keeps running single images at its old size."""
    backend = load_backend(shared_dir / "models" / "coral" / "mobilenet_v1_0.25_128_quant.tflite")
    images = np.random.default_rng(0).uniform(0, 255, (2, 128, 128, 3)).astype(np.float32)
    single = backend.run(images[:1])
    with pytest.raises(ModelError, match="cannot run a batch of 2"):
        backend.run(images)
    np.testing.assert_array_equal(backend.run(images[:1]), single)


def test_foreign_models_have_no_metadata(models: dict[str, Path]) -> None:
    assert load_backend(models["tflite_uint8"]).read_metadata() is None


def test_x64quantprecision_applied_to_quantized_onnx_when_forced(models: dict[str, Path]) -> None:
    forced = load_backend(models["onnx_qdq"], BackendOptions(extra={"x64quantprecision": True}))
    assert forced.settings[X64_QUANT_PRECISION] == "1"
    batch = _batch()
    np.testing.assert_allclose(forced.run(batch), NET.probabilities(batch), atol=0.03)
    off = load_backend(models["onnx_qdq"], BackendOptions(extra={"x64quantprecision": False}))
    assert X64_QUANT_PRECISION not in off.settings


def test_x64quantprecision_follows_cpu_detection(models: dict[str, Path], monkeypatch) -> None:
    from edgecls.runtime import onnxruntime as ort_backend

    avx2_only = parse_cpuinfo("processor : 0\nflags : sse4_1 avx avx2 fma\n", "x86_64")
    monkeypatch.setattr(ort_backend, "cpu_info", lambda: avx2_only)
    assert load_backend(models["onnx_qdq"]).settings[X64_QUANT_PRECISION] == "1"
    assert X64_QUANT_PRECISION not in load_backend(models["onnx"]).settings  # float model
    vnni = parse_cpuinfo("processor : 0\nflags : avx2 avx512f avx512_vnni\n", "x86_64")
    monkeypatch.setattr(ort_backend, "cpu_info", lambda: vnni)
    assert X64_QUANT_PRECISION not in load_backend(models["onnx_qdq"]).settings


def test_cpu_flags_parsing() -> None:
    intel = parse_cpuinfo("processor : 0\nmodel name : Xeon\nflags : avx2 avx_vnni\nprocessor : 1\n", "x86_64")
    assert intel.has_avx2 and intel.has_vnni and not intel.u8s8_overflow_risk and intel.cores == 2
    epyc = parse_cpuinfo("model : 49\nmodel name : AMD EPYC 7B12\nflags : sse4_1 avx2\n", "x86_64")
    assert epyc.u8s8_overflow_risk and epyc.summary() == "x86_64 AMD EPYC 7B12 avx2 no-vnni"
    pi = parse_cpuinfo("processor : 0\nFeatures : fp asimd evtstrm crc32\n", "aarch64")
    assert not pi.is_x86 and not pi.u8s8_overflow_risk and "asimd" in pi.flags


def test_provider_resolution_falls_back_to_cpu() -> None:
    chosen, missing = resolve_providers(["tensorrt", "cuda"], ["CPUExecutionProvider"])
    assert chosen == ["CPUExecutionProvider"]
    assert missing == ["TensorrtExecutionProvider", "CUDAExecutionProvider"]
    chosen, _ = resolve_providers(["cuda"], ["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert chosen == ["CUDAExecutionProvider", "CPUExecutionProvider"]


def test_openvino_unknown_device_is_a_user_error(models: dict[str, Path]) -> None:
    with pytest.raises(ModelError, match="available devices"):
        load_backend(models["openvino"], BackendOptions(device="NPU"))


@pytest.mark.parametrize("suffix", [".tflite", ".onnx", ".xml"])
def test_text_file_is_not_a_model(tmp_path: Path, suffix: str) -> None:
    path = write_not_a_model(tmp_path / f"fake{suffix}")
    if suffix == ".xml":
        path.with_suffix(".bin").write_bytes(b"\0" * 16)
    with pytest.raises(ModelError, match="not a valid"):
        load_backend(path)


@pytest.mark.parametrize("name", ["tflite", "onnx"])
def test_truncated_model_is_a_user_error(models: dict[str, Path], tmp_path: Path, name: str) -> None:
    data = models[name].read_bytes()
    path = tmp_path / f"cut{models[name].suffix}"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match="not a valid"):
        load_backend(path)


def test_unknown_suffix_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="unknown model format"):
        load_backend(write_not_a_model(tmp_path / "model.pt"))
    with pytest.raises(ModelError, match="does not exist"):
        load_backend(tmp_path / "missing.onnx")


def _saturating_qdq_conv(path: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    """A QDQ 1x1 conv (u8 activations 255, s8 weights 127) whose adjacent-pair sums
    (255*127*2 = 64770) overflow 16 bits, the way VPMADDUBSW computes them without VNNI."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    channels, outputs = 64, 8
    weights = np.full((outputs, channels, 1, 1), 127, np.int8)
    y_scale = channels * 255 * 127 / 200
    inits = [numpy_helper.from_array(weights, "W"),
             numpy_helper.from_array(np.array(1.0, np.float32), "s1"),
             numpy_helper.from_array(np.array(0, np.uint8), "z8"),
             numpy_helper.from_array(np.array(0, np.int8), "zs8"),
             numpy_helper.from_array(np.array(y_scale, np.float32), "ys")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "s1", "z8"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "s1", "z8"], ["xd"]),
             helper.make_node("DequantizeLinear", ["W", "s1", "zs8"], ["wd"]),
             helper.make_node("Conv", ["xd", "wd"], ["yc"]),
             helper.make_node("QuantizeLinear", ["yc", "ys", "z8"], ["yq"]),
             helper.make_node("DequantizeLinear", ["yq", "ys", "z8"], ["y"])]
    graph = helper.make_graph(nodes, "sat",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, channels, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, outputs, 4, 4])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    x = np.full((1, channels, 4, 4), 255, np.float32)
    exact = np.round(channels * 255 * 127 / y_scale) * y_scale
    return path, x, np.float32(exact)


def test_cpu_detection_agrees_with_onnxruntime_kernels(tmp_path: Path) -> None:
    """On this machine: where edgecls sees no overflow risk, ORT's int8 conv is exact
    without the setting; where it sees a risk, the setting it applies makes it exact."""
    import onnxruntime as ort

    from edgecls.runtime.cpu import cpu_info

    path, x, exact = _saturating_qdq_conv(tmp_path / "sat.onnx")
    options = ort.SessionOptions()
    if cpu_info().u8s8_overflow_risk:
        options.add_session_config_entry(X64_QUANT_PRECISION, "1")
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, {"x": x})[0], exact, rtol=1e-6)


def test_litert_load_prints_no_xnnpack_notice(models: dict[str, Path]) -> None:
    """LiteRT prints its delegate notice once per process: each load runs in a fresh one."""
    import subprocess
    import sys

    load = ("import sys; from edgecls.runtime.litert import LiteRTBackend; "
            "LiteRTBackend(sys.argv[1]); print('loaded', file=sys.stderr)")
    raw = ("import sys; from ai_edge_litert.interpreter import Interpreter; "
           "Interpreter(model_path=sys.argv[1]).allocate_tensors()")
    ours, theirs = (subprocess.run([sys.executable, "-c", code, str(models["tflite"])], capture_output=True,
                                   text=True, timeout=60, check=True) for code in (load, raw))
    assert "XNNPACK delegate" in theirs.stderr  # the notice exists: the test can fail
    assert "XNNPACK" not in ours.stderr and "loaded" in ours.stderr


def test_delegate_notice_filter_keeps_other_output(capfd: pytest.CaptureFixture[str]) -> None:
    import os

    from edgecls.runtime.litert import _without_delegate_notice

    with _without_delegate_notice():
        os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\nERROR: something real\n")
    assert capfd.readouterr().err == "ERROR: something real\n"
