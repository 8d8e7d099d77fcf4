"""Shared test fixtures: tiny generated image folders and the optional shared data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers.images import write_image_folder

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
