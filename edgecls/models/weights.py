"""Where a model's initial weights come from: ``none``, ``imagenet`` or a file.

``imagenet`` goes through Keras' own download cache (``$KERAS_HOME/models``, by default
``~/.keras/models``). The cache is checked first; without the file and without network
(or with ``EDGECLS_OFFLINE=1``) the user gets a ``ModelError`` naming the file, where to
download it from and the folder to put it in.

A file path may be a ``.keras`` model or a ``.weights.h5`` file saved by Keras: either
for the whole model (same architecture and classes) or for its backbone alone, so a
model trained on one dataset can start training on another.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgecls.errors import ModelError
from edgecls.models.head import attach_head

OFFLINE_ENV = "EDGECLS_OFFLINE"
# Keras 3.14+ warns so when a nested container's group is absent from a weights file; for
# a Functional backbone the containers are its ``_operations_by_depth``, which mirror the
# layers already loaded from ``layers/`` (see ``_load_weights_h5``).
_SKIPPED_CONTAINER = "Skipping nested container"
WEIGHT_SUFFIXES = (".keras", ".weights.h5")


@dataclass(frozen=True)
class ImagenetFile:
    """One ImageNet weights file as Keras applications download it."""

    name: str  # file name in the cache, e.g. "efficientnetb0_notop.h5"
    origin: str  # URL Keras downloads it from
    file_hash: str | None = None  # sha256 Keras checks, when it has one


def parse_weights(spec: str | Path | None) -> str | Path | None:
    """Normalizes a ``--weights`` value: ``None``, ``"imagenet"`` or an existing file.

    Raises:
        ModelError: the value is neither ``none``/``imagenet`` nor a usable file.
    """
    if spec is None or str(spec).lower() in ("", "none", "random", "scratch"):
        return None
    if str(spec).lower() == "imagenet":
        return "imagenet"
    path = Path(spec).expanduser()
    if not path.is_file():
        raise ModelError(f"weights file {path} does not exist",
                         "pass --weights none, --weights imagenet, or the path of a "
                         ".keras or .weights.h5 file")
    if not path.name.endswith(WEIGHT_SUFFIXES):
        raise ModelError(f"weights file {path} is not a .keras or .weights.h5 file",
                         "save weights with model.save('x.keras') or "
                         "model.save_weights('x.weights.h5')")
    return path


def keras_cache_dir() -> Path:
    """The folder Keras keeps downloaded application weights in."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "models"


def imagenet_weights_path(weights_file: ImagenetFile) -> Path:
    """The cached ImageNet weights file, downloaded by Keras if absent and online.

    Raises:
        ModelError: the file is not cached and cannot be downloaded.
    """
    cached = keras_cache_dir() / weights_file.name
    if cached.is_file():
        return cached
    if os.environ.get(OFFLINE_ENV, "") not in ("", "0"):
        raise _missing_weights_error(weights_file, f"{OFFLINE_ENV} is set")
    import keras

    try:
        path = keras.utils.get_file(weights_file.name, weights_file.origin,
                                    cache_dir=str(keras_cache_dir().parent),
                                    cache_subdir="models", file_hash=weights_file.file_hash)
    except Exception as exc:  # Keras wraps URL and HTTP errors in a plain Exception
        raise _missing_weights_error(weights_file, f"download failed: {exc}") from None
    return Path(path)


def _missing_weights_error(weights_file: ImagenetFile, reason: str) -> ModelError:
    folder = keras_cache_dir()
    return ModelError(
        f"ImageNet weights file {weights_file.name} is not in the Keras cache {folder} "
        f"and cannot be downloaded ({reason})",
        f"download {weights_file.origin} and put it in {folder}/, or train with --weights none",
    )


