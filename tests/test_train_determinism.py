"""`--deterministic` (config key ``deterministic``): two runs with the same data and
options give byte-identical histories, weights and test metrics.

The trainings run in a fresh interpreter (tests/helpers/repeat_training.py) because
TensorFlow keeps op determinism on for the rest of a process once it is turned on.

Without the flag, the same two runs (same seed, so same initial weights, split and
augmentation seeds) are not guaranteed identical: the augmentation map runs in
parallel threads that draw from one random state, and multi-threaded float reductions
may add in a different order. Whether they differ depends on thread scheduling, so the
test trains only the two runs with the flag; benchmarks/train_determinism.py measures
how far runs without it drift apart and what the flag costs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.images import write_image_folder

TESTS = Path(__file__).resolve().parent


@pytest.mark.timeout(660)  # two trainings in one fresh process; its own limit is 600 s
def test_deterministic_runs_are_byte_identical(tmp_path: Path) -> None:
    data = write_image_folder(tmp_path / "images", {"circle_r": 24, "square_g": 24, "circle_b": 24})
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3",
           "PYTHONPATH": os.pathsep.join([str(TESTS), str(TESTS.parent), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "helpers.repeat_training", str(data), str(tmp_path / "runs")],
                          capture_output=True, text=True, env=env, timeout=600, cwd=TESTS)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = json.loads(proc.stdout.strip().splitlines()[-1])
    assert runs["det1"] == runs["det2"]
    assert len(runs["det1"]["history"]) == 2 and all(row[3] for row in runs["det1"]["history"])
