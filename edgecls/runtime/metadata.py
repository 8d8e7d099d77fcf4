"""The metadata that makes an artifact self-describing.

Export embeds one ``ModelMetadata`` as JSON in every artifact (TFLite metadata buffer,
ONNX ``metadata_props``, OpenVINO ``rt_info``) under the key ``METADATA_KEY``; the
runtime reads it back so ``edgecls run model.tflite`` needs no other flag.
Pure Python: no TensorFlow, no backend import.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

METADATA_KEY = "edgecls"
METADATA_SCHEMA_VERSION = 1


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

    def to_json(self) -> str:
        """Compact JSON for embedding in an artifact."""
        return json.dumps(dataclasses.asdict(self), separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> "ModelMetadata":
        """Parses metadata written by ``to_json``; unknown keys go to ``extra``."""
        data = json.loads(text)
        known = {f.name for f in dataclasses.fields(cls)}
        extra = {k: data.pop(k) for k in list(data) if k not in known}
        pre = Preprocessing(**data.pop("preprocessing", {}) or {})
        meta = cls(preprocessing=pre, **data)
        meta.input_size = tuple(meta.input_size)  # type: ignore[assignment]
        for name in ("input_quantization", "output_quantization"):
            value = getattr(meta, name)
            if value is not None:
                setattr(meta, name, (float(value[0]), int(value[1])))
        meta.extra.update(extra)
        return meta


def split_rule(meta: ModelMetadata | None) -> dict[str, Any] | None:
    """The training run's split rule an edgecls artifact carries in ``extra["split"]``.

    Written by ``edgecls export`` (``data.split.hash_rule``): ``salt`` (int),
    ``fractions`` (train, val, test), ``held_out_from`` (a file whose salted content hash
    is at least this was not trained on; None for a pre-split dataset) and ``hash`` (the
    rule's text). Returns None when absent, malformed or unusable, i.e. when held-out
    files cannot be told from training files.
    """
    rule = (meta.extra or {}).get("split") if meta is not None else None
    if not isinstance(rule, dict):
        return None
    salt, start = rule.get("salt"), rule.get("held_out_from")
    if not isinstance(salt, int) or isinstance(salt, bool):
        return None
    if not isinstance(start, (int, float)) or isinstance(start, bool) or not 0.0 < start <= 1.0:
        return None
    return {"salt": salt, "held_out_from": float(start), "fractions": rule.get("fractions"),
            "hash": rule.get("hash")}
