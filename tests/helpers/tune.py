"""A tiny search space and config for `edgecls tune` tests: the tiny CNN of
``helpers.runs`` and ``TINY_MBCONV`` (both registered on import), 32 px, one or two
epochs per trial."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgecls.models import MODELS
from edgecls.tune.budget import Budget
from edgecls.tune.space import SearchSpace
from edgecls.tune.trial import Fidelity
from edgecls.tune.tuner import TuneConfig
from helpers.runs import TINY


TINY_MBCONV = "tiny_mbconv"


def tiny_mbconv(input_size: tuple[int, int] | None, num_classes: int | None, include_top: bool,
                weights: Any, dropout: float = 0.2) -> Any:
    """A stem and one inverted-residual block (expand, depthwise, project): the smallest
    family structured pruning can narrow."""
    import keras

    from edgecls.models.weights import finish_model, parse_weights

    image = keras.Input(shape=(*(input_size or (32, 32)), 3), name="image")
    x = keras.layers.Rescaling(1.0 / 255.0, name="normalize")(image)
    x = keras.layers.Conv2D(8, 3, strides=2, use_bias=False, name="stem")(x)
    for name, layer in (("expand", keras.layers.Conv2D(32, 1, use_bias=False, name="expand")),
                        ("dw", keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False, name="dw")),
                        ("project", keras.layers.Conv2D(8, 1, use_bias=False, name="project"))):
        x = keras.layers.BatchNormalization(name=f"{name}_bn")(layer(x))
        if name != "project":
            x = keras.layers.ReLU(name=f"{name}_relu")(x)
    net = keras.Model(image, x, name=TINY_MBCONV)
    return finish_model(net, TINY_MBCONV, num_classes, dropout, parse_weights(weights))


if TINY_MBCONV not in MODELS:
    MODELS.register(TINY_MBCONV)(tiny_mbconv)


def tiny_space(sizes: tuple[int, ...] = (32,), weights: str = "none", family: str = TINY,
               mac_reductions: tuple[float, ...] = (0.0,)) -> SearchSpace:
    return SearchSpace(families=(family,), sizes=sizes, mac_reductions=mac_reductions, lrs=(0.01,),
                       fine_tune_lrs=(0.003,), fine_tune_fractions=(1.0,), scratch_lrs=(0.01, 0.003),
                       weights={family: weights})


def tiny_tune_config(data: Path, out: Path, cache: Path, **overrides: Any) -> TuneConfig:
    """Two trials of the tiny CNN, a generous budget, latency cached in ``cache``."""
    values: dict[str, Any] = dict(
        data=data, out=out, budget=Budget(latency_ms=1000.0, size_bytes=10**7), space=tiny_space(),
        fidelity=Fidelity(head_epochs=1, fine_tune_epochs=1, scratch_epochs=2, final_epochs=3, batch_size=8),
        trials=2, cache=cache, base={"augment": {"enabled": False}})
    values.update(overrides)
    return TuneConfig(**values)
