"""One small registry for models, exporters and runtime backends.

Example:
    MODELS = Registry("model")

    @MODELS.register("mobilenet_v2")
    def mobilenet_v2(...): ...

    MODELS.get("mobilenet_v2"); MODELS.list("mobilenet*")
"""

from __future__ import annotations

import fnmatch
from typing import Callable, Generic, TypeVar

from edgecls.errors import EdgeclsError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to objects (factories, classes); lists them with wildcards."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str | None = None) -> Callable[[T], T]:
        """Decorator that files the decorated object under ``name`` (default: its ``__name__``)."""

        def add(obj: T) -> T:
            key = name or getattr(obj, "__name__")
            if key in self._entries and self._entries[key] is not obj:
                raise ValueError(f"{self.kind} {key!r} is registered twice")
            self._entries[key] = obj
            return obj

        return add

    def get(self, name: str) -> T:
        """Returns the entry called ``name`` or raises a user error listing the known ones."""
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(self.list()) or "none"
            raise EdgeclsError(
                f"unknown {self.kind} {name!r}", f"choose one of: {known}"
            ) from None

    def list(self, pattern: str = "*") -> list[str]:
        """Sorted names matching a shell-style wildcard pattern."""
        return sorted(n for n in self._entries if fnmatch.fnmatchcase(n, pattern))

    def __contains__(self, name: object) -> bool:
        return name in self._entries
