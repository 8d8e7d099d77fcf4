"""Artifact digests: stamped models verify and run; damaged copies (bit flips in the
weights, truncation, random bytes, broken metadata) are refused with one line, never a
traceback; foreign models still load; --no-verify loads a damaged file anyway."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import numpy as np
import pytest
from helpers.tiny_models import TinyNet, color_frame, make_onnx, make_openvino, make_tflite, tiny_metadata

from edgecls.errors import ModelError
from edgecls.runtime import Classifier, integrity, load_backend
from edgecls.runtime.integrity import DIGEST_PLACEHOLDER, WEIGHTS_PLACEHOLDER
from helpers.cli import edgecls

NET = TinyNet()
WEIGHT_BYTES = NET.weights.tobytes()  # 8*eye-4 is symmetric: same bytes in every format


def _stamped(path: Path) -> Path:
    integrity.stamp_file(path)
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One stamped tiny model per format, as `edgecls export` writes them."""
    root = tmp_path_factory.mktemp("stamped")
    meta = tiny_metadata(NET, digest=DIGEST_PLACEHOLDER)
    ov_meta = dataclasses.replace(meta, weights_digest=WEIGHTS_PLACEHOLDER)
    return {
        "tflite": _stamped(make_tflite(root / "m.tflite", NET, meta)),
        "onnx": _stamped(make_onnx(root / "m.onnx", NET, meta)),
        "openvino": _stamped(make_openvino(root / "m.xml", NET, ov_meta)),
    }


