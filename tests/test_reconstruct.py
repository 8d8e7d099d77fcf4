"""Energy importance and least-squares reconstruction after structured pruning."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.models import randomize_batchnorm

SIZE = 40


def _block_model(constant_channels: int = 8, width: int = 16):
    """input -> expand 1x1 -> BN -> ReLU6 -> depthwise (valid) -> BN -> ReLU6 -> project 1x1
    (no bias) -> BN -> pooled dense. The first ``constant_channels`` expansion channels
    have zero expand filters, so they carry a constant (BN beta) through the block."""
    import keras

    keras.utils.set_random_seed(0)
    image = keras.Input((12, 12, 4), name="image")
    x = keras.layers.Conv2D(width, 1, use_bias=False, name="expand")(image)
    x = keras.layers.BatchNormalization(name="expand_bn")(x)
    x = keras.layers.ReLU(6.0, name="expand_relu")(x)
    x = keras.layers.DepthwiseConv2D(3, padding="valid", use_bias=False, name="dw")(x)
    x = keras.layers.BatchNormalization(name="dw_bn")(x)
    x = keras.layers.ReLU(6.0, name="dw_relu")(x)
    x = keras.layers.Conv2D(8, 1, use_bias=False, name="project")(x)
    x = keras.layers.BatchNormalization(name="project_bn")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    model = keras.Model(image, keras.layers.Dense(3, name="logits")(x))
    rng = np.random.default_rng(0)
    kernel = rng.normal(size=(1, 1, 4, width)).astype("float32")
    kernel[..., :constant_channels] = 0.0
    model.get_layer("expand").set_weights([kernel])
    for name in ("expand_bn", "dw_bn", "project_bn"):
        layer = model.get_layer(name)
        n = layer.get_weights()[0].shape[0]
        layer.set_weights([rng.uniform(0.5, 1.5, n).astype("float32"),
                           rng.uniform(0.5, 2.0, n).astype("float32"),
                           rng.normal(0, 0.1, n).astype("float32"),
                           rng.uniform(0.5, 2.0, n).astype("float32")])
    return model


def _inputs(count: int = 16) -> np.ndarray:
    return np.random.default_rng(1).normal(size=(count, 12, 12, 4)).astype(np.float32)


def test_ridge_recovers_a_linear_map() -> None:
    from edgecls.optimize.reconstruct import _ridge

    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 12))
    weights, bias = rng.normal(size=(12, 5)), rng.normal(size=5)
    solution, intercept = _ridge(x, x @ weights + bias)
    np.testing.assert_allclose(solution, weights, atol=0.02)
    np.testing.assert_allclose(intercept, bias, atol=0.02)


def test_removed_constant_channels_are_folded_into_the_batchnorm() -> None:
    """Channels that only carry a constant can go without changing the output at all: the
    constant moves into the project BatchNorm's moving mean."""
    from edgecls.optimize.channel_graph import find_groups
    from edgecls.optimize.reconstruct import reconstruct_sinks
    from edgecls.optimize.selection import prune_channels

    model = _block_model()
    groups = find_groups(model.get_config())
    assert [g.sinks for g in groups] == [["project"]]
    keep = {groups[0].key: np.arange(8, 16)}
    x = _inputs()
    expected = model.predict(x, verbose=0)
    sliced = prune_channels(model, groups, keep)
    assert np.abs(sliced.predict(x, verbose=0) - expected).max() > 0.05  # the cut matters
    errors = reconstruct_sinks(model, sliced, groups, keep, x)
    np.testing.assert_allclose(sliced.predict(x, verbose=0), expected, atol=2e-3)
    assert errors[groups[0].key] < 1e-3
    shift = sliced.get_layer("project_bn").get_weights()[2] - model.get_layer("project_bn").get_weights()[2]
    assert np.abs(shift).max() > 0.05


