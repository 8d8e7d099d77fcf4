"""The layout of a run directory and of an export folder: the contract between train,
evaluate, prune, export, bench and explain. Every path inside either comes from here.

A run directory holds everything a later stage needs, so that e.g. export validates
on exactly the test images training held out::

    RUN/
      config.yaml               resolved training config
      split.json                split manifest (see edgecls.data.split)
      labels.txt                class names, one per line, in output-index order
      history.csv               per-epoch metrics, lr_start/lr_end (edgecls.train.checkpoint)
      best.keras                best model by validation metric (what export takes)
      checkpoints/last.keras    last finished epoch, for --resume
      checkpoints/state.json    epoch, phase and optimizer step of the last checkpoint
      checkpoints/backup/       during a phase of a distributed run only: Keras BackupAndRestore
      metrics.json              evaluation on the test split (schema in edgecls.train.evaluate)
      confusion_matrix.png
      classification_report.txt
      mistakes.png              `edgecls evaluate`'s most confident test mistakes (Grad-CAM)
      prune_report.json         a pruned run only: what pruning did (edgecls.optimize)
      export/                   `edgecls export RUN`'s default output, an ``ExportDir``:
        model_int8.tflite ...   the artifacts (edgecls.formats names their side files)
        manifest.json           what was exported and how it did (edgecls.export.manifest)
        predictions.json        held-out predictions of every artifact and the float model
        changes.html            with --explain-changes: what INT8 changed, with heatmaps
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgecls.errors import ConfigError, EdgeclsError

# What a run writes at its top level: a folder holding any of these is (part of) a run.
RUN_ENTRIES = frozenset({"config.yaml", "split.json", "labels.txt", "history.csv", "best.keras",
                         "checkpoints", "metrics.json", "confusion_matrix.png",
                         "classification_report.txt"})


@dataclass(frozen=True)
class ExportDir:
    """Paths inside one export folder (a run's ``export/`` or any ``--out``)."""

    root: Path

    MANIFEST = "manifest.json"
    PREDICTIONS = "predictions.json"
    CHANGES = "changes.html"

    @property
    def manifest(self) -> Path:
        return self.root / self.MANIFEST

    @property
    def predictions(self) -> Path:
        return self.root / self.PREDICTIONS

    @property
    def changes_page(self) -> Path:
        return self.root / self.CHANGES


@dataclass(frozen=True)
class TuneDir:
    """Paths inside one ``edgecls tune --out`` folder: the winner's run and its export."""

    root: Path

    @property
    def best(self) -> Path:
        return self.root / "best"

    @property
    def best_run(self) -> Path:
        """The winner trained in full (pruned, when its candidate is)."""
        return self.best / "run"

    @property
    def best_unpruned(self) -> Path:
        """The winner's full training before structured pruning (pruned candidates only)."""
        return self.best / "full"

    @property
    def best_export(self) -> ExportDir:
        return ExportDir(self.best / "export")

    def finalist(self, trial: int) -> Path:
        """Where a finalist's trial weights are exported to be benched again."""
        return self.root / "finalists" / f"{trial:04d}"


@dataclass(frozen=True)
class RunDir:
    """Paths inside one run directory."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def split(self) -> Path:
        return self.root / "split.json"

    @property
    def labels(self) -> Path:
        return self.root / "labels.txt"

    @property
    def history(self) -> Path:
        return self.root / "history.csv"

    @property
    def best_model(self) -> Path:
        return self.root / "best.keras"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def last_checkpoint(self) -> Path:
        return self.checkpoints / "last.keras"

    @property
    def state(self) -> Path:
        return self.checkpoints / "state.json"

    @property
    def backup(self) -> Path:
        """Keras BackupAndRestore's folder, during a phase of a distributed run only."""
        return self.checkpoints / "backup"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.json"

    @property
    def confusion_png(self) -> Path:
        return self.root / "confusion_matrix.png"

    @property
    def report_txt(self) -> Path:
        return self.root / "classification_report.txt"

    @property
    def mistakes_png(self) -> Path:
        return self.root / "mistakes.png"

    @property
    def prune_report(self) -> Path:
        return self.root / "prune_report.json"

    @property
    def export(self) -> ExportDir:
        """Where ``edgecls export RUN`` writes by default, and where bench looks in a run."""
        return ExportDir(self.root / "export")

    def read_labels(self) -> list[str]:
        """Class names in output-index order."""
        return [line for line in self.labels.read_text().splitlines() if line]

    def require_room_for_run(self) -> None:
        """Refuses a root a new run must not be written into: a file, or a folder with
        files of its own and none of a run's (the run would be mixed with them).

        A missing or empty folder passes, and so does one an earlier run wrote (training
        then continues its split, or says to ``--resume``). Hidden entries (``.DS_Store``,
        leftovers of killed saves) do not count.

        Raises:
            ConfigError: the root is a file, or a folder that is not a run and not empty.
        """
        if not self.root.exists():
            return
        if not self.root.is_dir():
            raise ConfigError(f"--out {self.root} is a file, not a folder",
                              "pass a new folder for the run, e.g. runs/NAME")
        entries = sorted(p.name for p in self.root.iterdir() if not p.name.startswith("."))
        if entries and not RUN_ENTRIES.intersection(entries):
            shown = ", ".join(entries[:3]) + (f" and {len(entries) - 3} more" if len(entries) > 3 else "")
            raise ConfigError(f"--out {self.root} is a folder of other files ({shown}), not an "
                              "edgecls run: the run's files would be written among them",
                              "pass a new or empty folder, e.g. runs/NAME")

    def require_model(self) -> Path:
        """The best model, or a user error explaining that this is not a finished run."""
        if not self.root.is_dir():
            raise EdgeclsError(f"run directory {self.root} does not exist",
                               "pass the --out directory of an `edgecls train` run")
        if not self.best_model.is_file():
            raise EdgeclsError(f"{self.root} holds no trained model ({self.best_model.name} is missing)",
                               "train first with `edgecls train`, or --resume an interrupted run")
        return self.best_model
