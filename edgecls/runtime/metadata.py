"""The metadata that makes an artifact self-describing.

Export embeds one ``ModelMetadata`` as JSON in every artifact (TFLite metadata buffer,
ONNX ``metadata_props``, OpenVINO ``rt_info``) under the key ``METADATA_KEY``; the
runtime reads it back so ``edgecls run model.tflite`` needs no other flag.
``parse_metadata`` validates what it reads against the schema below, so a damaged or
hand-edited entry is refused with one line instead of failing later in a frame.
Pure Python: no TensorFlow, no backend import.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgecls.errors import ModelError

METADATA_KEY = "edgecls"
METADATA_SCHEMA_VERSION = 1
COLORS = ("RGB", "BGR")
RESIZES = ("stretch", "center_crop")
INTERPOLATIONS = ("bilinear", "area", "nearest")
LAYOUTS = ("NHWC", "NCHW")


@dataclass
class Preprocessing:
    """How a frame becomes the model's input. The models carry their own normalization,
    so by default this is only: decode -> RGB -> resize -> 0..255.

    Attributes:
        color: channel order the model expects ("RGB" or "BGR").
        resize: "stretch" (squash to the input size, as in training) or "center_crop".
        interpolation: "bilinear", "area" or "nearest".
        scale, offset: input = pixel * scale + offset, applied outside the model
            (identity 1/0 for edgecls models, which normalize inside).
    """

    color: str = "RGB"
    resize: str = "stretch"
    interpolation: str = "bilinear"
    scale: float = 1.0
    offset: float = 0.0


@dataclass
class ModelMetadata:
    """Everything the runtime needs to classify correctly with a model file alone."""

    labels: list[str]
    input_size: tuple[int, int]  # (height, width)
    layout: str = "NHWC"
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    model_name: str | None = None
    precision: str | None = None  # fp32 | fp16 | int8 | dynamic
    input_dtype: str | None = None  # as stored in the artifact, e.g. "uint8"
    input_quantization: tuple[float, int] | None = None  # (scale, zero_point)
    output_quantization: tuple[float, int] | None = None
    outputs_probabilities: bool = True  # False: logits, softmax is applied by the runtime
    producer: str = "edgecls"
    producer_version: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    schema_version: int = METADATA_SCHEMA_VERSION
    digest: str | None = None  # "edgecls-sha256:<hex>", see edgecls.runtime.integrity
    weights_digest: str | None = None  # OpenVINO: "edgecls-bin-sha256:<hex>" of the .bin

    def to_json(self) -> str:
        """Compact JSON for embedding in an artifact."""
        return json.dumps(dataclasses.asdict(self), separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> ModelMetadata:
        """Parses and validates metadata written by ``to_json``; unknown keys go to ``extra``.

        Raises:
            ValueError: the text is not JSON or breaks the schema (the message says where).
        """
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        version = data.get("schema_version", METADATA_SCHEMA_VERSION)
        if not _is_int(version) or not 1 <= version <= METADATA_SCHEMA_VERSION:
            raise ValueError(f"schema_version {version!r} is not one this edgecls reads "
                             f"(1..{METADATA_SCHEMA_VERSION}); upgrade edgecls")
        known = {f.name for f in dataclasses.fields(cls)}
        extra = {k: data.pop(k) for k in list(data) if k not in known}
        pre = _preprocessing(data.pop("preprocessing", None) or {})
        _check_fields(data)
        meta = cls(preprocessing=pre, **data)
        meta.labels = list(meta.labels)
        meta.input_size = (int(meta.input_size[0]), int(meta.input_size[1]))
        for name in ("input_quantization", "output_quantization"):
            value = getattr(meta, name)
            if value is not None:
                setattr(meta, name, (float(value[0]), int(value[1])))
        meta.extra = {**meta.extra, **extra}
        return meta


def split_rule(meta: ModelMetadata | None) -> dict[str, Any] | None:
    """The training run's split rule an edgecls artifact carries in ``extra["split"]``.

    Written by ``edgecls export`` (``data.split.hash_rule``): ``salt`` (int),
    ``fractions`` (train, val, test), ``held_out_from`` (a file whose salted content hash
    is at least this was not trained on) and ``hash`` (the rule's text); for a run made
    from given folders ``held_out_from`` is None and ``trained_folder`` (the given train
    folder's name) with ``carve_from`` (a file of it hashing at least this was carved into
    val; None: all of it was trained on) say what was held out. Returns None when absent,
    malformed or unusable, i.e. when held-out files cannot be told from training files.
    """
    rule = (meta.extra or {}).get("split") if meta is not None else None
    if not isinstance(rule, dict) or not _is_int(rule.get("salt")):
        return None
    found = {"salt": rule["salt"], "fractions": rule.get("fractions"), "hash": rule.get("hash")}
    start = rule.get("held_out_from")
    if _is_unit(start):
        return {**found, "held_out_from": float(start)}
    folder, carve = rule.get("trained_folder"), rule.get("carve_from")
    if start is None and isinstance(folder, str) and folder and (carve is None or _is_unit(carve)):
        return {**found, "held_out_from": None, "trained_folder": folder,
                "carve_from": None if carve is None else float(carve)}
    return None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_unit(value: Any) -> bool:
    """A number in (0, 1]."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0.0 < value <= 1.0


def parse_metadata(text: str | bytes, source: str | Path) -> ModelMetadata:
    """``ModelMetadata.from_json`` with any problem turned into a one-line ``ModelError``."""
    try:
        return ModelMetadata.from_json(text)
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"{source}: embedded edgecls metadata is invalid ({detail})",
                         "re-export the model with `edgecls export`") from None


