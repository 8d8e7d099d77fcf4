"""Training through the API: the checks ``edgecls train`` makes before TensorFlow loads,
the config from options / a YAML file / a resumed run, and the call of the training loop."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgecls.config import from_dict, load_config
from edgecls.data.scan import ONE_CLASS_HINT, scan_dataset
from edgecls.data.split import Split
from edgecls.errors import ConfigError, DataError
from edgecls.rundir import RunDir
from edgecls.train.config import TrainConfig
from edgecls.train.distribute import read_cluster, worker_run_root
from edgecls.train.model_choice import ModelChoice, resolve_model_choice


def training_config(out: str | Path, data: str | Path | None = None, config: str | Path | None = None,
                    resume: bool = False, **fields: Any) -> tuple[TrainConfig, ModelChoice]:
    """The resolved config of a training run and the model choice, after the checks that
    need no TensorFlow (a wrong folder fails in a second, not after TensorFlow loads).

    Args:
        out: run directory.
        data: image folder.
        config: YAML file of TrainConfig keys; ``fields`` override it.
        resume: continue the run in ``out`` (its saved config, ``fields`` override it).
        fields: TrainConfig fields; ``None`` means "use the default".

    Raises:
        EdgeclsError: unusable data folder or run directory, bad options.
    """
    out = Path(out)
    if data is not None and not resume:
        look_at_data(Path(data))
        refuse_out_inside_data(out, Path(data))
    if not resume:  # the folder this process writes: a worker of a cluster has its own
        RunDir(worker_run_root(out, read_cluster())).require_room_for_run()
    from edgecls.train.init_from import apply_init_from

    overrides = {"data": str(data) if data is not None else None, "out": str(out), **fields}
    resolved = _resolve_config(out, config, resume, overrides)
    if not resume:  # --init-from: the earlier run's model, size, weights and split rule
        resolved = apply_init_from(resolved)
    return resolve_model_choice(resolved)


def run_training(config: TrainConfig, resume: bool = False, progress: bool = True,
                 on_split: Callable[[Split], None] | None = None,
                 on_input_size: Callable[[int, str], None] | None = None) -> Any:
    """Trains with the rich progress bars (none with ``progress=False``); returns the
    training loop's ``TrainResult``. ``on_input_size`` hears the input side chosen and
    where it came from. Imports TensorFlow (muted)."""
    from edgecls.present.tf_import import import_tensorflow_muted

    import_tensorflow_muted()
    from edgecls.present.train_progress import RichProgress  # these two import Keras at their top
    from edgecls.train.fit import train

    return train(config, resume=resume, progress=RichProgress if progress else None, on_split=on_split,
                 on_input_size=on_input_size)


def look_at_data(data: Path) -> None:
    """The errors a folder's layout alone shows (missing, a file, no or one class folder),
    before TensorFlow loads: tens of seconds on a small machine. The full check (every
    file decoded) runs when the split is made."""
    scan = scan_dataset(data)
    if len(scan.labels) < 2:
        mixed = f" and {len(scan.loose)} image(s) of its own" if scan.loose else ""
        raise DataError(f"{scan.root} has {len(scan.labels)} class folder(s){mixed}; "
                        "a classifier needs at least 2",
                        ONE_CLASS_HINT if scan.loose else f"run `edgecls data check {data}`")


def refuse_out_inside_data(out: Path, data: Path) -> None:
    """A run directory inside the dataset would mix the run's files with the images, and
    the next `train --data` would read its folders (checkpoints/, export/) as classes."""
    data_root, out_root = data.resolve(), out.resolve()
    if out_root == data_root or data_root in out_root.parents:
        raise DataError(f"--out {out} is inside the dataset folder {data}: the run's files would "
                        "be mixed with the images and read as a class by the next training",
                        "pass an --out outside the dataset folder, e.g. runs/NAME")


def _resolve_config(out: Path, config: str | Path | None, resume: bool, overrides: dict[str, Any]) -> TrainConfig:
    saved = RunDir(worker_run_root(out, read_cluster())).config  # a worker's own copy in a cluster
    if resume and config is not None:
        raise ConfigError("--config cannot be combined with --resume",
                          f"a resumed run uses its saved {saved}; override single options instead")
    if config is not None:
        return load_config(TrainConfig, config, overrides)
    if resume and saved.is_file():
        return load_config(TrainConfig, saved, overrides)
    return from_dict(TrainConfig, {k: v for k, v in overrides.items() if v is not None})
