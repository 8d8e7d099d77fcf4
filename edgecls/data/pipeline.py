"""Input pipelines: tf.data for training, numpy arrays for evaluation and calibration.

Both go through ``edgecls.runtime.preprocess.prepare`` semantics (decode as RGB, stretch
resize with bilinear interpolation, 0..255), so a model sees in training exactly what it
sees on the device. Datasets that fit in ``memory_budget`` bytes are decoded once with
OpenCV (the runtime's own code, in parallel threads) and served from memory; larger ones
are decoded by tf.data in parallel on the fly and cached to disk when a folder is given.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from edgecls.data.augment import AugmentConfig, build_augmentation
from edgecls.runtime.preprocess import prepare, read_image_bgr

DEFAULT_MEMORY_BUDGET = 3 * 1024**3

Items = Sequence[tuple[Path, int]]


def load_arrays(items: Items, image_size: tuple[int, int],
                on_progress: Callable[[int, int], None] | None = None,
                workers: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Decodes and resizes images exactly as the runtime does.

    Returns:
        (uint8 array (N, h, w, 3) RGB, int32 labels (N,)).
    """
    height, width = image_size
    images = np.empty((len(items), height, width, 3), dtype=np.uint8)
    labels = np.fromiter((label for _, label in items), dtype=np.int32, count=len(items))

    def load(index: int) -> int:
        images[index] = prepare(read_image_bgr(items[index][0]), image_size).astype(np.uint8)
        return index

    with ThreadPoolExecutor(max_workers=workers or 2 * (os.cpu_count() or 1)) as pool:
        for done, _ in enumerate(pool.map(load, range(len(items))), start=1):
            if on_progress:
                on_progress(done, len(items))
    return images, labels


def make_dataset(items: Items, image_size: tuple[int, int], batch_size: int, training: bool,
                 augment: AugmentConfig | None = None, seed: int = 0,
                 memory_budget: int = DEFAULT_MEMORY_BUDGET, cache_dir: str | Path | None = None,
                 balanced: bool = False):
    """A batched, prefetched ``tf.data.Dataset`` of (float32 RGB 0..255 images, int32 labels).

    Args:
        items: (path, label index) pairs, e.g. ``Split.items("train")``.
        image_size: (height, width) of the model input.
        batch_size: images per batch.
        training: shuffle each epoch and augment; otherwise keep order, never augment.
        augment: augmentation strengths (default ``AugmentConfig()`` when training).
        seed: shuffle and augmentation seed.
        memory_budget: decode up front with OpenCV if the uint8 images fit in this many bytes.
        cache_dir: where tf.data caches decoded images when they do not fit in memory.
        balanced: (training only) draw every image's class uniformly at random, then an
            image of that class, so an epoch of ``len(items)`` images sees each class
            about equally often (rare classes repeat, frequent ones are subsampled).
    """
    import tensorflow as tf

    if not items:
        raise ValueError("make_dataset needs at least one image")
    height, width = image_size
    in_memory = len(items) * height * width * 3 <= memory_budget
    if training and balanced:
        ds = _class_balanced(items, image_size, in_memory, cache_dir, seed)
    elif in_memory:
        ds = tf.data.Dataset.from_tensor_slices(load_arrays(items, image_size))
    else:
        ds = _streaming_dataset(items, image_size, cache_dir)
    if training and not balanced:
        ds = ds.shuffle(min(len(items), 10_000), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size).map(lambda x, y: (tf.cast(x, tf.float32), y),
                                  num_parallel_calls=tf.data.AUTOTUNE)
    if training:
        ds = _augmented(ds, augment or AugmentConfig(), seed)
    return ds.prefetch(tf.data.AUTOTUNE)


def _class_balanced(items: Items, image_size: tuple[int, int], in_memory: bool,
                    cache_dir: str | Path | None, seed: int):
    """``len(items)`` examples per pass, each from a uniformly drawn class; every class
    is a stream of its own images, shuffled and repeated."""
    import tensorflow as tf

    ordered = sorted(items, key=lambda item: item[1])  # stable: one contiguous run per class
    labels = [label for _, label in ordered]
    classes = sorted(set(labels))
    starts = [labels.index(c) for c in classes] + [len(labels)]
    if in_memory:
        images, label_array = load_arrays(ordered, image_size)
    streams = []
    for index, (start, end) in enumerate(zip(starts, starts[1:])):
        if in_memory:  # slices are views: no copy of the decoded images
            stream = tf.data.Dataset.from_tensor_slices((images[start:end], label_array[start:end]))
        else:
            folder = Path(cache_dir) / f"class{classes[index]}" if cache_dir else None
            stream = _streaming_dataset(ordered[start:end], image_size, folder)
        streams.append(stream.shuffle(min(end - start, 10_000), seed=seed + index,
                                      reshuffle_each_iteration=True).repeat())
    mixed = tf.data.Dataset.sample_from_datasets(
        streams, weights=[1.0 / len(streams)] * len(streams), seed=seed,
        rerandomize_each_iteration=True)
    return mixed.take(len(items))


def _streaming_dataset(items: Items, image_size: tuple[int, int], cache_dir: str | Path | None):
    """Parallel decode + resize in tf.data (same conventions as ``prepare``)."""
    import tensorflow as tf

    paths = [str(p) for p, _ in items]
    labels = np.array([label for _, label in items], dtype=np.int32)

    def decode(path, label):
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        image.set_shape([None, None, 3])
        image = tf.image.resize(image, image_size, method="bilinear", antialias=False)
        return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8), label

    ds = tf.data.Dataset.from_tensor_slices((paths, labels))
    ds = ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE)
    if cache_dir:
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        return ds.cache(str(Path(cache_dir) / "images"))
    return ds


def _augmented(ds, config: AugmentConfig, seed: int):
    import tensorflow as tf

    augmentation = build_augmentation(config, seed)
    if augmentation is None:
        return ds
    return ds.map(lambda x, y: (tf.clip_by_value(augmentation(x, training=True), 0.0, 255.0), y),
                  num_parallel_calls=tf.data.AUTOTUNE)