def _preprocessing(data: Any) -> Preprocessing:
    if not isinstance(data, dict):
        raise ValueError("preprocessing is not an object")
    unknown = sorted(set(data) - {f.name for f in dataclasses.fields(Preprocessing)})
    if unknown:
        raise ValueError(f"unknown preprocessing field(s): {', '.join(unknown)}")
    pre = Preprocessing(**data)
    pre.color = pre.color.upper() if isinstance(pre.color, str) else pre.color
    _check_choice("color", pre.color, COLORS)
    _check_choice("resize", pre.resize, RESIZES)
    _check_choice("interpolation", pre.interpolation, INTERPOLATIONS)
    for name in ("scale", "offset"):
        value = getattr(pre, name)
        if not _is_number(value) or not math.isfinite(value):
            raise ValueError(f"preprocessing {name} {value!r} is not a finite number")
        setattr(pre, name, float(value))
    if pre.scale == 0:
        raise ValueError("preprocessing scale is 0")
    return pre


def _check_fields(data: dict[str, Any]) -> None:
    labels = data.get("labels")
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise ValueError("labels is not a list of strings")
    size = data.get("input_size")
    if (not isinstance(size, (list, tuple)) or len(size) != 2
            or not all(_is_int(x) and 0 < x <= 16384 for x in size)):
        raise ValueError(f"input_size {size!r} is not two positive integers")
    _check_choice("layout", data.get("layout", "NHWC"), LAYOUTS)
    for name in ("input_quantization", "output_quantization"):
        value = data.get(name)
        if value is not None and not (isinstance(value, (list, tuple)) and len(value) == 2
                                      and _is_number(value[0]) and math.isfinite(value[0])
                                      and value[0] > 0 and _is_int(value[1])):
            raise ValueError(f"{name} {value!r} is not [positive scale, integer zero point]")
    if not isinstance(data.get("outputs_probabilities", True), bool):
        raise ValueError("outputs_probabilities is not true/false")
    if not isinstance(data.get("extra", {}), dict):
        raise ValueError("extra is not an object")
    for name in ("model_name", "precision", "input_dtype", "producer", "producer_version",
                 "digest", "weights_digest"):
        if data.get(name) is not None and not isinstance(data[name], str):
            raise ValueError(f"{name} is not a string")


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} {value!r} is not one of {', '.join(choices)}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
