"""Classifier on tiny models of every format, foreign models, the Coral reference
models on real images, and the no-TensorFlow import rule."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers.tiny_models import (COLOR_LABELS, TinyNet, color_frame, make_onnx, make_openvino, make_tflite,
                         tiny_metadata)

from edgecls.errors import ModelError
from edgecls.runtime import Classifier, read_image_bgr

NET = TinyNet()


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny_classifier")
    meta = tiny_metadata(NET)
    logits_meta = tiny_metadata(NET, outputs_probabilities=False)
    return {
        "onnx": make_onnx(root / "m.onnx", NET, meta),
        "onnx_logits": make_onnx(root / "logits.onnx", NET, logits_meta, softmax=False),
        "onnx_nchw": make_onnx(root / "nchw.onnx", NET, tiny_metadata(NET, layout="NCHW"), layout="NCHW"),
        "openvino": make_openvino(root / "m.xml", NET, meta),
        "tflite_int8": make_tflite(root / "i8.tflite", NET, tiny_metadata(NET, precision="int8"), "int8"),
        "foreign_uint8": make_tflite(root / "u8.tflite", NET, None, "uint8"),
        "foreign_logits": make_onnx(root / "foreign.onnx", NET, None, softmax=False),
    }


@pytest.mark.parametrize("name", ["onnx", "onnx_logits", "onnx_nchw", "openvino", "tflite_int8"])
def test_classifies_color_frames(models: dict[str, Path], name: str) -> None:
    clf = Classifier(models[name])
    for label in COLOR_LABELS:
        top = clf.classify(color_frame(label), top_k=2)
        assert top[0][0] == label and len(top) == 2
        assert top[0][1] > top[1][1] and top[0][1] == pytest.approx(0.9993, abs=0.01)


@pytest.mark.parametrize("name", ["onnx", "onnx_logits", "tflite_int8"])
def test_probabilities_match_reference(models: dict[str, Path], name: str) -> None:
    clf = Classifier(models[name])
    rng = np.random.default_rng(3)
    frames = [rng.integers(0, 256, (30, 40, 3), dtype=np.uint8) for _ in range(3)]
    reference = NET.probabilities(np.stack([clf.prepare(f) for f in frames]))
    single = np.stack([clf.probabilities(f) for f in frames])
    batched = clf.probabilities_batch(frames)
    atol = 0.03 if "int8" in name else 1e-5
    np.testing.assert_allclose(single, reference, atol=atol)
    np.testing.assert_allclose(batched, single, atol=1e-6)
    assert [p[0][0] for p in clf.classify_batch(frames)] == [COLOR_LABELS[i] for i in reference.argmax(1)]


def test_int8_fast_path_equals_float_path(models: dict[str, Path]) -> None:
    clf = Classifier(models["tflite_int8"])
    assert clf._pixel_shift == -128  # the lean path is in use for this int8 model
    frame = np.random.default_rng(4).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    np.testing.assert_array_equal(clf.probabilities(frame), clf.predict(clf.prepare(frame)[None])[0])


def test_foreign_model_takes_labels_file_and_input_defaults(models: dict[str, Path], tmp_path: Path) -> None:
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(["r", "g", "b"]) + "\n")
    clf = Classifier(models["foreign_uint8"], labels=labels)
    assert clf.is_foreign and clf.input_size == NET.size
    assert clf.metadata.input_dtype == "uint8" and clf._pixel_shift == 0
    assert clf.classify(color_frame("blue"))[0][0] == "b"
    unnamed = Classifier(models["foreign_uint8"])
    assert unnamed.classify(color_frame("green"))[0][0] == "class_1"


def test_foreign_float_logits_get_softmax(models: dict[str, Path]) -> None:
    probabilities = Classifier(models["foreign_logits"]).probabilities(color_frame("red"))
    assert probabilities.sum() == pytest.approx(1.0, abs=1e-5) and probabilities.min() >= 0


def test_label_count_mismatch_is_a_user_error(models: dict[str, Path]) -> None:
    with pytest.raises(ModelError, match="2 labels for a model with 3 outputs"):
        Classifier(models["onnx"], labels=["a", "b"])


def test_model_without_image_input_is_a_user_error(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    node = helper.make_node("Softmax", ["x"], ["y"], axis=1)
    graph = helper.make_graph([node], "vec", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 10])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.save(model, str(tmp_path / "vec.onnx"))
    with pytest.raises(ModelError, match="cannot be fitted"):
        Classifier(tmp_path / "vec.onnx")


def test_coral_model_classifies_imagenette(shared_dir: Path) -> None:
    coral = shared_dir / "models" / "coral"
    clf = Classifier(coral / "mobilenet_v2_1.0_224_quant.tflite", labels=coral / "imagenet_labels.txt")
    assert len(clf.labels) == 1001 and clf.labels[0] == "background"
    expected = {"n01440764": "tench", "n03417042": "garbage truck", "n03445777": "golf ball",
                "n03888257": "parachute", "n03425413": "gas pump"}
    hits = 0
    for wnid, name in expected.items():
        for image in sorted((shared_dir / "data" / "imagenette" / "val" / wnid).glob("*.JPEG"))[:4]:
            hits += clf.classify(read_image_bgr(image))[0][0].startswith(name)
    assert hits >= 17  # of 20; the model's 1000-way top-1 is 0.751 on this split


@pytest.mark.slow
def test_coral_accuracy_on_imagenette_subset(shared_dir: Path) -> None:
    """Every 8th val image: top-1 over 1000 classes near DATA.md's 0.751 (full split)."""
    coral = shared_dir / "models" / "coral"
    clf = Classifier(coral / "mobilenet_v2_1.0_224_quant.tflite", labels=coral / "imagenet_labels.txt")
    index = {"n01440764": 0, "n02102040": 217, "n02979186": 482, "n03000684": 491, "n03028079": 497,
             "n03394916": 566, "n03417042": 569, "n03425413": 571, "n03445777": 574, "n03888257": 701}
    images = sorted((shared_dir / "data" / "imagenette" / "val").glob("*/*.JPEG"))[::8]
    hits = sum(int(np.argmax(clf.probabilities(read_image_bgr(p)))) == index[p.parent.name] + 1 for p in images)
    assert hits / len(images) == pytest.approx(0.751, abs=0.03)


def test_import_runtime_live_and_their_api_does_not_import_tensorflow() -> None:
    code = (
        "import sys, edgecls.runtime, edgecls.runtime.litert, edgecls.runtime.onnxruntime, "
        "edgecls.runtime.openvino, edgecls.runtime.tflite_metadata, edgecls.runtime.targets, "
        "edgecls.live, edgecls.live.sources, edgecls.live.loop, edgecls.live.sinks, edgecls.live.server, "
        "edgecls.live.collect, edgecls.api.live\n"
        "from edgecls.runtime import Classifier\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'tf_keras', 'PIL'))\n"
        "print(','.join(bad))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


def test_metadata_contradicting_the_model_is_a_user_error(tmp_path: Path) -> None:
    net = TinyNet()
    path = make_onnx(tmp_path / "m.onnx", net, tiny_metadata(net, input_size=(32, 32)), dynamic_batch=False)
    with pytest.raises(ModelError, match="metadata says input"):
        Classifier(path)
