"""Data-driven channel importance and least-squares reconstruction for structured pruning.

Removing expansion channels takes their contribution out of every conv that reads them
(the *sinks*: the project conv, and the squeeze-and-excitation reduce conv). Two things
make the narrower model start close to the original instead of near chance:

- ``output_energy`` scores a channel by what it adds to the project conv's output on
  real images, ``E[a_c^2] * ||W_c||^2`` (activation energy times the energy of its
  project weights), instead of a weight norm that ignores the data;
- ``reconstruct_sinks`` refits each sink's kernel on the kept channels by ridge
  regression so that it reproduces the *original* model's pre-activation output
  (ThiNet / He et al. 2017 channel pruning with least-squares reconstruction). Blocks
  are refit in order and each reads the already-pruned model's activations, so errors
  of earlier blocks are corrected rather than accumulated. The constant the removed
  channels contributed goes into the sink's bias, or into the moving mean of the
  BatchNorm after it when the conv has no bias.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgecls.optimize.channel_graph import ChannelGroup, sub_model

POSITIONS_PER_IMAGE = 48  # spatial positions sampled per image for each regression
RIDGE = 1e-3  # ridge strength relative to the mean activation energy
BATCH = 64


def output_energy(model: Any, groups: list[ChannelGroup], images: np.ndarray) -> dict[str, np.ndarray]:
    """Per group, ``E[a_c^2] * ||W_c||^2`` of each channel at its project conv."""
    projects = [(group, project_sink(model, group)) for group in groups]
    inputs = _sink_inputs(model, projects, images)
    scores = {}
    for group, project in projects:
        activations = inputs[(group.key, project)]
        kernel = sub_model(model, group.path).get_layer(project).get_weights()[0]
        weight_energy = np.square(kernel.reshape(kernel.shape[-2], -1)).sum(axis=1)
        scores[group.key] = np.mean(np.square(activations), axis=0) * weight_energy
    return scores


def reconstruct_sinks(original: Any, pruned: Any, groups: list[ChannelGroup],
                      keep: dict[str, np.ndarray], images: np.ndarray) -> dict[str, float]:
    """Refits every sink of ``pruned`` on ``images`` (see module doc), block by block.

    Returns the relative error left at each project conv (``||Y' - Y|| / ||Y||``).
    """
    changed = [i for i, g in enumerate(groups) if len(keep[g.key]) < g.channels]
    if not changed:
        return {}
    groups = groups[changed[0]:]  # blocks before the first narrowed one see no change
    sinks = [(g, s) for g in groups for s in g.sinks]
    targets = _sink_inputs(original, sinks, images)
    errors = {}
    for group in groups:
        current = _sink_inputs(pruned, [(group, s) for s in group.sinks], images)
        for sink in group.sinks:
            error = _refit(original, pruned, group, sink, targets[(group.key, sink)],
                           current[(group.key, sink)])
            if sink == project_sink(original, group):
                errors[group.key] = error
    return errors


def project_sink(model: Any, group: ChannelGroup) -> str:
    """The sink that reads the channels at full resolution (not the pooled SE branch)."""
    holder = sub_model(model, group.path)
    return max(group.sinks, key=lambda s: int(np.prod(holder.get_layer(s).input.shape[1:3])))


def _refit(original: Any, pruned: Any, group: ChannelGroup, sink: str,
           full_inputs: np.ndarray, kept_inputs: np.ndarray) -> float:
    """Ridge fit of one sink's kernel (and constant) on the kept channels' activations."""
    old_layer = sub_model(original, group.path).get_layer(sink)
    new_layer = sub_model(pruned, group.path).get_layer(sink)
    old_weights = old_layer.get_weights()
    kernel = old_weights[0].reshape(old_weights[0].shape[-2], -1)
    bias = old_weights[1] if old_layer.use_bias else 0.0
    target = full_inputs @ kernel + bias
    solution, intercept = _ridge(kept_inputs, target)
    new_weights = new_layer.get_weights()
    new_weights[0] = solution.reshape(new_weights[0].shape).astype(np.float32)
    if new_layer.use_bias:
        new_weights[1] = intercept.astype(np.float32)
    elif sink in group.sink_bn:
        _shift_batchnorm_mean(sub_model(pruned, group.path).get_layer(group.sink_bn[sink]),
                              intercept)
    new_layer.set_weights(new_weights)
    fitted = kept_inputs @ solution + intercept
    return float(np.linalg.norm(fitted - target) / max(np.linalg.norm(target), 1e-12))


def _ridge(inputs: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``W, b`` minimizing ``||inputs W + b - target||^2 + lambda ||W||^2`` (float64)."""
    x, y = inputs.astype(np.float64), target.astype(np.float64)
    x_mean, y_mean = x.mean(axis=0), y.mean(axis=0)
    xc, yc = x - x_mean, y - y_mean
    gram = xc.T @ xc
    strength = RIDGE * max(float(np.trace(gram)) / max(len(gram), 1), 1e-12)
    solution = np.linalg.solve(gram + strength * np.eye(len(gram)), xc.T @ yc)
    return solution, y_mean - x_mean @ solution


def _shift_batchnorm_mean(batchnorm: Any, intercept: np.ndarray) -> None:
    """Adds ``intercept`` to the bias-free conv feeding ``batchnorm`` (a lower mean)."""
    gamma, beta, mean, variance = batchnorm.get_weights()
    batchnorm.set_weights([gamma, beta, (mean - intercept).astype(np.float32), variance])


def _sink_inputs(model: Any, sinks: list[tuple[ChannelGroup, str]],
                 images: np.ndarray) -> dict[tuple[str, str], np.ndarray]:
    """Rows of each sink's input activations: ``POSITIONS_PER_IMAGE`` fixed spatial
    positions per image (all of them for the pooled SE input)."""
    import keras

    extractors = {}
    for group, sink in sinks:
        extractors.setdefault(group.path, []).append((group, sink))
    rows: dict[tuple[str, str], list[np.ndarray]] = {(g.key, s): [] for g, s in sinks}
    for path, entries in extractors.items():
        feed = _feeder(model, path)
        holder = sub_model(model, path)
        extractor = keras.Model(_single(holder.inputs),
                                [holder.get_layer(s).input for _, s in entries])
        for start in range(0, len(images), BATCH):
            outputs = extractor(feed(images[start:start + BATCH]), training=False)
            outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
            for (group, sink), value in zip(entries, outputs):
                rows[(group.key, sink)].append(_sample_positions(np.asarray(value), start))
    return {key: np.concatenate(parts) for key, parts in rows.items()}


def _sample_positions(value: np.ndarray, offset: int) -> np.ndarray:
    """(batch, h, w, c) -> (rows, c) at positions fixed by each image's index."""
    batch, height, width, channels = value.shape
    flat = value.reshape(batch, height * width, channels)
    if height * width <= POSITIONS_PER_IMAGE:
        return flat.reshape(-1, channels)
    picked = [flat[i, np.random.default_rng(offset + i).choice(height * width, POSITIONS_PER_IMAGE,
                                                               replace=False)]
              for i in range(batch)]
    return np.concatenate(picked)


def _feeder(model: Any, path: tuple[str, ...]):
    """A function from model input images to the input of the nested model at ``path``."""
    import keras

    steps = []
    outer = model
    for name in path:
        layer = outer.get_layer(name)
        tensors = layer._inbound_nodes[0].input_tensors
        steps.append(keras.Model(_single(outer.inputs), _single(tensors)))
        outer = layer

    def feed(images: np.ndarray) -> Any:
        value = images.astype(np.float32)
        for step in steps:
            value = step(value, training=False)
        return value

    return feed


def _single(tensors: list[Any]) -> Any:
    """One tensor as itself (Keras warns when a one-input model is called with a bare
    tensor but was built with a list), several as a list."""
    return tensors[0] if len(tensors) == 1 else list(tensors)
