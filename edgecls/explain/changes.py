"""What quantization changed: held-out images whose top-1 differs between the float
model and an INT8 artifact, each with both models' heatmaps, as a self-contained HTML
page (``edgecls export`` writes it beside manifest.json).

Both models are explained with RISE and the same masks, for the float model's top-1
class and the artifact's, so the heatmaps differ only because the models do.
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
from edgecls.data.split import Split
from edgecls.explain.api import ExplainSettings, ImageResult, explain_image
from edgecls.explain.compare import heatmap_difference
from edgecls.explain.gradcam import KerasModel
from edgecls.explain.model import ExplainedModel, RuntimeModel
from edgecls.explain.render import encode_png, panel
from edgecls.explain.rise import RiseOptions
from edgecls.rundir import RunDir
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


def changed_top1(float_probs: np.ndarray, artifact_probs: np.ndarray) -> np.ndarray:
    """Indices of images whose top-1 differs, the largest float-confidence loss first."""
    float_top1, artifact_top1 = float_probs.argmax(axis=1), artifact_probs.argmax(axis=1)
    changed = np.flatnonzero(float_top1 != artifact_top1)
    loss = float_probs[changed, float_top1[changed]] - artifact_probs[changed, float_top1[changed]]
    return changed[np.argsort(-loss, kind="stable")]


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
                         threads: int | None = None) -> list[ArtifactChanges]:
    """For each artifact: how many held-out images (val + test, as the export gate compares)
    changed top-1, and the first ``shown`` explained."""
    run = RunDir(Path(run_dir))
    float_model = KerasModel.load(run.require_model(), run.read_labels())
    split = Split.load(run.split)
    items = [item for name in ("val", "test") if name in split.subsets for item in split.items(name)]
    images, _ = load_arrays(items, float_model.input_size)
    batch = images.astype(np.float32)
    float_probs = float_model.predict(batch)
    found = []
    for path in artifacts:
        artifact = RuntimeModel(path, threads=threads)
        probs = np.concatenate([artifact.predict(batch[i:i + PREDICT_CHUNK])
                                for i in range(0, len(batch), PREDICT_CHUNK)])
        changed = changed_top1(float_probs, probs)
        entry = ArtifactChanges(Path(path), len(items), len(changed))
        for i in changed[:shown]:
            classes = [int(float_probs[i].argmax()), int(probs[i].argmax())]
            entry.results.append(explain_change(float_model, artifact, items[i][0], classes))
        found.append(entry)
    return found


def changes_html(changes: list[ArtifactChanges], title: str = "What quantization changed") -> str:
    """A self-contained page (inline CSS, PNGs as data URIs)."""
    sections = [f"<h1>{escape(title)}</h1>{_NOTE}"]
    for entry in changes:
        sections.append(f"<h2>{escape(entry.artifact.name)}: {entry.changed} of {entry.total} "
                        f"changed top-1</h2>")
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
                       threads: int | None = None) -> list[ArtifactChanges]:
    """Finds, explains and writes the top-1 changes of ``artifacts`` to ``out_html``."""
    changes = quantization_changes(run_dir, artifacts, threads=threads)
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
