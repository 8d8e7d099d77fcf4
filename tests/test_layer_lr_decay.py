"""Layer-wise learning-rate decay of the fine-tune phase (``layer_lr_decay``): the block
grouping, the per-variable rates of ``LayerwiseAdamW`` (one step with known gradients),
off = today's AdamW, the config check, and a run that is interrupted and resumed with it.
Tiny CNN and generated images (tests/helpers); the block grouping also on real families
built without weights."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgecls.errors import ConfigError
from edgecls.rundir import RunDir
from edgecls.train.config import TrainConfig
from edgecls.train.phases import Phase
from helpers.images import write_image_folder
from helpers.runs import TINY, InterruptAt, tiny_cnn, tiny_config

LR = 0.1
FINETUNE = Phase("finetune", 2, LR)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("decay_images")
    return write_image_folder(root / "images", {"circle_r": 20, "square_g": 20})


@pytest.fixture(scope="module")
def backbone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Backbone weights: runs from them have a head phase, then fine-tuning."""
    path = tmp_path_factory.mktemp("decay_backbone") / "tiny.weights.h5"
    tiny_cnn((32, 32), None, include_top=False, weights=None).save_weights(path)
    return path


def _tiny_model() -> Any:
    from edgecls.models import build

    return build(TINY, weights="none", include_top=False, num_classes=3, input_size=32)


def _kernels(model: Any) -> dict[str, Any]:
    return {v.path.split("/")[0]: v for v in model.trainable_variables if v.path.endswith("kernel")}


def test_tiny_cnn_stages_count_from_the_top() -> None:
    from edgecls.train.optimizer import backbone_depths, layer_scales

    model = _tiny_model()  # conv0 (stride 2) + bn0, conv1 (stride 2) + bn1
    assert backbone_depths(model) == {"conv0": 2, "bn0": 2, "conv1": 1, "bn1": 1}
    assert layer_scales(model, 0.5) == {"conv0": 0.25, "bn0": 0.25, "conv1": 0.5, "bn1": 0.5}


@pytest.mark.parametrize("family, stem, top, block", [
    ("efficientnet_lite0", "stem_conv", "top_conv", "block5_"),
    ("mobilenet_v3_small", "conv", "conv_1", "expanded_conv_3_"),
    ("mobilenet_v2", "Conv1", "Conv_1", "block_6_"),
])
def test_real_backbones_group_whole_blocks_into_five_stages(family: str, stem: str, top: str,
                                                            block: str) -> None:
    from edgecls.models import build
    from edgecls.train.optimizer import backbone_depths

    model = build(family, weights="none", include_top=False, num_classes=3, input_size=64)
    depths = backbone_depths(model)
    assert depths[stem] == 5 and depths[top] == 1 and set(depths.values()) == {1, 2, 3, 4, 5}
    # the block whose depthwise conv halves the resolution starts a stage, whole:
    # its expand conv (still at the higher resolution) and squeeze-excite go with it
    assert {d for name, d in depths.items() if name.startswith(block)} == {2}
    by_depth = defaultdict(list)
    for name, depth in depths.items():
        by_depth[depth].append(name)
    assert all(len(names) >= 2 for names in by_depth.values())  # blocks, not single layers


def _one_step(optimizer: Any, model: Any, gradient: float) -> dict[str, np.ndarray]:
    """Applies one step with every gradient equal to ``gradient``; the change of each
    kernel, by layer."""
    import keras

    before = {name: keras.ops.convert_to_numpy(v) for name, v in _kernels(model).items()}
    variables = model.trainable_variables
    optimizer.apply([keras.ops.full(v.shape, gradient) for v in variables], variables)
    return {name: keras.ops.convert_to_numpy(v) - before[name] for name, v in _kernels(model).items()}


def test_each_stage_moves_at_its_own_rate() -> None:
    """Adam's first step moves every weight by lr * g / |g|: the steps are the rates."""
    from edgecls.train.optimizer import LayerwiseAdamW, layer_scales

    model = _tiny_model()
    optimizer = LayerwiseAdamW(learning_rate=LR, weight_decay=0.0,
                               layer_scales=layer_scales(model, 0.5))
    steps = _one_step(optimizer, model, gradient=1.0)
    np.testing.assert_allclose(steps["head_dense"], -LR, rtol=1e-4)
    np.testing.assert_allclose(steps["conv1"], -LR * 0.5, rtol=1e-4)
    np.testing.assert_allclose(steps["conv0"], -LR * 0.25, rtol=1e-4)


