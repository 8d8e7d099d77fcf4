"""The frozen-backbone ``head`` phase trained on cached backbone features.

While the backbone is frozen, every epoch of the ``head`` phase would compute the same
backbone features again. Instead the backbone runs once per val image and once per
training image, plus ``head_cache_views`` augmented copies of each training image (the
run's own augmentation), and the head trains on those features in memory: each epoch
sees every training image once, as one of its cached views picked at random, so the
steps per epoch, the learning-rate schedule, loss, class weights and optimizer are the
image path's. The head is trained through a small Keras model that calls the full
model's own head layers (``edgecls.models.head``), so the weights it learns are the full
model's, and the run's checkpoints (``best.keras``, ``last.keras``) stay full models.

The cache holds the output of ``head_pool`` (global average pooling has no weights, so
nothing trainable is skipped) as float32: ``4 x C`` bytes per image and view, where C is
the backbone's channel count (5 KB for EfficientNet-Lite0's 1280 channels: about 45 MB
for 3,000 training images with 2 augmented views each).

Features are computed in inference mode, so any dropout inside the backbone is off (the
image path leaves it on). Batch-level recipes that the cache cannot reproduce keep the
head phase on images: class-balanced sampling (``imbalance: sampling``) and mixup/cutmix.

The cache is used only under the default tf.distribute strategy (one device). Under a
non-default strategy (MirroredStrategy, MultiWorkerMirroredStrategy) the head phase
trains on images as before, as it does when ``head_cache`` is off, when the model lacks
the standard head layout, or when the cache would not fit in ``memory_budget`` bytes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgecls.config import from_dict
from edgecls.data.augment import AugmentConfig, build_augmentation
from edgecls.data.pipeline import DEFAULT_MEMORY_BUDGET, make_dataset
from edgecls.models.float_model import build_for_fit
from edgecls.models.head import BACKBONE, HEAD_LAYERS
from edgecls.train.config import TrainConfig
from edgecls.train.phases import Phase

log = logging.getLogger(__name__)

ProgressBar = Callable[[str, int], Any]  # (task name, first epoch) -> Keras callback
FEATURE_BYTES = 4  # float32


@dataclass
class FeatureCache:
    """Backbone features of a run's train and val images.

    Attributes:
        train: (N, 1 + views, C) float32; view 0 is the image itself.
        train_labels: (N,) int32 class indices.
        val: (M, C) float32 features of the val images.
        val_labels: (M,) int32.
        seconds: wall time the backbone took to compute them.
    """

    train: np.ndarray
    train_labels: np.ndarray
    val: np.ndarray
    val_labels: np.ndarray
    seconds: float

    @property
    def nbytes(self) -> int:
        return int(self.train.nbytes + self.val.nbytes)


def cache_applies(model: Any, config: TrainConfig, phase: Phase, split: Any,
                  memory_budget: int = DEFAULT_MEMORY_BUDGET) -> bool:
    """True when ``phase`` trains on cached features (see the module docstring)."""
    import tensorflow as tf

    if phase.name != "head" or not config.head_cache or tf.distribute.has_strategy():
        return False
    augment = from_dict(AugmentConfig, config.augment or {}, source="augment")
    mixing = augment.enabled and (augment.mixup or augment.cutmix)
    if config.imbalance_method() == "sampling" or mixing:
        log.info("head_cache: balanced sampling and mixup/cutmix need images; the head "
                 "trains on images")
        return False
    if not _has_standard_head(model):
        log.warning("head_cache: the model has no %s layout; the head trains on images",
                    "/".join(HEAD_LAYERS))
        return False
    channels = int(model.get_layer(HEAD_LAYERS[0]).output.shape[-1])
    images = len(split.items("train")) * (1 + config.head_cache_views) + len(split.items("val"))
    needed = images * channels * FEATURE_BYTES
    if needed > memory_budget:
        log.warning("head_cache: %.1f GB of features exceed the %.1f GB budget; the head "
                    "trains on images", needed / 1e9, memory_budget / 1e9)
        return False
    return True


def fit_head_on_cache(model: Any, split: Any, config: TrainConfig, phase: Phase,
                      initial_epoch: int, class_weight: dict[int, float] | None,
                      callbacks: list[Any], progress: ProgressBar | None = None) -> FeatureCache:
    """Caches the features, then trains ``model``'s head layers on them for ``phase``.

    ``model`` must be compiled for the phase (``fit._prepare_phase``): its optimizer
    (with its moments and step count when resuming), loss and metrics are reused.
    ``callbacks`` see the small head model as ``self.model``; checkpointing callbacks
    must save ``model`` itself (``RunRecorder(saved_model=model)``).

    Returns:
        The cache it trained on.
    """
    cache = compute_features(model, split, config, progress)
    head = head_model(model)
    _compile_like(head, model, config)
    classes = len(split.labels)
    train_ds = _train_dataset(cache, classes, config.batch_size, config.seed)
    val_ds = _val_dataset(cache, classes, config.batch_size)
    build_for_fit(head, train_ds)
    head.fit(train_ds, validation_data=val_ds, epochs=phase.epochs, initial_epoch=initial_epoch,
             class_weight=class_weight, callbacks=callbacks, shuffle=False, verbose=0)
    return cache


def compute_features(model: Any, split: Any, config: TrainConfig,
                     progress: ProgressBar | None = None) -> FeatureCache:
    """Runs the frozen backbone (and pooling) once over the train and val images.

    Args:
        model: a full model with the standard head layout.
        split: the run's ``Split``.
        config: ``img_size``, ``batch_size``, ``augment``, ``seed`` and
            ``head_cache_views`` are used.
        progress: draws the progress of each pass (a Keras callback receiving the
            ``on_predict_*`` calls), from a task name and 1.
    """
    import keras

    started = time.perf_counter()
    extractor = keras.Model(model.inputs, model.get_layer(HEAD_LAYERS[0]).output,
                            name="backbone_features")
    augmentation = build_augmentation(from_dict(AugmentConfig, config.augment or {},
                                                source="augment"), config.seed)
    views = config.head_cache_views if augmentation is not None else 0
    train_items, val_items = split.items("train"), split.items("val")
    train = _predict(extractor, _image_batches(train_items, config, augmentation, views),
                     f"head features: train x{1 + views}", progress)
    val = _predict(extractor, _image_batches(val_items, config, None, 0),
                   "head features: val", progress)
    return FeatureCache(train=train.reshape(len(train_items), 1 + views, -1),
                        train_labels=_labels(train_items), val=val, val_labels=_labels(val_items),
                        seconds=time.perf_counter() - started)


def head_model(model: Any) -> Any:
    """A Keras model from pooled features to class scores through ``model``'s own head
    layers (the same layer objects, so training it trains ``model``)."""
    import keras

    channels = int(model.get_layer(HEAD_LAYERS[0]).output.shape[-1])
    features = keras.Input(shape=(channels,), name="features")
    outputs = features
    for name in HEAD_LAYERS[1:]:
        outputs = model.get_layer(name)(outputs)
    return keras.Model(features, outputs, name="head_on_features")


def _has_standard_head(model: Any) -> bool:
    names = [layer.name for layer in model.layers]
    if BACKBONE not in names or names[-len(HEAD_LAYERS):] != list(HEAD_LAYERS):
        return False
    return not model.get_layer(HEAD_LAYERS[0]).weights  # pooling must hold no weights


def _compile_like(head: Any, model: Any, config: TrainConfig) -> None:
    """Compiles ``head`` as ``model`` is compiled, with the same optimizer object."""
    import keras

    compiled = keras.saving.deserialize_keras_object(model.get_compile_config())
    compiled.update(optimizer=model.optimizer, loss=model.loss, jit_compile=config.jit_compile)
    head.compile(**compiled)


def _image_batches(items: Sequence[Any], config: TrainConfig, augmentation: Any, views: int):
    """Batches of images in split order; with ``views``, each image is followed by
    ``views`` augmented copies of it (so the batch holds ``batch_size * (1 + views)``)."""
    import tensorflow as tf

    size = (config.img_size, config.img_size)
    ds = make_dataset(items, size, config.batch_size, training=False).map(lambda x, y: x)
    if not views:
        return ds

    def with_views(images):
        copies = [images] + [tf.clip_by_value(augmentation(images, training=True), 0.0, 255.0)
                             for _ in range(views)]
        return tf.reshape(tf.stack(copies, axis=1), (-1, *size, 3))

    return ds.map(with_views, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def _predict(extractor: Any, batches: Any, task: str, progress: ProgressBar | None) -> np.ndarray:
    bar = progress(task, 1) if progress else None
    try:
        features = extractor.predict(batches, verbose=0, callbacks=[bar] if bar else None)
    finally:
        if bar is not None:  # stop live progress bars when interrupted
            bar.on_predict_end()
    return np.asarray(features, dtype=np.float32)


def _labels(items: Sequence[Any]) -> np.ndarray:
    return np.fromiter((label for _, label in items), dtype=np.int32, count=len(items))


def _train_dataset(cache: FeatureCache, classes: int, batch_size: int, seed: int):
    """Every image once per epoch, shuffled, each as one of its views picked at random."""
    import tensorflow as tf

    count, copies, _ = cache.train.shape
    onehot = np.eye(classes, dtype=np.float32)[cache.train_labels]
    ds = tf.data.Dataset.from_tensor_slices((cache.train, onehot))
    ds = ds.shuffle(count, seed=seed, reshuffle_each_iteration=True)
    if copies == 1:
        ds = ds.map(lambda views, label: (views[0], label))
    else:
        picks = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
        ds = tf.data.Dataset.zip(ds, picks).map(
            lambda pair, pick: (pair[0][pick % copies], pair[1]))
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def _val_dataset(cache: FeatureCache, classes: int, batch_size: int):
    import tensorflow as tf

    onehot = np.eye(classes, dtype=np.float32)[cache.val_labels]
    return tf.data.Dataset.from_tensor_slices((cache.val, onehot)).batch(batch_size)
