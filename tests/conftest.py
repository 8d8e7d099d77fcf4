"""Shared test fixtures: tiny generated image folders and the optional shared data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers.export import Prepared, prepare_run
from helpers.images import write_image_folder
from helpers.runs import make_run

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


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


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trained tiny run directory (tests/helpers/runs.py ``make_run``), once per module."""
    return make_run(tmp_path_factory.mktemp("export_run"))


@pytest.fixture(scope="module")
def prepared(tiny_run: Path) -> Prepared:
    """The tiny run's float model, SavedModel, images and float probabilities."""
    return prepare_run(tiny_run)
