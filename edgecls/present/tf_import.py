"""Importing TensorFlow without its start-up chatter on the terminal or in a notebook."""

from __future__ import annotations

import os
import sys


def import_tensorflow_quietly() -> None:
    """Imports TensorFlow with the C-level stderr muted: its import prints absl start-up
    lines that TF_CPP_MIN_LOG_LEVEL does not reach. Import errors still surface (the
    command reports a missing TensorFlow itself, with a hint)."""
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL") != "3" or "tensorflow" in sys.modules:
        return
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    sys.stderr.flush()
    os.dup2(devnull, 2)
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        pass
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_tensorflow_muted() -> None:
    """What the CLI does for every command, for the Python API: TensorFlow's C++ start-up
    lines off (unless the user set ``TF_CPP_MIN_LOG_LEVEL``), then the muted import."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import_tensorflow_quietly()
