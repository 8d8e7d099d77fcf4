"""YAML-backed dataclass configs.

Every stage has a dataclass config. ``load_config`` reads YAML, rejects unknown keys
(typos should fail, not be ignored), and ``None`` always means "use the default".
Stage configs live next to the stage that uses them; this module holds the mechanics.
A field's ``metadata["help"]`` is its one-line help: the command-line option of the same
name shows it, and its default, from here (``field_help``, ``field_default``).
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


def option(default: Any = dataclasses.MISSING, help: str = "", **kwargs: Any) -> Any:
    """A dataclass field with its command-line help text (``metadata["help"]``); no
    default (and no ``default_factory``) makes it required."""
    return dataclasses.field(default=default, metadata={"help": help}, **kwargs)


def field_help(cls: type, name: str) -> str:
    """The help text of field ``name`` of dataclass ``cls`` (KeyError when it has none)."""
    return _field(cls, name).metadata["help"]


def field_default(cls: type, name: str) -> Any:
    """The default of field ``name`` of dataclass ``cls`` (a fresh one for factories)."""
    found = _field(cls, name)
    if found.default_factory is not dataclasses.MISSING:
        return found.default_factory()
    return None if found.default is dataclasses.MISSING else found.default


def _field(cls: type, name: str) -> dataclasses.Field:
    return {f.name: f for f in dataclasses.fields(cls)}[name]  # type: ignore[arg-type]
