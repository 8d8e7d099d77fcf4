"""Train the same tiny run twice with ``deterministic`` in one fresh process (TensorFlow's
op determinism stays on for the rest of a process once turned on) and fingerprint each
run. Usage (prints one JSON object)::

    python -m helpers.repeat_training DATA OUT_ROOT
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from edgecls.rundir import RunDir
from edgecls.train.checkpoint import HISTORY_COLUMNS, read_history

TIMING_KEYS = {"seconds"}
PATH_KEYS = {"run", "model"}


def fingerprint(run_root: Path) -> dict[str, Any]:
    """What must match between two identical runs: the history (without timings), the
    bytes of every weight of the best and last models, and the test metrics (without
    the run's own paths)."""
    import keras

    run = RunDir(run_root)
    history = [[row[key] for key in HISTORY_COLUMNS if key not in TIMING_KEYS]
               for row in read_history(run)]
    weights = {}
    for name, path in (("best", run.best_model), ("last", run.last_checkpoint)):
        digest = hashlib.sha256()
        for array in keras.saving.load_model(path, compile=False).get_weights():
            digest.update(array.tobytes())
        weights[name] = digest.hexdigest()
    metrics = {k: v for k, v in json.loads(run.metrics.read_text()).items() if k not in PATH_KEYS}
    return {"history": history, "weights": weights, "metrics": metrics}


def main(data: str, out_root: str) -> None:
    import helpers.runs  # noqa: F401  (registers the tiny CNN)
    from edgecls.train.fit import train
    from helpers.runs import tiny_config

    prints = {}
    for name in ("det1", "det2"):
        out = Path(out_root) / name
        train(tiny_config(Path(data), out, epochs=2, augment=None, deterministic=True))
        prints[name] = fingerprint(out)
    print(json.dumps(prints))


if __name__ == "__main__":
    main(*sys.argv[1:3])
