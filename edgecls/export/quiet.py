"""Keeps the converters' and quantizers' own chatter off the user's terminal.

TensorFlow's TFLite converter prints its settings from C++ straight to the process's
standard error, tf2onnx warns through ``logging`` about defaults we chose on purpose,
and NNCF logs every step of accuracy control at INFO (hundreds of lines). None of it
tells a user anything the export table does not; errors still arrive as exceptions.
"""

from __future__ import annotations

import logging
import os
import sys
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def logger_level(name: str | None, level: int) -> Iterator[None]:
    """Sets the ``name`` logger (None: the root logger) to ``level`` for one call: NNCF logs
    every statistics pass at INFO, and ONNX Runtime's quantization debug helpers report
    expected misses through ``logging.error`` on the root logger."""
    logger = logging.getLogger(name)
    previous = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(previous)


@contextmanager
def native_stderr_muted() -> Iterator[None]:
    """Drops what native code writes to file descriptor 2 during the call. Python's
    ``sys.stderr`` is flushed first, so nothing of ours is lost; exceptions still
    propagate with their messages."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "wb") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
