"""What quantization changed: held-out images whose top-1 differs between the float
model and an INT8 artifact, each with both models' heatmaps, as a self-contained HTML
page (``edgecls export`` writes it beside manifest.json).

Both models are explained with RISE and the same masks, for the float model's top-1
class and the artifact's, so the heatmaps differ only because the models do.

Which images changed comes from the export's own validation (``predictions.json`` beside
the artifacts, ``export.predictions``) when it holds predictions of these very artifact
bytes on the run's held-out images; only otherwise are the models run over them again.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

import numpy as np

from edgecls.atomic import write_text_atomic
from edgecls.errors import DataError
from edgecls.data.pipeline import load_arrays
from edgecls.data.split import HELD_OUT, Split
from edgecls.explain.api import ExplainSettings, ImageResult, explain_image
from edgecls.explain.compare import heatmap_difference
from edgecls.explain.gradcam import KerasModel
from edgecls.explain.model import ExplainedModel, RuntimeModel
from edgecls.explain.render import encode_png, panel
from edgecls.explain.rise import RiseOptions
from edgecls.export.predictions import HeldOutPredictions, load_predictions
from edgecls.rundir import ExportDir, RunDir
from edgecls.runtime.preprocess import read_image_bgr

SHOWN_PER_ARTIFACT = 4
CHANGES_RISE = RiseOptions(masks=250, batch_size=25)  # ~2 x 250 inferences per image shown
PREDICT_CHUNK = 64


@dataclass
class ArtifactChanges:
    """The held-out images whose top-1 an artifact changed, explained (at most a few)."""

    artifact: Path
    total: int
    changed: int
    results: list[ImageResult] = field(default_factory=list)
    from_export: bool = False  # the top-1 changes came from the export's predictions.json
    tuned: int = 0  # held-out images that tuned the artifact (not compared, as in the gate)


@dataclass
class Top1Changes:
    """An artifact's top-1 against the float model's on the held-out images.

    Attributes:
        float_top1: the float model's top-1 of every held-out image.
        top1: the artifact's top-1 (-1 where it was not compared).
        changed: indices whose top-1 differs, the largest float-confidence loss first.
    """

    float_top1: np.ndarray
    top1: np.ndarray
    changed: np.ndarray

    @property
    def compared(self) -> int:
        """How many held-out images the artifact was compared on."""
        return int(np.sum(self.top1 >= 0))


def changed_top1(float_probs: np.ndarray, artifact_probs: np.ndarray) -> np.ndarray:
    """Indices of images whose top-1 differs, the largest float-confidence loss first."""
    return _changes(float_probs, artifact_probs).changed


def top1_changes(float_top1: np.ndarray, float_confidence: np.ndarray, top1: np.ndarray,
                 kept_confidence: np.ndarray) -> Top1Changes:
    """Changes from top-1 classes alone: ``float_confidence`` is the float model's probability
    of its top-1 and ``kept_confidence`` the artifact's probability of that same class;
    ``top1`` is -1 for images the artifact was not compared on."""
    changed = np.flatnonzero((top1 >= 0) & (top1 != float_top1))
    loss = float_confidence[changed] - kept_confidence[changed]
    return Top1Changes(float_top1, top1, changed[np.argsort(-loss, kind="stable")])


def _changes(float_probs: np.ndarray, artifact_probs: np.ndarray) -> Top1Changes:
    float_top1 = float_probs.argmax(axis=1)
    rows = np.arange(len(float_top1))
    return top1_changes(float_top1, float_probs[rows, float_top1], artifact_probs.argmax(axis=1),
                        artifact_probs[rows, float_top1])


def explain_change(float_model: ExplainedModel, artifact: ExplainedModel, path: Path,
                   classes: list[int], rise: RiseOptions = CHANGES_RISE) -> ImageResult:
    """Both models' RISE heatmaps of ``classes`` (float top-1, artifact top-1) for one image."""
    image = read_image_bgr(path)
    result = ImageResult(path, image, explain_image(float_model, image, classes, "rise", _settings(rise)),
                         top1=float_model.labels[classes[0]])
    result.compared = explain_image(artifact, image, classes, "rise", _settings(rise))
    result.compared_top1 = artifact.labels[classes[-1]]
    result.differences = [heatmap_difference(a.heatmap, b.heatmap)
                          for a, b in zip(result.explanations, result.compared)]
    return result


def quantization_changes(run_dir: str | Path, artifacts: list[Path], shown: int = SHOWN_PER_ARTIFACT,
                         threads: int | None = None, reuse: bool = True) -> list[ArtifactChanges]:
    """For each artifact: how many held-out images (val + test, as the export gate compares)
    changed top-1, and the first ``shown`` explained.

    With ``reuse``, the changes come from ``predictions.json`` beside each artifact when it
    was written for these artifact bytes and these held-out images; the models run over the
    held-out images only for the artifacts it does not cover."""
    run = RunDir(Path(run_dir))
    float_model = KerasModel.load(run.require_model(), run.read_labels())
    split = Split.load(run.split)
    items = [item for name in HELD_OUT if name in split.subsets for item in split.items(name)]
    rerun = _Rerun(float_model, items)
    found = []
    for path in artifacts:
        artifact = RuntimeModel(path, threads=threads)
        stored = _stored(Path(path), split.root, items) if reuse else None
        changes = stored or rerun.changes(artifact)
        entry = ArtifactChanges(Path(path), changes.compared, len(changes.changed),
                                from_export=stored is not None,
                                tuned=len(changes.top1) - changes.compared)
        for i in changes.changed[:shown]:
            classes = [int(changes.float_top1[i]), int(changes.top1[i])]
            entry.results.append(explain_change(float_model, artifact, items[i][0], classes))
        found.append(entry)
    return found


