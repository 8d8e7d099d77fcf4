"""Shared test fixtures: tiny generated image folders and the optional shared data.

Under pytest-xdist (``-n auto``) the session fixtures that train still train once per
session: under a lock, in a folder all the workers share (``helpers.runs.build_once``).
"""

from __future__ import annotations

import gc
import os
from pathlib import Path

import pytest

from helpers.export import Prepared, prepare_run
from helpers.images import write_image_folder
from helpers.runs import TrainedRuns, build_once, tiny_config

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
MAX_WORKERS = 4


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook: unknown without the plugin
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: one worker per core this process may use, at most ``MAX_WORKERS`` (each
    worker holds its own TensorFlow, ~1 GB, and many tests start processes of their own)."""
    return max(1, min(MAX_WORKERS, len(os.sched_getaffinity(0))))


@pytest.fixture(scope="module", autouse=True)
def settled_objects():
    """After each test module, collects its garbage and freezes the objects that survive
    (TensorFlow, Keras, session fixtures: ~600 k of them), so the interpreter's full
    collections stop rescanning them for the rest of the session."""
    yield
    gc.collect()
    gc.freeze()


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    """Three classes of 20 generated 32x32 PNG images each."""
    return write_image_folder(tmp_path / "images", {"circle_r": 20, "square_g": 20, "circle_b": 20})


@pytest.fixture
def shared_dir() -> Path:
    """The read-only shared data folder; skips the test when it is absent."""
    if not SHARED.is_dir():
        pytest.skip(f"shared data folder {SHARED} is absent")
    return SHARED


@pytest.fixture(scope="session")
def session_builds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of this session shared by all its xdist workers (their temp folders' parent)."""
    base = tmp_path_factory.getbasetemp()
    return (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "session_builds"


@pytest.fixture(scope="session")
def tiny_runs(session_builds: Path) -> TrainedRuns:
    """Tiny runs trained once per session (tests/helpers/runs.py), copied per use."""
    return TrainedRuns(session_builds / "trained_runs")


@pytest.fixture(scope="module")
def tiny_run(tiny_runs: TrainedRuns, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trained tiny run directory (``make_run``'s), a fresh copy per module."""
    return tiny_runs.copy(tmp_path_factory.mktemp("export_run"))


@pytest.fixture(scope="session")
def trained_tiny_cnn(session_builds: Path) -> tuple[Path, Path]:
    """(data folder, run directory) of a 2-epoch ``tiny_config`` run from scratch through
    ``edgecls.train``, once per session: read it, do not write into it."""
    from edgecls.train.fit import train

    def build(root: Path) -> None:
        data = write_image_folder(root / "images", {"circle_r": 20, "square_g": 20, "circle_b": 20})
        train(tiny_config(data, root / "run"))

    root = build_once(session_builds / "trained_tiny_cnn", build)
    return root / "images", root / "run"


@pytest.fixture(scope="session")
def prepared(tiny_runs: TrainedRuns, tmp_path_factory: pytest.TempPathFactory) -> Prepared:
    """The tiny run's float model, SavedModel, images and float probabilities (read only)."""
    return prepare_run(tiny_runs.copy(tmp_path_factory.mktemp("prepared")))
