"""Subprocess entry point: ``python -m edgecls.bench.worker SPEC.json RESULT.json``.

Measures one model (``measure.measure``) in a process of its own and writes either
``{"ok": true, ...}`` or ``{"ok": false, "error": ...}``. Any failure, including one
that kills the process, leaves the other models of a bench unaffected.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from edgecls.atomic import write_text_atomic
from edgecls.bench.measure import MeasureSpec, StageError, measure


def main(argv: list[str]) -> int:
    """Reads the spec, measures, writes the result; returns the process exit code."""
    spec_path, result_path = Path(argv[0]), Path(argv[1])
    spec = MeasureSpec(**json.loads(spec_path.read_text(encoding="utf-8")))
    try:
        result = {"ok": True, **measure(spec)}
    except StageError as exc:
        result = {"ok": False, "stage": exc.stage, "error": str(exc)}
    write_text_atomic(result_path, json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
