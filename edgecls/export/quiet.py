"""Keeps the converters' and quantizers' own chatter off the user's terminal.

TensorFlow's TFLite converter prints its settings from C++ straight to the process's
standard error, tf2onnx warns through ``logging`` about defaults we chose on purpose,
and NNCF logs every step of accuracy control at INFO (hundreds of lines). None of it
tells a user anything the export table does not; errors still arrive as exceptions.
"""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager, contextmanager
from typing import Iterator

from edgecls.runtime.native_stderr import native_stderr_filtered


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


def native_stderr_muted() -> AbstractContextManager[None]:
    """Drops everything native code writes to file descriptor 2 during the call;
    exceptions still propagate with their messages."""
    return native_stderr_filtered(lambda line: True)