def load_weights_file(model: Any, path: Path) -> None:
    """Loads a ``.keras`` or ``.weights.h5`` file into ``model`` or into its backbone.

    Raises:
        ModelError: the file is unreadable or its weights do not fit the model.
    """
    targets = [model]
    if any(layer.name == "backbone" for layer in model.layers):
        targets.append(model.get_layer("backbone"))
    if path.name.endswith(".keras"):
        _copy_from_saved_model(targets, path)
        return
    for target in targets:
        try:
            _load_weights_h5(target, path)
            return
        except Exception:  # Keras raises ValueError/KeyError/OSError for misfits
            continue
    raise _misfit_error(model, path)


def _load_weights_h5(target: Any, path: Path) -> None:
    """``target.load_weights(path)``; Keras' "skipping nested container" warnings are
    dropped when every weight of ``target`` is proven to hold a value stored in the file
    (nothing kept its fresh initialization), and passed on otherwise. The warnings of
    an attempt that fails are dropped with it (the caller tries the next target)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        target.load_weights(str(path))
    skipped = [w for w in caught if _SKIPPED_CONTAINER in str(w.message)]
    harmless = bool(skipped) and _every_weight_from_file(target, path)
    for warning in caught:
        if not (harmless and warning in skipped):
            warnings.warn_explicit(warning.message, warning.category, warning.filename,
                                   warning.lineno)


def _every_weight_from_file(target: Any, path: Path) -> bool:
    """True when each of ``target``'s weights equals an array stored in the ``.weights.h5``."""
    import h5py
    import numpy as np

    stored: dict[tuple[int, ...], list[Any]] = {}
    with h5py.File(path, "r") as file:
        def collect(_: str, item: Any) -> None:
            if isinstance(item, h5py.Dataset):
                stored.setdefault(tuple(item.shape), []).append(item[()])

        file.visititems(collect)
    for weight in target.weights:
        value = np.asarray(weight.numpy())
        if not any(np.array_equal(value, array) for array in stored.get(value.shape, [])):
            return False
    return True


def _copy_from_saved_model(targets: list[Any], path: Path) -> None:
    import keras

    try:
        saved = keras.saving.load_model(str(path), compile=False)
    except Exception as exc:  # corrupt zip, unknown layers, wrong format
        raise ModelError(f"cannot read Keras model {path}: {exc}",
                         "pass a file written by model.save() or `edgecls train`") from None
    sources = [saved]
    if any(layer.name == "backbone" for layer in saved.layers):
        sources.append(saved.get_layer("backbone"))
    for target in targets:
        for source in sources:
            if _same_shapes(target.weights, source.weights):
                target.set_weights(source.get_weights())
                return
    raise _misfit_error(targets[0], path)


def _same_shapes(a: list[Any], b: list[Any]) -> bool:
    return len(a) == len(b) and all(tuple(x.shape) == tuple(y.shape) for x, y in zip(a, b))


def _misfit_error(model: Any, path: Path) -> ModelError:
    return ModelError(f"the weights in {path} do not fit model {model.name!r}",
                      "use weights saved from the same model family, width and head, "
                      "or --weights none")


def finish_model(net: Any, name: str, num_classes: int | None, dropout: float,
                 weights: str | Path | None) -> Any:
    """Turns a family's network into the model ``build`` returns.

    Args:
        net: the flat Keras network from RGB 0..255 input (ImageNet weights already
            loaded when asked for): features, or the ImageNet classifier.
        name: registry name, used as the model name.
        num_classes: a new ``num_classes``-way head on ``net`` (see ``head.attach_head``);
            ``None`` returns ``net`` itself.
        dropout: dropout rate of the new head.
        weights: parsed weights spec; a file path is loaded last, into the model or
            its backbone.
    """
    if num_classes is not None:
        if num_classes < 2:
            raise ModelError(f"a classifier needs at least 2 classes, got {num_classes}",
                             "add image folders for more classes")
        model = attach_head(net, num_classes, dropout=dropout, name=name)
    else:
        model = net
        model.name = name
    if isinstance(weights, Path):
        load_weights_file(model, weights)
    return model
