"""Standard TFLite Metadata (TFLITE_METADATA + appended label zip), written and read
without TensorFlow, and the bad inputs the writer must refuse."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
from helpers.tiny_models import TinyNet, make_tflite, tiny_metadata

from edgecls.errors import ModelError
from edgecls.runtime import tflite_standard_metadata as standard
from edgecls.runtime.metadata import METADATA_KEY
from edgecls.runtime.tflite_metadata import (
    FLATBUFFER_LIMIT,
    check_flatbuffer_size,
    embed_tflite_metadata,
    metadata_buffers,
    read_standard_metadata,
    read_tflite_metadata,
)


@pytest.fixture(scope="module")
def plain_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    root = tmp_path_factory.mktemp("standard")
    return {q: make_tflite(root / f"{q}.tflite", TinyNet(), quantize=q).read_bytes()
            for q in ("none", "uint8")}


def _zip_count(data: bytes) -> int:
    return data.count(b"PK\x05\x06")  # end-of-central-directory records


@pytest.mark.parametrize("kind", ["none", "uint8"])
def test_both_entries_written_and_read_back(plain_models: dict[str, bytes], kind: str) -> None:
    meta = tiny_metadata(TinyNet())
    data = embed_tflite_metadata(plain_models[kind], meta)
    buffers = metadata_buffers(data)
    assert {METADATA_KEY, standard.STANDARD_KEY} <= set(buffers)
    assert buffers[standard.STANDARD_KEY][4:8] == b"M001"
    std = read_standard_metadata(data)
    assert std.min_parser_version == "1.0.0"
    assert std.labels == meta.labels and std.label_file == "labels.txt"
    assert std.color_space == "RGB" and std.input_name == "image"
    # Float input needs NormalizationOptions (MediaPipe refuses it otherwise); our models
    # normalize inside, so mean 0 / std 1 on 0..255 pixels; a uint8 input carries none.
    assert std.normalization == (([0.0], [1.0]) if kind == "none" else None)
    assert read_tflite_metadata(data) == meta  # our own entry is untouched
    with zipfile.ZipFile(__import__("io").BytesIO(data)) as archive:
        info = archive.getinfo("labels.txt")
        assert info.compress_type == zipfile.ZIP_STORED
        assert archive.read("labels.txt").decode().splitlines() == meta.labels


def test_runs_in_litert_with_the_zip_appended(plain_models: dict[str, bytes]) -> None:
    from ai_edge_litert.interpreter import Interpreter

    data = embed_tflite_metadata(plain_models["none"], tiny_metadata(TinyNet()))
    interpreter = Interpreter(model_content=data)
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    interpreter.set_tensor(detail["index"], np.full(detail["shape"], 200, np.float32))
    interpreter.invoke()
    out = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    assert out.shape == (1, 3) and abs(float(out.sum()) - 1.0) < 1e-4


def test_re_embedding_replaces_the_zip(plain_models: dict[str, bytes]) -> None:
    first = embed_tflite_metadata(plain_models["uint8"], tiny_metadata(TinyNet()))
    renamed = tiny_metadata(TinyNet())
    renamed.labels = ["rouge", "vert", "bleu"]
    second = embed_tflite_metadata(first, renamed)
    assert _zip_count(first) == 1 and _zip_count(second) == 1
    assert read_standard_metadata(second).labels == ["rouge", "vert", "bleu"]
    assert read_tflite_metadata(second).labels == ["rouge", "vert", "bleu"]
    assert list(metadata_buffers(second)).count(standard.STANDARD_KEY) == 1


@pytest.mark.parametrize("labels, message", [
    (["red", "gr\neen", "blue"], "line break"),
    (["red", "green\r", "blue"], "line break"),
    (["red", " ", "blue"], "label 1 is empty"),
    ([], "no labels"),
    (["red", "green"], "2 labels for a model with 3 outputs"),
])
def test_bad_labels_are_refused(plain_models: dict[str, bytes], labels: list[str], message: str) -> None:
    meta = tiny_metadata(TinyNet())
    meta.labels = labels
    with pytest.raises(ModelError, match=message):
        embed_tflite_metadata(plain_models["none"], meta)


def test_over_2gb_is_refused(plain_models: dict[str, bytes]) -> None:
    """A model over 2 GB keeps its weights outside the flatbuffer (Buffer.offset/size)."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(plain_models["none"]), 0)
    model.buffers[-1].offset, model.buffers[-1].size = 2**31 + 64, 16
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    with pytest.raises(ModelError, match="over 2 GB"):
        embed_tflite_metadata(bytes(builder.Output()), tiny_metadata(TinyNet()))
    with pytest.raises(ModelError, match="2 GiB"):
        check_flatbuffer_size(FLATBUFFER_LIMIT + 1)
    check_flatbuffer_size(FLATBUFFER_LIMIT)


def test_damaged_standard_buffer_is_a_clear_error() -> None:
    with pytest.raises(ModelError, match="M001"):
        standard.parse(b"\x00" * 16)
    good = standard.build(standard.ImageClassifierInfo(
        name="n", description="d", labels=["a", "b"], input_size=(8, 8), float_input=True))
    with pytest.raises(ModelError, match="damaged"):
        standard.parse(good[:24])


def test_foreign_model_with_only_standard_metadata(plain_models: dict[str, bytes], tmp_path: Path) -> None:
    """A model made elsewhere (MediaPipe Model Maker, a model zoo) runs with its own labels."""
    from edgecls.runtime.classifier import Classifier
    from edgecls.runtime.tflite_metadata import write_tflite

    info = standard.ImageClassifierInfo(name="zoo", description="d", labels=["r", "g", "b"],
                                        input_size=TinyNet().size, float_input=True)
    data = write_tflite(plain_models["none"], {standard.STANDARD_KEY: standard.build(info)},
                        {standard.LABELS_FILE: standard.labels_file_bytes(info.labels)})
    path = tmp_path / "zoo.tflite"
    path.write_bytes(data)
    classifier = Classifier(path)
    assert classifier.labels == ["r", "g", "b"]
    assert classifier.metadata.producer == "TFLite Metadata (zoo)"
    frame = np.zeros((40, 50, 3), np.uint8)
    frame[..., 2] = 250  # red in BGR
    assert classifier.classify(frame, top_k=1)[0][0] == "r"


def test_coral_model_labels_come_from_its_metadata(shared_dir: Path) -> None:
    from edgecls.runtime.classifier import Classifier

    classifier = Classifier(shared_dir / "models" / "coral" / "mobilenet_v1_0.25_128_quant.tflite")
    assert len(classifier.labels) == 1001 and classifier.labels[0] == "background"
    assert classifier.labels[1].startswith("tench")
    assert classifier.metadata.producer == "TFLite Metadata (ImageClassifier)"