def _copy(model: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for suffix in (model.suffix, ".bin"):
        source = model.with_suffix(suffix)
        if source.is_file():
            (folder / source.name).write_bytes(source.read_bytes())
    return folder / model.name


def _weights_file(model: Path) -> Path:
    return model.with_suffix(".bin") if model.suffix == ".xml" else model


def _weights_region(model: Path, data: bytes) -> tuple[int, int]:
    """(start, length) of the weights: the largest TFLite buffer, else the tiny matrix."""
    if model.suffix == ".tflite":
        from ai_edge_litert import schema_py_generated as schema

        tables = schema.Model.GetRootAs(data, 0)
        buffers = [tables.Buffers(i).DataAsNumpy() for i in range(tables.BuffersLength())]
        largest = max((b.tobytes() for b in buffers if not isinstance(b, int)), key=len)
        return data.find(largest), len(largest)
    return data.find(WEIGHT_BYTES), len(WEIGHT_BYTES)


def _mutants(model: Path, root: Path) -> dict[str, Path]:
    """Deterministic damaged copies: weight bit flips, truncation, random bytes, metadata."""
    rng = np.random.default_rng(15)
    out = {}
    for i in range(3):
        copy = _copy(model, root / f"flip{i}")
        target = _weights_file(copy)
        data = bytearray(target.read_bytes())
        start, length = _weights_region(target, bytes(data))
        assert start >= 0, "the tiny weights are stored verbatim"
        bit = int(rng.integers(length * 8))
        data[start + bit // 8] ^= 1 << (bit % 8)
        target.write_bytes(bytes(data))
        out[f"weight bit flip {i}"] = copy
    for name, change in {
        "truncated": lambda d: d[: len(d) * 3 // 5],
        "random bytes": lambda d: _overwrite(d, int(rng.integers(len(d) - 64)), rng.bytes(64)),
        "broken metadata": lambda d: d.replace(b"RGB", b"XYZ", 1),  # preprocessing color
    }.items():
        copy = _copy(model, root / name.replace(" ", "_"))
        data = copy.read_bytes()
        copy.write_bytes(change(data))
        assert copy.read_bytes() != data, name
        out[name] = copy
    return out


def _overwrite(data: bytes, at: int, chunk: bytes) -> bytes:
    return data[:at] + chunk + data[at + len(chunk):]


@pytest.mark.parametrize("fmt", ["tflite", "onnx", "openvino"])
def test_stamped_model_verifies_and_runs(models: dict[str, Path], fmt: str) -> None:
    assert integrity.verify_file(models[fmt]) == integrity.VERIFIED
    classifier = Classifier(models[fmt])
    assert classifier.backend.settings["integrity"] == "verified"
    assert classifier.metadata.digest.startswith("edgecls-blake3:")
    assert classifier.metadata.digest != DIGEST_PLACEHOLDER
    assert classifier.classify(color_frame("red"))[0][0] == "red"


@pytest.mark.parametrize("fmt", ["tflite", "onnx", "openvino"])
def test_fuzzed_models_are_refused_in_one_line(models: dict[str, Path], fmt: str,
                                               tmp_path: Path) -> None:
    for name, mutant in _mutants(models[fmt], tmp_path).items():
        with pytest.raises(ModelError) as caught:
            Classifier(mutant).classify(color_frame("red"))
        message = str(caught.value)
        assert "\n" not in message and str(mutant.parent) in message, (name, message)


def test_weight_flip_without_verification_runs(models: dict[str, Path], tmp_path: Path) -> None:
    copy = _copy(models["onnx"], tmp_path)
    data = bytearray(copy.read_bytes())
    data[data.find(WEIGHT_BYTES) + 3] ^= 0x40  # 4.0 becomes 4.0 * 2**128: still a float
    copy.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="does not match the BLAKE3 digest"):
        load_backend(copy)
    assert load_backend(copy, verify=False).settings["integrity"].startswith("not checked")


def test_bin_of_openvino_is_covered(models: dict[str, Path], tmp_path: Path) -> None:
    copy = _copy(models["openvino"], tmp_path)
    weights = copy.with_suffix(".bin")
    weights.write_bytes(weights.read_bytes() + b"\0")
    with pytest.raises(ModelError, match=r"m\.bin is corrupted"):
        load_backend(copy)


def test_foreign_model_loads_unverified(tmp_path: Path) -> None:
    model = make_onnx(tmp_path / "foreign.onnx", NET)
    assert integrity.verify_file(model) == integrity.UNSIGNED
    assert load_backend(model).settings["integrity"] == "unsigned"


def test_unstamped_and_lost_digests_are_refused(tmp_path: Path) -> None:
    unstamped = make_onnx(tmp_path / "u.onnx", NET, tiny_metadata(NET, digest=DIGEST_PLACEHOLDER))
    with pytest.raises(ModelError, match="never stamped"):
        load_backend(unstamped)
    lost = _stamped(make_onnx(tmp_path / "l.onnx", NET, tiny_metadata(NET, digest=DIGEST_PLACEHOLDER)))
    lost.write_bytes(lost.read_bytes().replace(b"edgecls-blake3:", b"edgecls-blake4:"))
    with pytest.raises(ModelError, match="names a digest"):
        load_backend(lost)


def test_stamp_is_in_place_and_idempotent_to_verify(models: dict[str, Path]) -> None:
    data = models["tflite"].read_bytes()
    restamped = integrity.stamp_bytes(data.replace(data[data.find(b"edgecls-blake3:") + 15:][:64],
                                                   b"0" * 64))
    assert restamped == data and len(restamped) == len(data)


def test_cli_refuses_a_damaged_model_and_no_verify_runs_it(models: dict[str, Path],
                                                           tmp_path: Path) -> None:
    copy = _copy(models["onnx"], tmp_path / "m")
    data = bytearray(copy.read_bytes())
    data[data.find(WEIGHT_BYTES) + 3] ^= 0x01
    copy.write_bytes(bytes(data))
    images = tmp_path / "images"
    images.mkdir()
    import cv2

    cv2.imwrite(str(images / "red.png"), color_frame("red"))
    args = ["run", str(copy), "--source", str(images), "--headless"]
    refused = edgecls(*args)  # in-process; test_runtime_cli.py starts real `edgecls run` processes
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    errors = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "is corrupted" in errors[0], refused.stderr
    ran = edgecls(*args, "--no-verify")
    assert ran.returncode == 0, ran.stderr


def test_onnx_cut_before_its_metadata_is_refused(tmp_path: Path) -> None:
    """metadata_props are serialized last: the doc_string copy of the digest catches a cut."""
    import onnx

    from edgecls.export.metadata import embed_onnx

    proto = onnx.load(str(make_onnx(tmp_path / "plain.onnx", NET)))
    embed_onnx(proto, tiny_metadata(NET, digest=DIGEST_PLACEHOLDER))
    model = tmp_path / "m.onnx"
    onnx.save(proto, str(model))
    _stamped(model)
    data = model.read_bytes()
    stamped = onnx.load_from_string(data)
    del stamped.metadata_props[:]
    cut = stamped.SerializeToString()
    assert data.startswith(cut) and len(cut) < len(data)
    model.write_bytes(cut)
    with pytest.raises(ModelError, match="does not match the BLAKE3 digest"):
        load_backend(model)


@pytest.mark.parametrize("fmt", ["tflite", "onnx", "openvino"])
def test_model_files_are_read_once_and_checked_beside_the_load(models: dict[str, Path], fmt: str,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The backend loads the very bytes that were hashed: no second read the file could change under."""
    reads: list[str] = []
    threads: list[str] = []
    original_read, original_digest = Path.read_bytes, integrity._content_digest

    def counted_read(path: Path) -> bytes:
        reads.append(path.name)
        return original_read(path)

    def spied_digest(*args, **kwargs) -> str:
        threads.append(threading.current_thread().name)
        return original_digest(*args, **kwargs)

    monkeypatch.setattr(Path, "read_bytes", counted_read)
    monkeypatch.setattr(integrity, "_content_digest", spied_digest)
    backend = load_backend(models[fmt])
    assert backend.settings["integrity"] == "verified"
    assert sorted(reads) == sorted({models[fmt].name, models[fmt].with_suffix(".bin").name}
                                   if fmt == "openvino" else {models[fmt].name})
    assert threads == ["edgecls-verify"]


def test_a_damaged_file_the_library_rejects_is_reported_as_damaged(models: dict[str, Path],
                                                                   tmp_path: Path) -> None:
    copy = _copy(models["tflite"], tmp_path)
    data = bytearray(copy.read_bytes())
    data[0] ^= 0x80  # the flatbuffer's root offset: LiteRT cannot parse it; the digest says why
    copy.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="is corrupted: its content does not match"):
        load_backend(copy)
    with pytest.raises(ModelError, match="is not a valid TFLite model"):
        load_backend(copy, verify=False)
