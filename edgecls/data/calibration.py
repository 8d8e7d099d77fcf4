"""Calibration images for INT8 export: a class-balanced sample of the training split,
or the images of a folder, prepared exactly like inference (``load_arrays``).

Presets live in ``calibration/*.yaml`` (how many images, how chosen, which method per
format); ``--calibration`` takes a preset name, a preset YAML file or an image folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgecls.config import is_yaml_name, load_config
from edgecls.data.pipeline import load_arrays
from edgecls.data.split import Split
from edgecls.errors import ConfigError, DataError
from edgecls.formats import IMAGE_SUFFIXES, is_image
from edgecls.resources import resource_dir
from edgecls.runtime.preprocess import prepare, read_image_bgr

PRESET_DIR = resource_dir("calibration")
DEFAULT_PRESET = "default"
SELECTIONS = ("balanced", "random")


@dataclass
class CalibrationPreset:
    """How calibration images are chosen and which method each format uses.

    Attributes:
        count: number of calibration images.
        selection: "balanced" (equal share per class) or "random".
        seed: seed of the sample.
        methods: format -> calibration method ("nncf" | "nncf_accuracy_control" |
            "minmax" | "entropy" | "percentile" for onnx; "default" | "accuracy_control"
            for openvino; "default" for tflite).
        remedy_count: images used by the "more calibration images" remedy.
    """

    count: int = 300
    selection: str = "balanced"
    seed: int = 0
    methods: dict[str, str] = field(default_factory=lambda: {
        "tflite": "default", "onnx": "minmax", "openvino": "default"})
    remedy_count: int = 1000
    name: str = DEFAULT_PRESET

    def method(self, fmt: str) -> str:
        """The calibration method of format ``fmt`` ("default" when unset)."""
        return self.methods.get(fmt, "default")


def list_presets() -> list[str]:
    """Names of the presets shipped in ``calibration/``."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def load_preset(name_or_path: str | Path | None) -> CalibrationPreset:
    """A preset by name (``calibration/NAME.yaml``) or YAML path; None is the default."""
    text = str(name_or_path or DEFAULT_PRESET)
    path = Path(text) if is_yaml_name(text) else PRESET_DIR / f"{text}.yaml"
    if not path.is_file():
        known = ", ".join(list_presets()) or "none"
        raise ConfigError(f"calibration preset {text!r} not found",
                          f"use a folder of images, a YAML file, or one of: {known}")
    preset = load_config(CalibrationPreset, path, {"name": path.stem})
    if preset.selection not in SELECTIONS:
        raise ConfigError(f"{path}: unknown selection {preset.selection!r}",
                          f"choose one of: {', '.join(SELECTIONS)}")
    if preset.count < 1:
        raise ConfigError(f"{path}: count must be at least 1")
    return preset


def sample_items(items: list[tuple[Path, int]], count: int, selection: str = "balanced",
                 seed: int = 0) -> list[tuple[Path, int]]:
    """A deterministic sample of at most ``count`` items.

    ``"balanced"`` takes them round-robin over classes in a seeded random order,
    ``"random"`` in that order alone, ``"even"`` evenly spaced in the given order
    (no randomness: structured pruning's calibration images).
    """
    if selection == "even":
        if len(items) <= count:
            return list(items)
        return [items[int(i)] for i in np.linspace(0, len(items) - 1, count)]
    rng = np.random.default_rng(seed)
    order = [items[i] for i in rng.permutation(len(items))]
    if selection == "random" or count >= len(order):
        return order[:count]
    by_class: dict[int, list[tuple[Path, int]]] = {}
    for item in order:
        by_class.setdefault(item[1], []).append(item)
    queues = [by_class[k] for k in sorted(by_class)]
    chosen: list[tuple[Path, int]] = []
    depth = 0
    while len(chosen) < count:
        chosen.extend(q[depth] for q in queues if depth < len(q))
        depth += 1
    return chosen[:count]


def split_calibration(split: Split, size: tuple[int, int], preset: CalibrationPreset,
                      count: int | None = None) -> np.ndarray:
    """Prepared uint8 (N, h, w, 3) RGB images sampled from the training split."""
    items = sample_items(split.items("train"), count or preset.count, preset.selection,
                         preset.seed)
    if not items:
        raise DataError("the run's training split is empty: nothing to calibrate on",
                        "pass --calibration DIR with representative images")
    images, _ = load_arrays(items, size)
    return images


def folder_calibration(folder: Path, size: tuple[int, int], count: int,
                       seed: int = 0) -> np.ndarray:
    """Prepared float32 images of a folder (searched recursively); unreadable files are skipped."""
    files = sorted(p for p in folder.rglob("*") if is_image(p))
    rng = np.random.default_rng(seed)
    images = []
    for index in rng.permutation(len(files)):
        try:
            images.append(prepare(read_image_bgr(files[index]), size))
        except DataError:
            continue
        if len(images) == count:
            break
    if not images:
        raise DataError(f"calibration folder {folder} holds no readable images",
                        f"put JPEG/PNG images ({', '.join(IMAGE_SUFFIXES)}) from your "
                        "training data in it, or pass a preset name")
    return np.stack(images).astype(np.float32)


def calibration_images(source: str | Path | None, split: Split | None, size: tuple[int, int],
                       ) -> tuple[np.ndarray, CalibrationPreset, str]:
    """Resolves ``--calibration``: returns (images, preset, description of the source)."""
    if source is not None and Path(source).is_dir():
        preset = load_preset(None)
        images = folder_calibration(Path(source), size, preset.count, preset.seed)
        return images, preset, f"folder {source}"
    preset = load_preset(source)
    if split is None:
        raise DataError("the run has no split.json to draw calibration images from",
                        "pass --calibration DIR with representative images")
    images = split_calibration(split, size, preset)
    return images, preset, f"preset {preset.name}: {len(images)} {preset.selection} train images"
