"""One small registry for models, exporters and runtime backends.

Example:
    MODELS = Registry("model", modules=("edgecls.models.mobilenet",))

    @MODELS.register("mobilenet_v2")          # in edgecls/models/mobilenet.py
    def mobilenet_v2(...): ...

    MODELS.get("mobilenet_v2"); MODELS.list("mobilenet*")

The modules that register entries are imported on the first lookup, not before: they
import heavy frameworks (Keras, an inference library) only when one of their entries
is used, but importing them still costs, and most commands need one registry only.
"""

from __future__ import annotations

import fnmatch
import importlib
from typing import Callable, Generic, Sequence, TypeVar

from edgecls.errors import EdgeclsError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to objects (factories, classes); lists them with wildcards."""

    def __init__(self, kind: str, modules: Sequence[str] = ()) -> None:
        """An empty registry.

        Args:
            kind: what the entries are, for messages ("model", "backend").
            modules: modules that register entries on import, loaded on first lookup;
                one that is not installed (a trimmed package) is skipped.
        """
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._modules = tuple(modules)
        self._loaded = not self._modules

    def _load(self) -> None:
        if self._loaded:
            return
        for module in self._modules:
            try:
                importlib.import_module(module)
            except ModuleNotFoundError as exc:
                if exc.name != module:
                    raise
        self._loaded = True

    def register(self, name: str | None = None) -> Callable[[T], T]:
        """Decorator that files the decorated object under ``name`` (default: its ``__name__``)."""

        def add(obj: T) -> T:
            key = name or obj.__name__
            if key in self._entries and self._entries[key] is not obj:
                raise ValueError(f"{self.kind} {key!r} is registered twice")
            self._entries[key] = obj
            return obj

        return add

    def get(self, name: str) -> T:
        """Returns the entry called ``name`` or raises a user error listing the known ones."""
        self._load()
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(self.list()) or "none"
            raise EdgeclsError(
                f"unknown {self.kind} {name!r}", f"choose one of: {known}"
            ) from None

    def list(self, pattern: str = "*") -> list[str]:
        """Sorted names matching a shell-style wildcard pattern."""
        self._load()
        return sorted(n for n in self._entries if fnmatch.fnmatchcase(n, pattern))

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries
