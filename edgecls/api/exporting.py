"""``Run.export``: export, validate and gate, and what it returns (``ExportResult``).

The gate's refusal (``gate_error``) is the one the CLI raises: same class, same line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgecls.api import html
from edgecls.errors import GateError
from edgecls.rundir import ExportDir, RunDir

if TYPE_CHECKING:
    from edgecls.export.manifest import ArtifactRecord, Manifest


@dataclass
class ExportResult:
    """The artifacts of one export with their verdicts, intervals and manifest.

    Attributes:
        manifest: what ``manifest.json`` holds (``edgecls.export.manifest.Manifest``).
        out: the folder of the artifacts and the manifest.
        changes: with ``explain=True``, the INT8 artifacts' top-1 changes (``changes.html``).
    """

    manifest: Manifest
    out: Path
    changes: list[Any] = field(default_factory=list)  # with explain=True: top-1 changes per INT8 artifact

    @property
    def artifacts(self) -> list[ArtifactRecord]:
        return self.manifest.artifacts

    @property
    def paths(self) -> list[Path]:
        """The artifact files."""
        return [self.out / a.path for a in self.artifacts]

    @property
    def verdicts(self) -> dict[str, str]:
        """``passed`` / ``failed`` / ``inconclusive`` per artifact path."""
        return {a.path: a.verdict for a in self.artifacts}

    @property
    def intervals(self) -> dict[str, tuple[float, float] | None]:
        """The 95 % interval of each artifact's accuracy drop, in percentage points."""
        return {a.path: a.interval_pp for a in self.artifacts}

    @property
    def passed(self) -> bool:
        """Whether the gate accepts every artifact (what exit code 0 of the CLI means)."""
        return not self.manifest.failed

    def check(self) -> ExportResult:
        """Returns ``self``, or raises the GateError ``edgecls export`` exits 2 with."""
        error = gate_error(self.manifest)
        if error is not None:
            raise error
        return self

    def explain_changes(self, run: str | Path, threads: int | None = None) -> list[Any]:
        """Writes ``OUT/changes.html``: the held-out images whose top-1 the INT8 artifacts
        changed, with float and INT8 heatmaps (RISE); returns the changes per artifact."""
        from edgecls.explain.changes import write_changes_page

        int8 = [self.out / a.path for a in self.artifacts if a.precision == "int8"]
        if int8:
            self.changes = write_changes_page(Path(run), int8, ExportDir(self.out).changes_page, threads)
        return self.changes

    def to_dict(self) -> dict[str, Any]:
        """The manifest as ``manifest.json`` holds it."""
        return asdict(self.manifest)

    def _repr_html_(self) -> str:
        m = self.manifest
        splits = " + ".join(f"{n} {k}" for k, n in m.held_out_by_split.items())
        caption = (f"float top-1 {100 * m.float_accuracy:.2f}% on {m.held_out_images} held-out images "
                   f"({splits}); budget {m.max_drop_pp:g} pp")
        rows = [[a.path, f"{100 * a.accuracy:.2f}", f"{a.drop_pp:+.2f}" + ("*" if a.tuning_images else ""),
                 _interval(a.interval_pp), f"{a.right_to_wrong}/{a.wrong_to_right}", a.verdict.upper()]
                for a in self.artifacts]
        table = html.table(["artifact", "top-1 %", "drop pp", "95% interval", "-/+", "gate"], rows,
                           row_classes=[a.verdict for a in self.artifacts], caption=caption)
        notes = [html.note("-/+: predictions right with float and wrong with the artifact / the reverse")]
        notes += [html.note(f"{a.path}: {a.verdict}: {a.gate_note}") for a in self.artifacts
                  if a.verdict != "passed"]
        return html.STYLE + table + "".join(notes) + html.note(f"manifest: {ExportDir(self.out).manifest}")