def test_weight_decay_follows_the_rate_of_each_stage() -> None:
    import keras

    from edgecls.train.optimizer import LayerwiseAdamW, layer_scales

    model = _tiny_model()
    weights = {name: keras.ops.convert_to_numpy(v) for name, v in _kernels(model).items()}
    optimizer = LayerwiseAdamW(learning_rate=LR, weight_decay=0.5,
                               layer_scales=layer_scales(model, 0.5))
    steps = _one_step(optimizer, model, gradient=0.0)  # Adam moves nothing, decay shrinks
    for name, scale in (("head_dense", 1.0), ("conv1", 0.5), ("conv0", 0.25)):
        np.testing.assert_allclose(steps[name], -weights[name] * 0.5 * LR * scale,
                                   rtol=1e-4, atol=1e-7)


def test_under_a_distribution_strategy() -> None:
    """The mirrored update path (per-replica variables) finds each variable's rate."""
    import keras
    import tensorflow as tf

    from edgecls.train.optimizer import LayerwiseAdamW, layer_scales

    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope():
        model = _tiny_model()
        optimizer = LayerwiseAdamW(learning_rate=LR, weight_decay=0.0,
                                   layer_scales=layer_scales(model, 0.5))
        optimizer.build(model.trainable_variables)
    before = {name: keras.ops.convert_to_numpy(v) for name, v in _kernels(model).items()}
    variables = model.trainable_variables
    strategy.run(tf.function(lambda: optimizer.apply(
        [tf.ones(v.shape) for v in variables], variables)))
    after = {name: keras.ops.convert_to_numpy(v) for name, v in _kernels(model).items()}
    np.testing.assert_allclose(after["conv0"] - before["conv0"], -LR * 0.25, rtol=1e-4)
    np.testing.assert_allclose(after["head_dense"] - before["head_dense"], -LR, rtol=1e-4)


def test_off_is_todays_adamw_and_unit_scales_change_nothing() -> None:
    import keras

    from edgecls.train.optimizer import LayerwiseAdamW, make_optimizer

    model = _tiny_model()
    config = TrainConfig(ema=0.9).validate()
    plain = make_optimizer(model, FINETUNE, config, LR)
    assert type(plain) is keras.optimizers.AdamW and plain.use_ema
    today = keras.optimizers.AdamW(learning_rate=LR, weight_decay=config.weight_decay,
                                   use_ema=True, ema_momentum=0.9)
    assert {**plain.get_config(), "name": ""} == {**today.get_config(), "name": ""}
    head = make_optimizer(model, Phase("head", 1, LR),
                          TrainConfig(layer_lr_decay=0.5).validate(), LR)
    assert type(head) is keras.optimizers.AdamW  # the decay is for fine-tuning only

    twin = keras.models.clone_model(model)
    twin.set_weights(model.get_weights())
    reference = keras.optimizers.AdamW(learning_rate=LR, weight_decay=0.3)
    unit = LayerwiseAdamW(learning_rate=LR, weight_decay=0.3,
                          layer_scales=dict.fromkeys(_kernels(model), 1.0))
    for gradient in (1.0, -0.5, 2.0):  # AdamW's own weight decay vs the per-variable one
        _one_step(reference, model, gradient)
        _one_step(unit, twin, gradient)
    for ours, theirs in zip(twin.get_weights(), model.get_weights()):
        np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("value", [0, -0.5, 1.5, "0.8", True, None])
def test_invalid_decay_is_a_config_error(value: Any) -> None:
    with pytest.raises(ConfigError, match="layer_lr_decay must be in"):
        TrainConfig(layer_lr_decay=value).validate()


def test_resume_in_fine_tuning_keeps_the_rates(data: Path, backbone: Path, tmp_path: Path) -> None:
    """Interrupted in the fine-tune phase (with EMA): the checkpoint reloads with the
    same optimizer class, rates and step count, and the resumed run finishes."""
    import keras

    from edgecls.train.fit import train
    from edgecls.train.optimizer import LayerwiseAdamW, layer_scales

    run = RunDir(tmp_path / "run")
    config = tiny_config(data, run.root, weights=str(backbone), epochs=3, head_epochs=1,
                         fine_tune_fraction=1.0, layer_lr_decay=0.5, ema=0.9)
    with pytest.raises(KeyboardInterrupt):
        train(config, callbacks=[InterruptAt(epoch=1, batch=1)])
    saved = keras.saving.load_model(run.last_checkpoint, compile=True)
    assert isinstance(saved.optimizer, LayerwiseAdamW) and saved.optimizer.use_ema
    assert saved.optimizer.layer_scales == layer_scales(saved, 0.5)
    scales = dict(zip((v.path for v in saved.optimizer._trainable_variables),
                      saved.optimizer._variable_scales))
    assert scales["conv0/kernel"] == 0.25 and scales["head_dense/kernel"] == 1.0
    steps = int(saved.optimizer.iterations.numpy())
    assert steps > 0
    assert train(config, resume=True).epochs == 3
    resumed = keras.saving.load_model(run.last_checkpoint, compile=True)
    assert isinstance(resumed.optimizer, LayerwiseAdamW)
    assert int(resumed.optimizer.iterations.numpy()) > steps
