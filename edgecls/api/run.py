"""``Run``: one training run directory, and the verbs that act on it.

    run = edgecls.Run.train(data="flowers/", out="runs/flowers", epochs=10)
    run                                   # in a notebook: metrics, history, confusion matrix
    result = run.export(formats=["tflite"], precisions=["int8"], max_drop=1.0)
    result.verdicts, result.intervals     # the gate's verdict and 95 % interval per artifact
    run.evaluate(split="val")
    edgecls.Run("runs/flowers")           # an existing run

Each verb calls what the matching ``edgecls`` command calls, with the same defaults, and
raises the same typed errors (``edgecls.errors``) with the same messages.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from edgecls.api import html
from edgecls.api.exporting import ExportResult
from edgecls.api.results import Evaluation
from edgecls.errors import ConfigError
from edgecls.rundir import RunDir


class Run:
    """A finished (or interrupted) training run directory.

    Args:
        path: the ``--out`` folder of a training run.

    Raises:
        EdgeclsError: the folder does not exist or holds no trained model.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._dir = RunDir(self.path)
        self._dir.require_model()
        self.train_result: Any = None  # the training loop's TrainResult, after Run.train

    @classmethod
    def train(cls, data: str | Path | None = None, out: str | Path | None = None, *,
              config: str | Path | None = None, resume: bool = False, progress: bool = True,
              max_pixels: str | int | None = None, **fields: Any) -> Run:
        """Trains a classifier on a folder of labelled images (``edgecls train``).

        Args:
            data: image folder, ``DIR/<class>/*`` or ``DIR/{train,val,test}/<class>/*``.
            out: run directory: a new or empty folder, or an earlier run with ``resume``.
            config: YAML file of ``TrainConfig`` keys; ``fields`` override it.
            resume: continue the run in ``out`` from its last finished epoch.
            progress: progress bars, the model choice and the split counts (False: silent).
            max_pixels: refuse images whose header declares more pixels (e.g. ``"90M"``).
            fields: any ``edgecls.train.config.TrainConfig`` field (``model``, ``epochs``,
                ``img_size``, ``lr``, ...).

        Raises:
            EdgeclsError: bad data, options or run directory (before TensorFlow loads).
        """
        from edgecls.api.training import run_training, training_config
        from edgecls.present.notes import say
        from edgecls.runtime.image_header import set_max_pixels

        if out is None:
            raise ConfigError("no run directory given", "pass out=, e.g. out='runs/NAME'")
        set_max_pixels(max_pixels)
        train_config, choice = training_config(out, data, config, resume, **fields)
        if choice.warning:
            say(choice.warning, "warning", progress)
        given = "from img_size" if fields.get("img_size") is not None else "as saved in the run" if resume else None
        result = run_training(train_config, resume, progress,
                              on_split=None if resume or not progress else _say_split,
                              on_input_size=lambda size, source: say(
                                  f"{choice.describe()}; input {size}x{size} px ({given or source})",
                                  enabled=progress))
        if not result.chief:
            raise ConfigError(f"this process is a worker of a cluster; the chief writes the run {out}",
                              "open the run on the chief: edgecls.Run(out)")
        run = cls(result.run_dir)
        run.train_result = result
        return run

    @property
    def labels(self) -> list[str]:
        return self._dir.read_labels()

    @property
    def config(self) -> dict[str, Any]:
        """The resolved training config (``config.yaml``)."""
        return yaml.safe_load(self._dir.config.read_text()) if self._dir.config.is_file() else {}

    @property
    def metrics(self) -> dict[str, Any] | None:
        """The test-split report written at the end of training (``metrics.json``)."""
        return json.loads(self._dir.metrics.read_text()) if self._dir.metrics.is_file() else None

    @property
    def history(self) -> list[dict[str, str]]:
        """One row per finished epoch (``history.csv``)."""
        if not self._dir.history.is_file():
            return []
        return list(csv.DictReader(io.StringIO(self._dir.history.read_text())))

    def evaluate(self, split: str = "test", json_path: str | Path | None = None, top_k: int = 5,
                 batch_size: int = 64, gallery: int = 8, progress: bool = True) -> Evaluation:
        """Evaluates the best model on one subset of the run's split (``edgecls evaluate``);
        see ``evaluate_run_dir``."""
        return evaluate_run_dir(self.path, split, json_path, top_k, batch_size, gallery, progress)

    def export(self, formats: str | Sequence[str] | None = None, precisions: str | Sequence[str] | None = None,
               **options: Any) -> ExportResult:
        """Exports to TFLite / ONNX / OpenVINO and validates every artifact against float
        (``edgecls export``). Takes the options of ``edgecls.api.exporting.export_run_dir``.

        Returns:
            The artifacts with their verdicts, intervals and manifest; call ``.check()``
            to raise the GateError the CLI exits with when one is refused.
        """
        from edgecls.api.exporting import export_run_dir

        return export_run_dir(self.path, formats=formats, precisions=precisions, **options)

    def prune(self, out: str | Path | None = None, structured: bool = False, progress: bool = True,
              **options: Any) -> Any:
        """Prunes this run into a new run (``edgecls prune``); returns a ``PruneResult``
        (``.run``: the pruned Run, ``.report``). See ``edgecls.api.pruning.prune_run_dir``."""
        from edgecls.api.pruning import prune_run_dir

        return prune_run_dir(self.path, out, structured, progress, **options)

    def explain(self, images: Any, **options: Any) -> Any:
        """Heatmaps of the run's float model on ``images`` (``edgecls explain RUN``); see
        ``edgecls.api.explaining.explain_images``."""
        from edgecls.api.explaining import explain_images

        return explain_images(self.path, images, **options)

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    def _repr_html_(self) -> str:
        parts = [html.STYLE, f"<h4>edgecls run {html.escape(str(self.path))}</h4>"]
        config = self.config
        if config:
            parts.append(html.note(f"model {config.get('model')}, weights {config.get('weights')}, "
                                   f"{config.get('img_size')} px, {len(self.labels)} classes"))
        metrics = self.metrics
        if metrics:
            parts.append(html.note(f"test accuracy {metrics['accuracy']:.4f}, balanced accuracy "
                                   f"{metrics['balanced_accuracy']:.4f} on {metrics['num_samples']} images"))
        plot = html.history_svg(self.history)
        if plot:
            parts.append(plot)
        if self._dir.confusion_png.is_file():
            parts.append(html.png(self._dir.confusion_png.read_bytes(), "confusion matrix"))
        return "".join(parts)


