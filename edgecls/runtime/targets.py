"""Device target profiles (``targets/*.yaml``): what to export and how to run it there.

Used by ``edgecls run --target``, ``edgecls export --target`` and ``edgecls bench``, all
through ``apply``: what the user gave explicitly wins, the profile fills the rest.
A NAME is looked up in ``$EDGECLS_TARGETS_DIR`` and then the project's ``targets/``
folder; a path to a YAML file works too. Unknown keys are rejected.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgecls.config import is_yaml_name, load_config, to_dict
from edgecls.errors import ConfigError
from edgecls.resources import resource_dir
from edgecls.runtime.base import BackendOptions

TARGETS_ENV = "EDGECLS_TARGETS_DIR"
_PROJECT_TARGETS = resource_dir("targets")


@dataclass
class Target:
    """One device profile. Facts in the YAML files cite their sources."""

    name: str
    description: str
    arch: str
    format: str  # tflite | onnx | openvino
    precision: str  # fp32 | fp16 | int8 | dynamic
    backend: str  # litert | onnxruntime | openvino
    device: str = "CPU"
    threads: int | None = None
    execution_providers: list[str] = field(default_factory=list)
    provider_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    input_size_advice: str = ""
    camera: str = "0"
    python: str = ""
    pip: str = ""
    notes: str = ""
    sources: list[str] = field(default_factory=list)
    # Findings of scripts/check-aarch64.sh (emulated arm64 install + classification),
    # written by hand into the profile; see docs/aarch64.md.
    aarch64_check: dict[str, Any] = field(default_factory=dict)

    def backend_options(self, threads: int | None = None) -> BackendOptions:
        """BackendOptions for this device; an explicit ``threads`` wins over the profile."""
        return backend_options(apply(self, threads=threads, device=None, providers=None,
                                     provider_options=None))

    def decides(self) -> dict[str, Any]:
        """What this profile sets when the user did not: option name -> value (None: nothing)."""
        return {"threads": self.threads,
                "device": self.device if self.backend == "openvino" else None,
                "providers": list(self.execution_providers) or None,
                "provider_options": dict(self.provider_options) or None,
                "source": self.camera, "formats": [self.format], "precisions": [self.precision]}

    def as_dict(self) -> dict[str, Any]:
        """Plain dict, e.g. for bench output."""
        return to_dict(self)


def apply(target: Target | None, **given: Any) -> dict[str, Any]:
    """The options a command runs with: each one the user gave explicitly (not None) wins,
    the profile fills those left None, and options the profile knows nothing of stay as given.

    Example: ``apply(load_target("raspberry-pi-5"), threads=None, source="video.mp4")``
    gives the profile's threads and the user's source.
    """
    if target is None:
        return dict(given)
    decided = target.decides()
    return {key: decided.get(key) if value is None else value for key, value in given.items()}


def backend_options(chosen: dict[str, Any]) -> BackendOptions:
    """BackendOptions from ``apply``'s result (threads, device, providers, provider_options)."""
    provider_options = chosen.get("provider_options")
    return BackendOptions(threads=chosen.get("threads"), device=chosen.get("device"),
                          providers=chosen.get("providers"),
                          extra={"provider_options": provider_options} if provider_options else {})


def target_dirs() -> list[Path]:
    """Folders searched for ``NAME.yaml``, first match wins."""
    dirs = [Path(os.environ[TARGETS_ENV])] if os.environ.get(TARGETS_ENV) else []
    return dirs + [_PROJECT_TARGETS]


def list_targets() -> list[Target]:
    """Every target profile found, sorted by name."""
    found: dict[str, Path] = {}
    for folder in reversed(target_dirs()):
        for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
            found[path.stem] = path
    return [load_config(Target, found[name]) for name in sorted(found)]


def target_file(name: str) -> Path | None:
    """The YAML file ``--target NAME`` names, or None when NAME is a profile name."""
    return Path(name) if is_yaml_name(name) and Path(name).is_file() else None


def load_target(name: str) -> Target:
    """The profile called ``name`` (or read from a YAML path)."""
    if (path := target_file(name)) is not None:
        return load_config(Target, path)
    for folder in target_dirs():
        path = folder / f"{name}.yaml"
        if path.is_file():
            return load_config(Target, path)
    known = ", ".join(t.name for t in list_targets()) or "none found"
    raise ConfigError(f"unknown target {name!r}", f"choose one of: {known} (see `edgecls targets list`)")
