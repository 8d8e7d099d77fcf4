"""The Python API behind ``edgecls explain``, usable from a notebook::

    from edgecls.explain import explain
    report = explain("runs/flowers", ["tulip.jpg"], compare="runs/flowers/export/model_int8.tflite")
    report.results[0].difference          # rank correlation, top-20% overlap per class
    report.panel(0)                       # BGR image: original, heatmaps, both models
    save_report(report, "explained/")     # PNG per image, explanations.json, contact sheet (output.py)

MODEL is a training run (its float ``best.keras``), a ``.keras`` file, or any artifact
(``.tflite``, ``.onnx``, ``.xml``) run through the TensorFlow-free runtime.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgecls.errors import ConfigError, DataError, ModelError
from edgecls.explain.agnostic import AGNOSTIC_METHODS, explain_agnostic
from edgecls.explain.compare import HeatmapDifference, heatmap_difference
from edgecls.explain.gradcam import GRADIENT_METHODS, KerasModel, explain_gradcam
from edgecls.explain.heatmap import Explanation, top_classes
from edgecls.explain.inputs import collect_images
from edgecls.explain.model import ExplainedModel, RuntimeModel
from edgecls.explain.occlusion import OcclusionOptions
from edgecls.explain.render import panel
from edgecls.explain.rise import RiseOptions
from edgecls.rundir import RunDir
from edgecls.runtime.classifier import read_labels
from edgecls.runtime.preprocess import read_image_bgr

METHODS = ("auto", *GRADIENT_METHODS, *AGNOSTIC_METHODS)

ModelLike = str | Path | ExplainedModel


@dataclass
class ExplainSettings:
    """What to explain and how.

    Attributes:
        method: "auto" (Grad-CAM for Keras models, RISE for artifacts and for comparisons
            that involve one), "gradcam", "gradcam++", "rise" or "occlusion".
        class_name: explain this class instead of the predicted ones.
        top_k: explain the k most probable classes (ignored with ``class_name``).
        rise, occlusion: options of the model-agnostic methods.
    """

    method: str = "auto"
    class_name: str | None = None
    top_k: int = 1
    rise: RiseOptions = field(default_factory=RiseOptions)
    occlusion: OcclusionOptions = field(default_factory=OcclusionOptions)


@dataclass
class ImageResult:
    """Explanations of one image by the model (and the compared model)."""

    path: Path | None
    image: np.ndarray  # BGR, as read
    explanations: list[Explanation]
    compared: list[Explanation] = field(default_factory=list)
    differences: list[HeatmapDifference] = field(default_factory=list)
    top1: str = ""
    compared_top1: str | None = None

    @property
    def top1_changed(self) -> bool | None:
        """Whether the two models disagree on the top-1 class (None without a comparison)."""
        return None if self.compared_top1 is None else self.compared_top1 != self.top1


@dataclass
class ExplainReport:
    """All explained images, ready to render or save (see ``edgecls.explain.output``)."""

    model: ExplainedModel
    method: str
    results: list[ImageResult]
    compared_model: ExplainedModel | None = None
    skipped: list[dict[str, str]] = field(default_factory=list)
    from_folder: bool = False

    def panel(self, index: int) -> np.ndarray:
        """The picture of one result: original and heatmaps, one row per model (BGR)."""
        result = self.results[index]
        rows = [(self.model.name, result.explanations)]
        if self.compared_model is not None:
            rows.append((self.compared_model.name, result.compared))
        return panel(result.image, rows, result.differences)


def load_model(path: ModelLike, labels: str | Path | Sequence[str] | None = None,
               threads: int | None = None) -> ExplainedModel:
    """A run directory or ``.keras`` file as a ``KerasModel``; an artifact as a ``RuntimeModel``."""
    if isinstance(path, ExplainedModel):
        return path
    path = Path(path)
    names = read_labels(labels) if isinstance(labels, (str, Path)) else labels
    if path.is_dir():
        run = RunDir(path)
        return KerasModel.load(run.require_model(), names or run.read_labels())
    if path.suffix.lower() == ".keras":
        if not path.is_file():
            raise ModelError(f"model file {path} does not exist", "check the path")
        return KerasModel.load(path, names)
    return RuntimeModel(path, names, threads)


def resolve_method(method: str, model: ExplainedModel, other: ExplainedModel | None = None) -> str:
    """The method to use for ``model`` (and ``other``), or a ConfigError saying what works."""
    if method not in METHODS:
        raise ConfigError(f"unknown method {method!r}", f"use one of {', '.join(METHODS)}")
    models = [m for m in (model, other) if m is not None]
    if method == "auto":
        return "gradcam" if all(isinstance(m, KerasModel) for m in models) else "rise"
    for m in models:
        if method not in m.methods:
            raise ConfigError(f"{method} needs the float Keras model; {m.name} is a {m.kind} artifact",
                              "use --method rise or --method occlusion, which work on any model")
    return method


def explain(model: ModelLike, images: Sequence[str | Path | np.ndarray] | str | Path,
            settings: ExplainSettings | None = None, compare: ModelLike | None = None,
            labels: str | Path | Sequence[str] | None = None, threads: int | None = None,
            on_image: Callable[[int, int], None] | None = None) -> ExplainReport:
    """Explains images with one model, optionally beside a second one (e.g. float vs INT8).

    Args:
        model: run directory, ``.keras`` file, artifact path, or a loaded ``ExplainedModel``.
        images: image files, folders, or BGR arrays.
        settings: method, class, top-k and method options.
        compare: a second model; the same classes are explained with the same method
            (and the same RISE masks), and their heatmaps compared.
        labels: labels for models without embedded labels.
        threads: inference threads for artifacts.
        on_image: called with (done, total) after each image (progress bars).

    Raises:
        EdgeclsError: unknown class or method, unusable model, unreadable image.
    """
    settings = settings or ExplainSettings()
    main = load_model(model, labels, threads)
    other = load_model(compare, labels, threads) if compare is not None else None
    if other is not None and other.labels != main.labels:
        raise ModelError(f"{main.name} and {other.name} have different classes",
                         "compare two exports of the same run (e.g. float and INT8)")
    method = resolve_method(settings.method, main, other)
    report = ExplainReport(main, method, [], other)
    items = _image_items(images, report)
    for done, (path, image, skippable) in enumerate(items, start=1):
        if image is None:
            image = _read(path, skippable, report)  # type: ignore[arg-type]
        if image is not None:
            report.results.append(_explain_one(main, other, path, image, method, settings))
        if on_image:
            on_image(done, len(items))
    return report


def explain_image(model: ExplainedModel, image_bgr: np.ndarray, classes: list[int], method: str,
                  settings: ExplainSettings | None = None) -> list[Explanation]:
    """Heatmaps of ``classes`` for one image with the named method."""
    settings = settings or ExplainSettings()
    if method in GRADIENT_METHODS:
        return explain_gradcam(model, image_bgr, classes, method)  # type: ignore[arg-type]
    options = settings.rise if method == "rise" else settings.occlusion
    return explain_agnostic(model, image_bgr, classes, method, options)


def _explain_one(main: ExplainedModel, other: ExplainedModel | None, path: Path | None,
                 image: np.ndarray, method: str, settings: ExplainSettings) -> ImageResult:
    probabilities = main.predict(main.prepare(image)[None])[0]
    classes = [main.class_index(settings.class_name)] if settings.class_name \
        else top_classes(probabilities, settings.top_k)
    result = ImageResult(path, image, explain_image(main, image, classes, method, settings),
                         top1=main.labels[int(np.argmax(probabilities))])
    if other is not None:
        other_probabilities = other.predict(other.prepare(image)[None])[0]
        result.compared_top1 = other.labels[int(np.argmax(other_probabilities))]
        result.compared = explain_image(other, image, classes, method, settings)
        result.differences = [heatmap_difference(a.heatmap, b.heatmap)
                              for a, b in zip(result.explanations, result.compared)]
    return result


def _image_items(images: Sequence[str | Path | np.ndarray] | str | Path,
                 report: ExplainReport) -> list[tuple[Path | None, np.ndarray | None, bool]]:
    """(path, array, skippable) per image: arrays as given, paths and folders expanded."""
    if isinstance(images, (str, Path, np.ndarray)):
        images = [images]  # type: ignore[list-item]
    arrays = [(None, i, False) for i in images if isinstance(i, np.ndarray)]
    paths = [p for p in images if not isinstance(p, np.ndarray)]
    inputs = collect_images(paths) if paths else []
    report.from_folder = any(i.in_folder for i in inputs)
    return arrays + [(i.path, None, i.in_folder) for i in inputs]


def _read(path: Path, skippable: bool, report: ExplainReport) -> np.ndarray | None:
    """Reads an image; an unreadable one inside a folder is skipped, a named one is an error."""
    try:
        return read_image_bgr(path)
    except DataError as error:
        if not skippable:
            raise
        report.skipped.append({"image": str(path), "reason": error.message})
        return None
