"""What there is to choose from: device target profiles (``edgecls targets list|show``)
and the model families edgecls trains (``edgecls models list``). No TensorFlow."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edgecls import models as model_registry
from edgecls.api import html
from edgecls.runtime import targets as target_profiles
from edgecls.runtime.targets import Target

TARGET_COLUMNS = ("name", "format", "precision", "backend", "device / providers")


@dataclass
class TargetList:
    """The device profiles found (``targets/*.yaml`` and ``$EDGECLS_TARGETS_DIR``), by name."""

    targets: list[Target]

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.targets]

    def rows(self) -> list[list[str]]:
        """One row per profile, in ``TARGET_COLUMNS`` order (the table ``targets list`` prints)."""
        return [[t.name, t.format, t.precision, t.backend,
                 ",".join(t.execution_providers) if t.execution_providers else t.device] for t in self.targets]

    def to_dict(self) -> dict[str, Any]:
        return {"targets": [t.as_dict() for t in self.targets]}

    def _repr_html_(self) -> str:
        return html.STYLE + html.table(TARGET_COLUMNS, self.rows(), caption="device target profiles")


@dataclass
class TargetProfile:
    """One device profile: what ``edgecls export/run/bench --target NAME`` use, the pip
    line, and the sources of its facts."""

    target: Target

    def to_dict(self) -> dict[str, Any]:
        return self.target.as_dict()

    def to_yaml(self) -> str:
        """The profile as ``edgecls targets show`` prints it."""
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False, width=100).rstrip()

    def _repr_html_(self) -> str:
        rows = [[key, _text(value)] for key, value in self.to_dict().items() if value not in ("", [], {}, None)]
        return html.STYLE + html.table(["field", "value"], rows, caption=f"target {self.target.name}")


@dataclass
class ModelList:
    """Registered model families (a name is what ``train --model`` takes) and the first
    line of each one's description."""

    models: dict[str, str]

    @property
    def names(self) -> list[str]:
        return list(self.models)

    def to_dict(self) -> dict[str, Any]:
        return {"models": [{"name": name, "description": text} for name, text in self.models.items()]}

    def _repr_html_(self) -> str:
        return html.STYLE + html.table(["model", "description"], [list(item) for item in self.models.items()])


def list_targets() -> TargetList:
    """Lists the device profiles: format, precision, backend, device (``edgecls targets list``)."""
    return TargetList(target_profiles.list_targets())


def show_target(name: str) -> TargetProfile:
    """One device profile, including the pip line and the sources of its facts
    (``edgecls targets show``).

    Args:
        name: a profile name, e.g. ``raspberry-pi-5``, or a path to a YAML file.

    Raises:
        ConfigError: no profile of that name (the message lists the known ones), or a bad file.
    """
    return TargetProfile(target_profiles.load_target(name))


def list_models(pattern: str = "*") -> ModelList:
    """Lists the registered model families (``edgecls models list``).

    Args:
        pattern: shell-style wildcard, e.g. ``"mobilenet*"``.
    """
    return ModelList({name: _first_line(model_registry.MODELS.get(name).__doc__)
                      for name in model_registry.list_models(pattern)})


def _first_line(doc: str | None) -> str:
    lines = (doc or "").strip().splitlines()
    return lines[0] if lines else ""


def _text(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value)
