"""Model tweaks shared by the pruning tests."""

from __future__ import annotations

from typing import Any

import numpy as np


def randomize_batchnorm(model: Any) -> None:
    """Distinct BN gammas / statistics so that channel choice and slicing matter."""
    import keras

    rng = np.random.default_rng(1)
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([rng.uniform(0.1, 2, gamma.shape).astype("float32"),
                               rng.normal(0, 0.1, beta.shape).astype("float32"),
                               rng.normal(0, 0.1, mean.shape).astype("float32"),
                               rng.uniform(0.5, 2, var.shape).astype("float32")])