def gate_error(manifest: Manifest) -> GateError | None:
    """The error for the artifacts the gate refuses (None when it accepts all)."""
    failed = manifest.failed
    if not failed:
        return None
    names = ", ".join(f"{a.path} ({a.verdict}: {a.drop_pp:+.2f} pp)" for a in failed)
    if all(a.verdict == "inconclusive" for a in failed):
        return GateError(f"{names}: too few held-out images to judge against "
                         f"{manifest.max_drop_pp:g} pp, and --strict was given",
                         "add held-out images (see the line above for how many) or drop --strict")
    return GateError(f"{names}: lost more than {manifest.max_drop_pp:g} pp of accuracy vs float "
                     "(or a class more than --max-class-drop), and the loss is real",
                     "try --calibration thorough (more images, other methods), a calibration "
                     "folder closer to your data, fp16, or a larger --max-drop; see manifest.json")


def _interval(bounds: Any) -> str:
    return f"[{bounds[0]:+.1f}, {bounds[1]:+.1f}]" if bounds else "-"


def export_run_dir(run: str | Path, formats: str | Sequence[str] | None = None,
                   precisions: str | Sequence[str] | None = None, *, out: str | Path | None = None,
                   target: str | None = None, calibration: str | None = None, max_drop: float | None = None,
                   max_class_drop: float | None = None, strict: bool | None = None,
                   input_type: str | None = None, remedies: bool | None = None, threads: int | None = None,
                   dynamic_batch: bool | None = None, explain: bool = False,
                   max_pixels: str | int | None = None, progress: bool = True) -> ExportResult:
    """Exports a run and validates every artifact against the float model (``edgecls export``).

    Options left ``None`` take ``ExportConfig``'s defaults; ``formats`` and ``precisions``
    are lists or comma-separated text; ``target`` (a device profile) sets both.

    Args:
        run: run directory.
        out: output folder (default: ``RUN/export``).
        threads: inference threads of the validation.
        explain: also write ``OUT/changes.html``: the held-out images whose INT8 top-1
            changed, with float and INT8 heatmaps.
        max_pixels: refuse images whose header declares more pixels (e.g. ``"90M"``).
        progress: draw a progress bar.

    Raises:
        EdgeclsError: not a run, unknown format / precision / target, unusable data.
    """
    from edgecls.present.progress import fraction_bar, rich_console_muted
    from edgecls.present.tf_import import import_tensorflow_muted
    from edgecls.runtime.image_header import set_max_pixels

    set_max_pixels(max_pixels)
    RunDir(Path(run)).require_model()
    import_tensorflow_muted()
    from edgecls.export.pipeline import export_run

    config = export_config(Path(run), formats=formats, precisions=precisions, out=out, target=target,
                           calibration=calibration, max_drop=max_drop, max_class_drop=max_class_drop,
                           strict=strict, input_type=input_type, remedies=remedies, threads=threads,
                           dynamic_batch=dynamic_batch)
    with fraction_bar("export", enabled=progress) as say, rich_console_muted():
        manifest = export_run(Path(run), config, progress=say)
    result = ExportResult(manifest, config.out)
    if explain:
        result.explain_changes(run, threads)
    return result


def export_config(run: Path, formats: str | Sequence[str] | None = None,
                  precisions: str | Sequence[str] | None = None, target: str | None = None,
                  threads: int | None = None, out: str | Path | None = None, **fields: Any) -> Any:
    """The ``ExportConfig`` of these options: ``None`` is its default, ``target`` sets
    formats and precisions the user left None (what the user gave wins), ``out`` defaults
    to ``RUN/export``."""
    from edgecls.export.pipeline import ExportConfig
    from edgecls.runtime.base import BackendOptions
    from edgecls.runtime.targets import apply, load_target

    chosen = apply(load_target(target) if target else None,
                   formats=_names(formats), precisions=_names(precisions))
    values = {"formats": chosen["formats"], "precisions": chosen["precisions"], "target": target,
              **{k: v.lower() if k == "input_type" and v else v for k, v in fields.items()}}
    return ExportConfig(out=Path(out) if out is not None else RunDir(run).export.root,
                        options=BackendOptions(threads=threads),
                        **{k: v for k, v in values.items() if v is not None})


def _names(value: str | Sequence[str] | None) -> list[str] | None:
    """``"tflite, onnx"`` or ``["TFLite"]`` as lower-case names; None stays None."""
    if value is None:
        return None
    parts = value.split(",") if isinstance(value, str) else value
    return [p.strip().lower() for p in parts if p.strip()]
