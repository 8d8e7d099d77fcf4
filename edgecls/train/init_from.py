"""``edgecls train --init-from OLD_RUN``: the next model starts where the deployed one is.

The new run takes OLD's model family and options, image size and weights (its
``best.keras``), and OLD's split salt and fractions (``data.split.inherited_rule``), so
every image OLD held out stays held out and the new test split is unseen by both models
(``edgecls compare`` relies on it). The head keeps OLD's weights for every class OLD
knows, matched by name; a class new in the dataset gets a fresh output. A class OLD
knows must still be in the dataset: the new model would otherwise forget it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from edgecls.config import load_config
from edgecls.data.scan import scan_dataset
from edgecls.data.split import inherited_rule
from edgecls.errors import ConfigError, DataError, ModelError
from edgecls.models.float_model import load_float_model
from edgecls.rundir import RunDir
from edgecls.train.config import TrainConfig

HEAD = "head_dense"


def apply_init_from(config: TrainConfig) -> TrainConfig:
    """``config`` with what it inherits from ``config.init_from`` (unchanged without one).

    Raises:
        ConfigError: OLD is not a finished run, or ``config`` asks for another model,
            weights or image size than OLD has.
        DataError: the dataset lacks a class OLD knows.
    """
    if not config.init_from:
        return config
    old = RunDir(Path(config.init_from))
    old.require_model()
    if not (old.config.is_file() and old.split.is_file()):
        raise ConfigError(f"--init-from {old.root} has no config.yaml or split.json",
                          "pass the --out folder of an `edgecls train` run")
    old_config = load_config(TrainConfig, old.config)
    _require_same(config, old_config, old.root)
    if config.data:
        _require_old_classes(Path(config.data), old)
    fractions, salt = inherited_rule(old.split)
    return dataclasses.replace(
        config, model=old_config.model, alpha=old_config.alpha, img_size=old_config.img_size,
        weights=str(old.best_model.resolve()), split=list(fractions), split_salt=salt,
        init_from=str(old.root.resolve()))


def _require_same(config: TrainConfig, old: TrainConfig, root: Path) -> None:
    inherited = str(RunDir(root).best_model.resolve())
    for name in ("model", "img_size", "alpha"):
        mine, theirs = getattr(config, name), getattr(old, name)
        if mine is not None and mine != theirs:
            raise ConfigError(f"--{name.replace('_', '-')} {mine} differs from {theirs} of the run "
                              f"--init-from {root} continues",
                              f"drop --{name.replace('_', '-')}: the model and its input come from that run")
    if config.weights is not None and config.weights != inherited:
        raise ConfigError(f"--weights {config.weights} cannot be combined with --init-from",
                          f"the weights come from {root}/best.keras; drop --weights")


def _require_old_classes(data: Path, old: RunDir) -> None:
    labels = set(scan_dataset(data).labels)
    missing = [name for name in old.read_labels() if name not in labels]
    if missing:
        raise DataError(f"{data} has no folder for class(es) {', '.join(missing)} that --init-from "
                        f"{old.root} knows: the new model would forget them",
                        "keep every class folder of the earlier run's dataset (new ones may be added)")


def carry_head(model: Any, old: RunDir, labels: list[str]) -> None:
    """Copies OLD's head outputs into ``model``'s by class name (new classes keep theirs).

    Raises:
        ModelError: OLD's model has no head of the same width (another family or options).
    """
    previous = load_float_model(old.best_model)
    old_labels = old.read_labels()
    try:
        kernel, bias = previous.get_layer(HEAD).get_weights()
        new_kernel, new_bias = model.get_layer(HEAD).get_weights()
    except ValueError:
        raise ModelError(f"{old.best_model} has no {HEAD!r} layer to continue from",
                         "--init-from takes a run trained by `edgecls train`") from None
    if kernel.shape[0] != new_kernel.shape[0] or kernel.shape[1] != len(old_labels):
        raise ModelError(f"the head of {old.best_model} ({kernel.shape}) does not fit this model "
                         f"({new_kernel.shape[0]} features, {len(labels)} classes)",
                         "train with the same model and options as the earlier run")
    for index, name in enumerate(old_labels):
        target = labels.index(name)
        new_kernel[:, target], new_bias[target] = kernel[:, index], bias[index]
    model.get_layer(HEAD).set_weights([new_kernel, new_bias])
