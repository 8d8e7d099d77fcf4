"""``manifest.json``: what was exported, how, and how each artifact compares with float.

Schema version 3 (fields documented in docs/gate.md): the gate compares on all
held-out images (the run's val and test splits, counted per split), and each artifact
carries its drop with a 95 % interval, the predictions that changed each way, the worst
class and the gate's verdict (``passed`` / ``failed`` / ``inconclusive``). One sign
convention: ``+`` is a loss against float, in ``drop_pp`` as in ``per_class_drop_pp``
(version 2's ``per_class_change`` used ``+`` for a gain; ``load_manifest`` converts it).
``schema_minor`` counts additions a reader of the version may ignore.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from edgecls.atomic import write_text_atomic
from edgecls.digest import file_sha256
from edgecls.errors import EdgeclsError
from edgecls.formats import artifact_files
from edgecls.rundir import ExportDir

MANIFEST_SCHEMA_VERSION = 3  # 3: per_class_drop_pp (+ is a loss) replaces per_class_change
MANIFEST_SCHEMA_MINOR = 0  # additions within version 3 (readers of 3 may ignore them)
READABLE_VERSIONS = (2, 3)
MANIFEST_NAME = ExportDir.MANIFEST


@dataclass
class RemedyRecord:
    """One retry of an INT8 artifact that missed the budget, and its outcome."""

    description: str
    accuracy: float | None = None
    agreement: float | None = None
    drop_pp: float | None = None
    passed: bool = False
    kept: bool = False
    error: str | None = None


@dataclass
class ArtifactRecord:
    """One exported artifact. ``path`` is relative to the manifest's folder.

    ``drop_pp`` is the point estimate (float minus artifact top-1, in percentage points)
    and ``interval_pp`` its 95 % interval; ``right_to_wrong`` / ``wrong_to_right`` count
    the images whose correctness changed each way; ``verdict`` is the gate's (see
    ``export.gate``) and ``passed`` what the exit code follows (not ``failed``, and not
    ``inconclusive`` under ``--strict``). ``images`` / ``images_by_split`` say what the
    comparison stood on (held-out images an accuracy-controlled remedy tuned on are left
    out of that artifact's comparison): ``validated_images`` is the number it was judged
    on (``images``), ``tuning_images`` the held-out images that tuned it (0 unless an
    accuracy-controlled remedy or preset made it); together they are the manifest's
    ``held_out_images``.
    """

    format: str
    precision: str
    path: str
    size_bytes: int
    sha256: str
    accuracy: float
    float_accuracy: float
    agreement: float
    drop_pp: float
    kl_divergence: float
    per_class_drop_pp: dict[str, float]
    passed: bool
    settings: dict[str, Any]
    verdict: str = "passed"
    interval_pp: tuple[float, float] | None = None
    right_to_wrong: int = 0
    wrong_to_right: int = 0
    images: int = 0
    images_by_split: dict[str, int] = field(default_factory=dict)
    validated_images: int = 0
    tuning_images: int = 0
    images_needed: int | None = None
    smallest_budget_pp: float | None = None
    worst_class: dict[str, Any] | None = None
    flagged_classes: list[dict[str, Any]] = field(default_factory=list)
    gate_note: str = ""
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    remedies: list[RemedyRecord] = field(default_factory=list)
    backend_settings: dict[str, Any] = field(default_factory=dict)
    export_seconds: float = 0.0


@dataclass
class Manifest:
    """Everything ``edgecls export`` produced for one run."""

    run: str
    model: str
    labels: list[str]
    input_size: tuple[int, int]
    max_drop_pp: float
    held_out_images: int
    held_out_by_split: dict[str, int]
    float_accuracy: float
    calibration: str | None
    cpu: str
    target: str | None = None
    float_accuracy_by_split: dict[str, float] = field(default_factory=dict)
    max_class_drop_pp: float | None = None
    strict: bool = False
    gate_method: str = ""
    artifacts: list[ArtifactRecord] = field(default_factory=list)
    schema_version: int = MANIFEST_SCHEMA_VERSION
    schema_minor: int = MANIFEST_SCHEMA_MINOR

    @property
    def failed(self) -> list[ArtifactRecord]:
        """The artifacts the gate refuses (what makes ``edgecls export`` exit 2)."""
        return [a for a in self.artifacts if not a.passed]

    @property
    def inconclusive(self) -> list[ArtifactRecord]:
        """The artifacts whose held-out sample is too small to judge against the budget."""
        return [a for a in self.artifacts if a.verdict == "inconclusive"]

    def to_json(self) -> str:
        """Indented JSON text."""
        return json.dumps(asdict(self), indent=2)

    def save(self, out_dir: Path) -> Path:
        """Writes ``out_dir/manifest.json`` atomically."""
        path = ExportDir(out_dir).manifest
        write_text_atomic(path, self.to_json() + "\n")
        return path


def describe_files(path: Path) -> dict[str, dict[str, Any]]:
    """name -> {size_bytes, sha256} for every file of an artifact."""
    return {f.name: {"size_bytes": f.stat().st_size, "sha256": file_sha256(f)}
            for f in artifact_files(path)}


def load_manifest(path: str | Path) -> Manifest:
    """Reads a ``manifest.json`` of version 2 or 3; version 2's ``per_class_change``
    (``+`` a gain) becomes ``per_class_drop_pp`` (``+`` a loss).

    Raises:
        EdgeclsError: the file is not JSON or of a version this edgecls does not read.
    """
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise EdgeclsError(f"cannot read {path}: {exc}", "pass the manifest.json "
                           "`edgecls export` wrote") from None
    version = data.get("schema_version") if isinstance(data, dict) else None
    if version not in READABLE_VERSIONS:
        raise EdgeclsError(f"{path}: manifest schema_version {version!r} is not one this "
                           f"edgecls reads ({', '.join(map(str, READABLE_VERSIONS))})",
                           "re-export the run with this edgecls")
    artifacts = [_artifact(a, version) for a in data.get("artifacts", [])]
    known = {f.name for f in fields(Manifest)} - {"artifacts", "schema_version", "schema_minor"}
    top = {k: v for k, v in data.items() if k in known}
    top["input_size"] = tuple(top.get("input_size") or ())
    return Manifest(**top, artifacts=artifacts)


def _artifact(data: dict[str, Any], version: int) -> ArtifactRecord:
    data = dict(data)
    if version == 2:
        data["per_class_drop_pp"] = {name: round(-change, 3) + 0.0
                                     for name, change in data.pop("per_class_change", {}).items()}
    data["remedies"] = [RemedyRecord(**r) for r in data.get("remedies", [])]
    if data.get("interval_pp") is not None:
        data["interval_pp"] = tuple(data["interval_pp"])
    known = {f.name for f in fields(ArtifactRecord)}
    return ArtifactRecord(**{k: v for k, v in data.items() if k in known})