def evaluate_run_dir(run: str | Path, split: str = "test", json_path: str | Path | None = None, top_k: int = 5,
                     batch_size: int = 64, gallery: int = 8, progress: bool = True) -> Evaluation:
    """Evaluates a run's best model on ``split`` (``edgecls evaluate``): accuracy, balanced
    accuracy, top-k, per-class precision/recall/F1, weak classes, confusion matrix.

    Args:
        json_path: also write the report there (and the confusion matrix PNG beside it).
        gallery: draw the N most confident mistakes with Grad-CAM heatmaps into
            ``JSON_mistakes.png`` beside the JSON, or ``RUN/mistakes.png`` for the test
            split (0: none).
        progress: a spinner while the gallery is drawn.
    """
    from edgecls.present.progress import status_line
    from edgecls.present.tf_import import import_tensorflow_muted

    RunDir(Path(run)).require_model()
    import_tensorflow_muted()
    from edgecls.explain.gallery import write_mistakes_gallery
    from edgecls.train.evaluate import evaluate_run

    evaluation = Evaluation(evaluate_run(run, split=split, top_k=top_k, json_path=json_path, batch_size=batch_size))
    png = (Path(json_path).with_name(f"{Path(json_path).stem}_mistakes.png") if json_path
           else RunDir(Path(run)).mistakes_png if split == "test" else None)
    if gallery and png is not None:
        with status_line("explaining the most confident mistakes...", enabled=progress):
            shown = write_mistakes_gallery(run, split, png, count=gallery)
        evaluation.gallery_png = png if shown else None
    return evaluation


def _say_split(split: Any) -> None:
    from edgecls.data.split import SUBSETS
    from edgecls.present.notes import say

    counts = {subset: len(split.items(subset)) for subset in SUBSETS}
    say(f"data: {counts['train']} train, {counts['val']} val, {counts['test']} test images "
        f"in {len(split.labels)} classes")
    for note in split.notes:
        say(note, "note")