def _stored(artifact: Path, root: Path, items: list[tuple[Path, int]]) -> Top1Changes | None:
    """The export's own top-1 changes of ``artifact``, if its predictions.json covers it."""
    predictions: HeldOutPredictions | None = load_predictions(ExportDir(artifact.parent).predictions)
    if predictions is None or not predictions.same_images(root, items):
        return None
    stored = predictions.for_artifact(artifact)
    if stored is None:
        return None
    return top1_changes(predictions.float_top1, predictions.float_top1_probability, stored.top1,
                        stored.float_top1_probability)


class _Rerun:
    """Runs the models over the held-out images, the float model once, when nothing is stored."""

    def __init__(self, float_model: KerasModel, items: list[tuple[Path, int]]) -> None:
        self._float_model, self._items = float_model, items
        self._batch: np.ndarray | None = None
        self._float_probs: np.ndarray | None = None

    def changes(self, artifact: RuntimeModel) -> Top1Changes:
        if self._batch is None or self._float_probs is None:
            images, _ = load_arrays(self._items, self._float_model.input_size)
            self._batch = images.astype(np.float32)
            self._float_probs = self._float_model.predict(self._batch)
        batch = self._batch
        probs = np.concatenate([artifact.predict(batch[i:i + PREDICT_CHUNK])
                                for i in range(0, len(batch), PREDICT_CHUNK)])
        return _changes(self._float_probs, probs)


def changes_html(changes: list[ArtifactChanges], title: str = "What quantization changed") -> str:
    """A self-contained page (inline CSS, PNGs as data URIs)."""
    sections = [f"<h1>{escape(title)}</h1>{_NOTE}"]
    for entry in changes:
        tuned = (f" (the other {entry.tuned} held-out images tuned its accuracy-controlled "
                 "quantization)" if entry.tuned else "")
        sections.append(f"<h2>{escape(entry.artifact.name)}: {entry.changed} of {entry.total} "
                        f"changed top-1{tuned}</h2>")
        for result in entry.results:
            rows = [("float", result.explanations), (entry.artifact.name, result.compared)]
            data = base64.b64encode(encode_png(panel(result.image, rows, result.differences))).decode()
            caption = f"{result.path.name}: float {result.top1} → {result.compared_top1}"
            sections.append(f"<figure><img alt='{escape(caption)}' src='data:image/png;base64,{data}'>"
                            f"<figcaption>{escape(caption)}</figcaption></figure>")
    return (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>{escape(title)}</title>"
            f"<style>{_CSS}</style></head><body>\n{_MARKER}\n" + "\n".join(sections) + "\n</body></html>\n")


def embed_changes(page: str, changes_pages: list[Path]) -> str:
    """``page`` (e.g. the bench report) with the body of each changes.html before ``</body>``.

    Raises:
        DataError: a file is missing or was not written by ``edgecls export``.
    """
    sections = []
    for path in changes_pages:
        text = Path(path).read_text(errors="replace") if Path(path).is_file() else ""
        if _MARKER not in text:
            raise DataError(f"{path} is not a changes.html page of `edgecls export`",
                            "pass the changes.html that `edgecls export` wrote beside manifest.json")
        body = text.split(_MARKER, 1)[1].rsplit("</body>", 1)[0]
        body = body.replace("<h2>", "<h3>").replace("</h2>", "</h3>").replace("<h1>", "<h2>").replace("</h1>", "</h2>")
        sections.append(f"<section class='explain'><style>{_CSS_EMBEDDED}</style>{body}</section>")
    head, tail = page.rsplit("</body>", 1)
    return head + "\n".join(sections) + "</body>" + tail


def write_changes_page(run_dir: str | Path, artifacts: list[Path], out_html: str | Path,
                       threads: int | None = None, reuse: bool = True) -> list[ArtifactChanges]:
    """Finds, explains and writes the top-1 changes of ``artifacts`` to ``out_html`` (the
    changes from the export's ``predictions.json`` when it covers them, see
    ``quantization_changes``)."""
    changes = quantization_changes(run_dir, artifacts, threads=threads, reuse=reuse)
    write_text_atomic(out_html, changes_html(changes))
    return changes


def _settings(rise: RiseOptions) -> ExplainSettings:
    return ExplainSettings(method="rise", rise=rise)


_MARKER = "<!-- edgecls explain changes -->"
_CSS_EMBEDDED = "section.explain img { max-width: 100%; height: auto; } section.explain figcaption { color: #555; }"

_NOTE = ("<p class='note'>Held-out images (val + test) whose top-1 differs between the float model and each "
         "artifact. First row: float model; second row: the artifact; heatmaps by RISE with the same "
         "masks, for the float top-1 class and the artifact's top-1 class; rank correlation and "
         "top-20% overlap below each.</p>")

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5rem; color: #222; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.1rem; margin-top: 2rem; }
figure { margin: 0.5rem 0 1.2rem; } img { max-width: 100%; height: auto; }
figcaption, .note { color: #555; font-size: 0.85rem; max-width: 60rem; }
"""
