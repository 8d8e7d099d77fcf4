"""User-facing errors: the CLI prints them as one line with a hint and exits 2."""

from __future__ import annotations


class EdgeclsError(Exception):
    """An error caused by the user's input, not by a bug.

    Args:
        message: what is wrong, in one sentence.
        hint: what to do about it.
    """

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"


class DataError(EdgeclsError):
    """The dataset is missing, empty, unreadable or unusable."""


class ModelError(EdgeclsError):
    """A model name, weights file or model artifact is unusable."""


class ConfigError(EdgeclsError):
    """A configuration file or option is invalid."""


class SourceError(EdgeclsError):
    """A camera, video or image source cannot be opened or read."""


class GateError(EdgeclsError):
    """An exported artifact lost more accuracy than allowed."""
