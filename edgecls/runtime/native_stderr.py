"""Filters what native code (C++ loggers of LiteRT, TensorFlow's converter) writes
straight to file descriptor 2, where Python's logging cannot reach it."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def native_stderr_filtered(drop: Callable[[bytes], bool]) -> Iterator[None]:
    """Captures file descriptor 2 during the call and passes on every line for which
    ``drop`` is false. Python's ``sys.stderr`` is flushed on both sides, so nothing of
    ours is reordered or lost; exceptions still propagate with their messages."""
    try:
        saved = os.dup(2)
    except OSError:  # no usable stderr: nothing to filter
        yield
        return
    sys.stderr.flush()
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [line for line in captured.read().splitlines(keepends=True) if not drop(line)]
            if kept:
                os.write(2, b"".join(kept))
