"""Digest schemes and where the check looks: BLAKE3 fields (what exports write) and the
older SHA-256 ones both verify; fields are looked for near the ends of a large file
first, anywhere else only when that does not match (or, at load, when the metadata names
a digest); a byte damaged anywhere is refused either way."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from helpers.tiny_models import TinyNet, make_onnx, tiny_metadata

from edgecls.errors import ModelError
from edgecls.runtime import integrity, load_backend
from edgecls.runtime.integrity import BLAKE3, SHA256, DigestScheme

NET = TinyNet()
WINDOW = integrity._END_WINDOW
SIZE = 3 * WINDOW  # larger than both windows: the middle third is searched only as a fallback
LAYOUTS = {
    "fields at both ends (ONNX)": (100, SIZE - 300),
    "field near the start (TFLite)": (1700,),
    "field between the windows": (WINDOW + 1000,),
    "fields at the start and between the windows": (100, WINDOW + 1000),
    "field across the end of the first window": (WINDOW - 5,),
}
SCHEMES = {"blake3": BLAKE3, "sha256": SHA256}


def _placeholder(scheme: DigestScheme) -> str:
    return scheme.prefix + "0" * 64


def _artifact(scheme: DigestScheme, *fields_at: int) -> bytes:
    """Random bytes with a digest placeholder at each offset, stamped as an exporter does."""
    data = bytearray(np.random.default_rng(15).bytes(SIZE))
    for at in fields_at:
        data[at:at + len(_placeholder(scheme))] = _placeholder(scheme).encode()
    return integrity.stamp_bytes(bytes(data))


def _positions(scheme: DigestScheme, fields_at: tuple[int, ...]) -> set[int]:
    """Bytes to damage: evenly spread, both window edges, and each field's marker and hex."""
    spread = set(range(0, SIZE, SIZE // 150)) | {SIZE - 1}
    edges = {WINDOW - 1, WINDOW, SIZE - WINDOW - 1, SIZE - WINDOW}
    prefix = len(scheme.prefix)
    fields = {at + offset for at in fields_at for offset in (0, prefix - 1, prefix, prefix + 63)}
    return spread | edges | fields


@pytest.mark.parametrize("scheme", SCHEMES.values(), ids=SCHEMES.keys())
@pytest.mark.parametrize("fields_at", LAYOUTS.values(), ids=LAYOUTS.keys())
def test_a_large_artifact_verifies_and_every_damaged_byte_is_refused(
        fields_at: tuple[int, ...], scheme: DigestScheme, tmp_path: Path) -> None:
    data = _artifact(scheme, *fields_at)
    model = tmp_path / "m.onnx"
    assert integrity.verify_bytes(model, data) == integrity.VERIFIED
    near_ends = integrity.digest_fields_near_ends(data, scheme.prefix)
    every = integrity.digest_fields(data, scheme.prefix)
    assert (near_ends == every) == all(at < WINDOW - 80 or at >= SIZE - WINDOW for at in fields_at)
    if not near_ends:  # the check at load leaves these to the metadata (see the ONNX test below)
        assert integrity.verify_bytes(model, data, everywhere=False) == integrity.UNSIGNED
    for position in sorted(_positions(scheme, fields_at)):
        damaged = bytearray(data)
        damaged[position] ^= 0x04
        if len(fields_at) == 1 and fields_at[0] <= position < fields_at[0] + len(scheme.prefix):
            # the only marker is damaged: no digest left in the bytes; load_backend refuses
            # it because the metadata still names one (test_unstamped_and_lost_digests_are_refused)
            assert integrity.verify_bytes(model, bytes(damaged)) == integrity.UNSIGNED
            continue
        with pytest.raises(ModelError, match=f"is corrupted: .*{scheme.name}|disagree|damaged"):
            integrity.verify_bytes(model, bytes(damaged))


def test_digests_of_two_kinds_are_refused(tmp_path: Path) -> None:
    data = bytearray(_artifact(BLAKE3, 100))
    data[SIZE - 300:SIZE - 300 + 79] = _placeholder(SHA256).encode()
    with pytest.raises(ModelError, match="digests of different kinds"):
        integrity.verify_bytes(tmp_path / "m.onnx", bytes(data))


def test_a_blake3_digest_without_its_package_is_refused_with_the_fix(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    data = _artifact(BLAKE3, 100)
    monkeypatch.setattr(integrity, "SCHEMES", (dataclasses.replace(BLAKE3, new=None), SHA256))
    with pytest.raises(ModelError, match="blake3 package that checks it is not installed") as caught:
        integrity.verify_bytes(tmp_path / "m.onnx", data)
    assert "pip install blake3" in caught.value.hint
    assert integrity.verify_bytes(tmp_path / "m.onnx", _artifact(SHA256, 100)) == integrity.VERIFIED


@pytest.mark.parametrize("scheme", SCHEMES.values(), ids=SCHEMES.keys())
def test_models_exported_with_either_scheme_load_verified(scheme: DigestScheme, tmp_path: Path) -> None:
    """Exports write BLAKE3; models exported before, with SHA-256 fields, keep verifying."""
    model = make_onnx(tmp_path / "m.onnx", NET, tiny_metadata(NET, digest=_placeholder(scheme)))
    integrity.stamp_file(model)
    assert load_backend(model).read_metadata().digest.startswith(scheme.prefix)
    assert load_backend(model).settings["integrity"] == "verified"
    data = bytearray(model.read_bytes())
    data[data.find(NET.weights.tobytes()) + 2] ^= 0x01
    model.write_bytes(bytes(data))
    with pytest.raises(ModelError, match=f"does not match the {scheme.name} digest"):
        load_backend(model)
    assert integrity.DIGEST_PLACEHOLDER == _placeholder(BLAKE3)


def _large_onnx(path: Path, meta: object, tail: int = 0) -> tuple[Path, bytes]:
    """A real 1.2 MB ONNX model: 1.2 MB of (unused) weights, then ``meta`` in
    ``metadata_props``, then ``tail`` bytes of another entry (which push the digest field
    away from the end); stamped."""
    import onnx
    from onnx import helper, numpy_helper

    proto = onnx.load(str(make_onnx(path.with_name("plain.onnx"), NET)))
    extra = np.random.default_rng(15).standard_normal(300_000).astype(np.float32)
    proto.graph.initializer.append(numpy_helper.from_array(extra, "unused_weights"))
    if meta is not None:
        from edgecls.export.metadata import embed_onnx

        embed_onnx(proto, meta)
        if tail:
            helper.set_model_props(proto, {"edgecls": meta.to_json(), "notes": "n" * tail})
            proto.doc_string = ""  # no copy of the field near the start either
    onnx.save(proto, str(path))
    integrity.stamp_file(path)
    return path, extra.tobytes()


def test_a_large_onnx_model_verifies_from_its_ends_and_weight_flips_are_refused(tmp_path: Path) -> None:
    """Digest in ``doc_string`` (start) and ``metadata_props`` (end): found without a pass
    over the weights between them."""
    model, extra = _large_onnx(tmp_path / "m.onnx", tiny_metadata(NET, digest=integrity.DIGEST_PLACEHOLDER))
    data = model.read_bytes()
    assert len(data) > 2 * WINDOW
    fields = integrity.digest_fields_near_ends(data, integrity.DIGEST_PREFIX)
    assert fields == integrity.digest_fields(data, integrity.DIGEST_PREFIX) and len(fields) == 2
    assert load_backend(model).settings["integrity"] == "verified"
    start = data.find(extra)
    for at in (start, start + len(extra) // 2, data.find(NET.weights.tobytes()) + 5):
        damaged = bytearray(data)
        damaged[at] ^= 0x10
        model.write_bytes(bytes(damaged))
        with pytest.raises(ModelError, match="does not match the BLAKE3 digest"):
            load_backend(model)


def test_a_digest_away_from_the_ends_is_found_through_the_metadata(tmp_path: Path) -> None:
    """No exporter writes one there, but such a model still verifies (and a damaged one
    is refused): the metadata names a digest, so the whole file is searched."""
    model, extra = _large_onnx(tmp_path / "m.onnx", tiny_metadata(NET, digest=integrity.DIGEST_PLACEHOLDER),
                               tail=WINDOW + 1000)
    data = model.read_bytes()
    assert integrity.digest_fields_near_ends(data, integrity.DIGEST_PREFIX) == []
    assert len(integrity.digest_fields(data, integrity.DIGEST_PREFIX)) == 1
    assert load_backend(model).settings["integrity"] == "verified"
    for at in (data.find(extra) + 7, data.find(integrity.DIGEST_PREFIX.encode()) + 20):
        damaged = bytearray(data)
        damaged[at] ^= 0x01
        model.write_bytes(bytes(damaged))
        with pytest.raises(ModelError, match="is corrupted"):
            load_backend(model)


def test_a_large_foreign_model_loads_unsigned(tmp_path: Path) -> None:
    model, _ = _large_onnx(tmp_path / "foreign.onnx", None)
    assert integrity.verify_file(model) == integrity.UNSIGNED
    assert load_backend(model).settings["integrity"] == "unsigned"
