"""``explain_images``: heatmaps of what a model looks at (``edgecls explain``), shown
inline in a notebook as the same panels the command writes as PNGs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgecls.api import html
from edgecls.formats import format_for_path

MAX_INLINE_PANELS = 12  # a notebook cell stays readable; all panels are in the report


@dataclass
class Explanations:
    """The explained images (``report``: ``edgecls.explain.ExplainReport``) and, when
    saved, the path of ``explanations.json``."""

    report: Any
    json_path: Path | None = None

    def panel(self, index: int) -> Any:
        """The BGR picture of one image: original, heatmaps, one row per model."""
        return self.report.panel(index)

    def to_dict(self) -> dict[str, Any]:
        """What ``explanations.json`` holds."""
        from edgecls.explain.output import png_names, report_dict

        return report_dict(self.report, png_names(self.report))

    def _repr_html_(self) -> str:
        from edgecls.explain.render import encode_png

        results = self.report.results[:MAX_INLINE_PANELS]
        panels = [html.png(encode_png(self.report.panel(i)), f"explanation {i}") for i in range(len(results))]
        more = len(self.report.results) - len(results)
        notes = [html.note(f"{s['image']}: skipped: {s['reason']}") for s in self.report.skipped]
        if more > 0:
            notes.append(html.note(f"and {more} more image(s): see .report or save them with out="))
        return html.STYLE + "<br/>".join(panels) + "".join(notes)


def explain_images(model: str | Path, images: Any, out: str | Path | None = None, method: str = "auto",
                   class_name: str | None = None, top_k: int = 1, compare: str | Path | None = None,
                   masks: int | None = None, grid: int | None = None, batch_size: int | None = None,
                   window: float | None = None, seed: int | None = None, labels: str | Path | None = None,
                   threads: int | None = None, progress: bool = True) -> Explanations:
    """Explains a classifier's decisions with heatmaps (``edgecls explain``).

    Args:
        model: a run directory (its float model, Grad-CAM), a ``.keras`` file or an
            artifact (``.tflite``, ``.onnx``, ``.xml``: RISE or occlusion, no TensorFlow).
        images: image files, folders, or BGR arrays.
        out: also write the PNGs and ``explanations.json`` into this folder.
        method: ``auto``, ``gradcam``, ``gradcam++``, ``rise`` or ``occlusion``.
        class_name: explain this class instead of the predicted ones.
        top_k: explain the k most probable classes.
        compare: a second model (e.g. the INT8 artifact of the same run).
        masks: RISE's number of masks (None: the ``RiseOptions`` default, as for the others).
        grid: RISE's mask grid.
        seed: RISE's random seed.
        window: occlusion's window (None: the ``OcclusionOptions`` default).
        batch_size: images per inference batch, for RISE and occlusion.
        labels: labels file for models without embedded labels.
        threads: inference threads for artifacts.
        progress: draw a progress bar.
    """
    from edgecls.explain import ExplainSettings, OcclusionOptions, RiseOptions, explain, save_report
    from edgecls.present.progress import count_bar

    if any(path is not None and format_for_path(Path(str(path))) is None
           for path in (model, compare)):  # a run or .keras model: TensorFlow, muted
        from edgecls.present.tf_import import import_tensorflow_muted

        import_tensorflow_muted()
    rise = _given(masks=masks, grid=grid, batch_size=batch_size, seed=seed)
    occlusion = _given(window=window, batch_size=batch_size)
    settings = ExplainSettings(method=method, class_name=class_name, top_k=top_k, rise=RiseOptions(**rise),
                               occlusion=OcclusionOptions(**occlusion))
    with count_bar("explaining", enabled=progress) as on_image:
        report = explain(model, [images] if isinstance(images, (str, Path)) else images, settings,
                         compare=compare, labels=labels, threads=threads, on_image=on_image)
    return Explanations(report, save_report(report, out) if out is not None else None)


def _given(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}