def test_energy_ranks_channels_by_their_output_contribution() -> None:
    from edgecls.optimize.channel_graph import find_groups
    from edgecls.optimize.reconstruct import output_energy

    model = _block_model(constant_channels=0)
    project = model.get_layer("project")
    kernel = project.get_weights()[0]
    kernel[:, :, [3, 7, 11], :] = 0.0  # these channels reach nothing
    kernel[:, :, 5, :] *= 20.0  # this one dominates
    project.set_weights([kernel])
    groups = find_groups(model.get_config())
    scores = output_energy(model, groups, _inputs())[groups[0].key]
    assert set(np.argsort(scores)[:3]) == {3, 7, 11} and np.argmax(scores) == 5


# MobileNetV3-Small and EfficientNet-B0 hold every block kind (plain, SE, hard-swish, swish)
# and run by default; the other two families repeat those blocks and are long tests.
@pytest.fixture(scope="module", params=[pytest.param("mobilenet_v2", marks=pytest.mark.slow), "mobilenet_v3_small",
                                        "efficientnet_b0",
                                        pytest.param("efficientnet_lite0", marks=pytest.mark.slow)])
def trained_like(request):
    """A tiny backbone with varied BatchNorms (weights otherwise at initialization)."""
    import keras

    from edgecls.models import build

    keras.utils.set_random_seed(0)
    model = build(request.param, num_classes=3, input_size=SIZE, include_top=False)
    randomize_batchnorm(model)
    return model


def test_reconstruction_brings_features_closer_than_recalibration(trained_like) -> None:
    """Half the channels removed: the refit model's backbone features are nearer the
    original's than those of the BatchNorm-recalibrated model (SE blocks included)."""
    from edgecls.optimize.reconstruct import reconstruct_sinks
    from edgecls.optimize.refit import recalibrate_batchnorm
    from edgecls.optimize.selection import plan, prune_channels

    model = trained_like
    x = np.random.default_rng(2).uniform(0, 255, (48, SIZE, SIZE, 3)).astype(np.float32)
    groups, keep = plan(model, 0.5, criterion="energy", per_block=True, images=x)

    def features(m):  # one eager call: no predict function to trace per model
        return np.asarray(m.get_layer("backbone")([x], training=False))

    reference = features(model)
    recalibrated = prune_channels(model, groups, keep)
    recalibrate_batchnorm(recalibrated, x)
    rebuilt = prune_channels(model, groups, keep)
    errors = reconstruct_sinks(model, rebuilt, groups, keep, x)
    assert set(errors) == {g.key for g in groups} and all(np.isfinite(list(errors.values())))

    def distance(m):
        return np.linalg.norm(features(m) - reference) / np.linalg.norm(reference)

    assert distance(rebuilt) < 0.8 * distance(recalibrated)


def test_reconstruction_at_ratio_zero_changes_nothing() -> None:
    from edgecls.optimize.channel_graph import find_groups
    from edgecls.optimize.reconstruct import reconstruct_sinks
    from edgecls.optimize.selection import prune_channels

    model = _block_model()
    groups = find_groups(model.get_config())
    keep = {g.key: np.arange(g.channels) for g in groups}
    pruned = prune_channels(model, groups, keep)
    assert reconstruct_sinks(model, pruned, groups, keep, _inputs()) == {}
    x = _inputs()
    np.testing.assert_allclose(pruned.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


def test_keep_best_restores_the_better_weights() -> None:
    import keras

    from edgecls.optimize.callbacks import KeepBest

    features = np.eye(4, dtype=np.float32)
    labels = np.arange(4)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(4, use_bias=False)])
    model.layers[0].set_weights([np.eye(4, dtype=np.float32) * 5])  # perfect
    keeper = KeepBest(model, features, labels)
    keeper.on_train_begin()
    model.layers[0].set_weights([-np.eye(4, dtype=np.float32) * 5])  # "an epoch" ruins it
    keeper.on_epoch_end(0, {})
    keeper.on_train_end()
    assert keeper.best_epoch == 0 and keeper.history == [1.0, 0.0]
    np.testing.assert_array_equal(model.layers[0].get_weights()[0], np.eye(4) * 5)
