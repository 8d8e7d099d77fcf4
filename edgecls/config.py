"""YAML-backed dataclass configs.

Every stage has a dataclass config. ``load_config`` reads YAML, rejects unknown keys
(typos should fail, not be ignored), and ``None`` always means "use the default".
Stage configs live next to the stage that uses them; this module holds the mechanics.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, TypeVar

import yaml

from edgecls.atomic import write_text_atomic
from edgecls.errors import ConfigError

C = TypeVar("C")
YAML_SUFFIXES = (".yaml", ".yml")


def is_yaml_name(name: str | Path) -> bool:
    """True when ``name`` ends like a YAML file: a path to a config, not a preset or profile name."""
    return str(name).endswith(YAML_SUFFIXES)


def from_dict(cls: type[C], values: dict[str, Any], source: str = "config") -> C:
    """Builds dataclass ``cls`` from ``values``; unknown and missing required keys are errors."""
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    known = {f.name for f in fields}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(
            f"{source}: unknown key(s) {', '.join(unknown)}",
            f"valid keys: {', '.join(sorted(known))}",
        )
    missing = [f.name for f in fields if f.name not in values and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ConfigError(f"{source}: missing key(s) {', '.join(missing)}")
    return cls(**values)


def load_config(cls: type[C], path: str | Path, overrides: dict[str, Any] | None = None) -> C:
    """Reads a YAML file into ``cls``; non-None ``overrides`` win over the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path} must hold a mapping of keys to values")
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return from_dict(cls, values, source=str(path))


def to_dict(config: Any) -> dict[str, Any]:
    """A plain dict of a dataclass config, with paths as strings."""
    def plain(value: Any) -> Any:
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return {k: plain(v) for k, v in dataclasses.asdict(config).items()}


def save_config(config: Any, path: str | Path) -> None:
    """Writes a dataclass config as YAML, atomically."""
    write_text_atomic(Path(path), yaml.safe_dump(to_dict(config), sort_keys=False))
