"""``manifest.json``: what was exported, how, and how each artifact compares with float."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgecls.atomic import write_text_atomic

MANIFEST_SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"


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
    """One exported artifact. ``path`` is relative to the manifest's folder."""

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
    per_class_change: dict[str, float]
    passed: bool
    settings: dict[str, Any]
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
    test_images: int
    float_accuracy: float
    calibration: str | None
    cpu: str
    target: str | None = None
    artifacts: list[ArtifactRecord] = field(default_factory=list)
    schema_version: int = MANIFEST_SCHEMA_VERSION

    @property
    def failed(self) -> list[ArtifactRecord]:
        """The artifacts that lost more than the budget."""
        return [a for a in self.artifacts if not a.passed]

    def to_json(self) -> str:
        """Indented JSON text."""
        return json.dumps(asdict(self), indent=2)

    def save(self, out_dir: Path) -> Path:
        """Writes ``out_dir/manifest.json`` atomically."""
        path = out_dir / MANIFEST_NAME
        write_text_atomic(path, self.to_json() + "\n")
        return path


def artifact_files(path: Path) -> list[Path]:
    """The files of one artifact: the file itself, plus the .bin of an OpenVINO .xml."""
    files = [path]
    if path.suffix == ".xml" and path.with_suffix(".bin").is_file():
        files.append(path.with_suffix(".bin"))
    return files


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def describe_files(path: Path) -> dict[str, dict[str, Any]]:
    """name -> {size_bytes, sha256} for every file of an artifact."""
    return {f.name: {"size_bytes": f.stat().st_size, "sha256": sha256_of(f)}
            for f in artifact_files(path)}
