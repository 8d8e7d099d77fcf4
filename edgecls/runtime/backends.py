"""Backend registry and selection by file suffix: ``load_backend(path, options)``.

Backend modules register their class in ``BACKENDS``; importing them is cheap because
each imports its inference library only when a model is loaded. Which backend runs
which suffix is written once, in ``edgecls.formats``.
"""

from __future__ import annotations

import os
from pathlib import Path

from edgecls.errors import ModelError
from edgecls.formats import FORMATS, MODEL_SUFFIXES, format_for_path, model_of_side_file
from edgecls.registry import Registry
from edgecls.rundir import RunDir
from edgecls.runtime.base import Backend, BackendOptions
from edgecls.runtime.integrity import (
    NOT_CHECKED,
    UNSIGNED,
    VERIFIED,
    ModelBytes,
    read_model,
    start_check,
    verify_bytes,
)

BACKENDS: Registry[type[Backend]] = Registry(
    "backend", modules=[f"edgecls.runtime.{fmt.backend}" for fmt in FORMATS])


def backend_for_suffix(path: str | Path) -> type[Backend]:
    """The backend class that runs files with this path's suffix."""
    fmt = format_for_path(path)
    if fmt is None and Path(path).is_dir():
        raise ModelError(f"{path} is a folder, not a model file", _models_inside(Path(path)))
    model = model_of_side_file(path)
    if fmt is None and model is not None:
        raise ModelError(f"{path} is a side file of the model {model}, not a model itself",
                         f"pass {model} (its side files are found beside it)")
    if fmt is None:
        suffix = Path(path).suffix.lower()
        raise ModelError(
            f"{path}: unknown model format {suffix or '(no suffix)'!r}",
            f"pass a model file ending in one of: {', '.join(MODEL_SUFFIXES)}",
        )
    return BACKENDS.get(fmt.backend)


def _models_inside(folder: Path) -> str:
    """A hint naming model files in ``folder`` or its export/ (a training run's)."""
    found = sorted(p for where in (folder, RunDir(folder).export.root) if where.is_dir()
                   for p in where.iterdir() if format_for_path(p) is not None)
    if found:
        return "pass one of the model files in it, e.g. " + ", ".join(str(p) for p in found[:3])
    return (f"pass a model file ending in one of: {', '.join(MODEL_SUFFIXES)} "
            "(a training run's are made by `edgecls export RUN`, in RUN/export/)")


def load_backend(path: str | Path, options: BackendOptions | None = None,
                 backend: str | None = None, verify: bool = True) -> Backend:
    """Loads a model file with the backend its suffix calls for (or the one named).

    Args:
        verify: check the file against the digest embedded at export (models without
            one load unverified). The file is read once; its bytes are hashed in a thread
            while the backend loads the same bytes, and the backend is returned only
            once they proved intact.

    Raises:
        ModelError: the file is missing, has an unknown suffix, is not a model, or
            (with ``verify``) does not match its embedded digest.
    """
    path = Path(path)
    cls = BACKENDS.get(backend) if backend else backend_for_suffix(path)
    check_model_file(path)
    model = read_model(path)  # read once: the backend loads exactly the bytes that are checked
    check = start_check(path, model) if verify else None  # on another core, while the backend loads
    try:
        loaded = cls(path, options, model)
    except Exception:
        if check is not None:
            check.result()  # a damaged file says so, rather than how the library choked on it
        raise
    status = check.result() if check is not None else NOT_CHECKED
    if status == UNSIGNED:
        status = _check_unsigned(loaded, model)
    loaded.settings["integrity"] = status
    return loaded


def _check_unsigned(loaded: Backend, model: ModelBytes) -> str:
    """The status of a model without digest fields near its ends: ``UNSIGNED`` when its
    metadata names no digest (a foreign model loads without a pass over its weights),
    else ``VERIFIED`` if its fields are elsewhere in the file and match.

    Raises:
        ModelError: the metadata names a digest that the file does not carry intact.
    """
    meta = loaded.read_metadata()
    if meta is None or not (meta.digest or meta.weights_digest):
        return UNSIGNED
    if verify_bytes(loaded.path, model.content, model.weights) != VERIFIED:
        raise ModelError(f"{loaded.path} is corrupted: its metadata names a digest that the "
                         "file does not carry intact",
                         "copy the file again from the export folder or re-export it; "
                         "--no-verify (verify=False) loads it anyway")
    return VERIFIED


def check_model_file(path: Path) -> None:
    """Raises a ModelError unless ``path`` is a non-empty readable file."""
    if not path.exists():
        raise ModelError(f"model file {path} does not exist", "check the path")
    if not path.is_file():
        raise ModelError(f"{path} is not a file", "pass the model file itself, not a folder")
    if path.stat().st_size == 0:
        raise ModelError(f"model file {path} is empty", "re-export or re-download it")


def not_a_model(path: Path, fmt: str, detail: object) -> ModelError:
    """The error every backend raises when its library rejects the file."""
    text = str(detail).strip().splitlines()[0][:200] if str(detail).strip() else type(detail).__name__
    return ModelError(
        f"{path} is not a valid {fmt} model ({text})",
        "the file may be truncated or not a model; re-export it with `edgecls export`",
    )


def resolve_threads(options: BackendOptions) -> int:
    """Thread count: the option when given, else the cores available (at most 4)."""
    if options.threads is not None:
        if options.threads < 1:
            raise ModelError(f"threads must be >= 1, got {options.threads}")
        return int(options.threads)
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(4, available or 1))
