"""Tiny trained runs and a tiny model family, for tests that need a run directory or a
quick training without a real backbone. Importing this module registers the family
``TINY`` ("tiny_cnn") in the model registry."""

from __future__ import annotations

import fcntl
import shutil
from pathlib import Path
from typing import Any, Callable

from edgecls.models import MODELS
from edgecls.train.config import TrainConfig
from helpers.images import write_image_folder

CLASSES = {"circle_r": 40, "square_g": 40, "circle_b": 40}
SIZE = 32


def tiny_model(size: int = SIZE, classes: int = 3, name: str = "tiny"):
    """A small convnet (RGB 0..255 in, softmax out) shaped like the real backbones."""
    import keras

    inputs = keras.Input((size, size, 3), name="image")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0)(inputs)
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same", activation="relu")(x)
    x = keras.layers.Conv2D(16, 1, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(classes, activation="softmax")(x)
    return keras.Model(inputs, outputs, name=name)


def make_run(root: Path, epochs: int = 12, model: Callable[[], Any] | None = None,
             learning_rate: float = 0.01) -> Path:
    """A finished run dir: generated images, split.json/labels.txt, a trained best.keras.

    Args:
        root: folder for ``images/`` and ``run/``.
        epochs: training epochs on the train split.
        model: builds the Keras model (``SIZE`` px in, one output per class in
            ``CLASSES``), called after the random seed is set; default ``tiny_model``.
        learning_rate: Adam learning rate.
    """
    import keras

    from edgecls.data.pipeline import load_arrays
    from edgecls.data.split import prepare_split

    data = write_image_folder(root / "images", CLASSES, size=SIZE)
    run = root / "run"
    run.mkdir(parents=True)
    split = prepare_split(data, run)
    images, labels = load_arrays(split.items("train"), (SIZE, SIZE))
    keras.utils.set_random_seed(0)
    model = (model or tiny_model)()
    model.compile(keras.optimizers.Adam(learning_rate), "sparse_categorical_crossentropy")
    model.fit(images.astype("float32"), labels, epochs=epochs, batch_size=16, verbose=0)
    model.save(run / "best.keras")
    return run


class TrainedRuns:
    """``make_run`` once per epoch count for a whole test session, handed out as copies.

    A copy is a fresh ``<root>/run`` folder (whatever a test writes there stays its own)
    beside a ``<root>/images`` link to the shared generated images; both runs come from
    the same images and the same seed, so a copy is what ``make_run`` would have made.
    ``cache`` may be shared by the session's test processes: each run is trained once.
    """

    def __init__(self, cache: Path) -> None:
        self._cache = cache

    def copy(self, root: Path, epochs: int = 12) -> Path:
        """A finished run trained ``epochs`` epochs on the tiny default model, under ``root``."""
        built = build_once(self._cache / f"epochs{epochs}", lambda folder: make_run(folder, epochs=epochs))
        root.mkdir(parents=True, exist_ok=True)
        (root / "images").symlink_to(built / "images", target_is_directory=True)
        return Path(shutil.copytree(built / "run", root / "run"))


def build_once(folder: Path, build: Callable[[Path], Any]) -> Path:
    """``folder`` once ``build(folder)`` has filled it, in one of the processes sharing it
    (pytest-xdist workers): the others wait on its lock file, then reuse it."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f"{folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / ".complete").is_file():
            shutil.rmtree(folder, ignore_errors=True)  # a build that failed part way
            folder.mkdir()
            build(folder)
            (folder / ".complete").touch()
    return folder


TINY = "tiny_cnn"


def tiny_cnn(input_size: tuple[int, int] | None, num_classes: int | None, include_top: bool,
             weights: Any, dropout: float = 0.2) -> Any:
    """A two-convolution family with the registry's backbone/head contract."""
    import keras

    from edgecls.models.weights import finish_model, parse_weights

    image = keras.Input(shape=(*(input_size or (32, 32)), 3), name="image")
    x = keras.layers.Rescaling(1.0 / 255.0, name="normalize")(image)
    for index, filters in enumerate((8, 16)):
        x = keras.layers.Conv2D(filters, 3, strides=2, use_bias=False, name=f"conv{index}")(x)
        x = keras.layers.BatchNormalization(name=f"bn{index}")(x)
        x = keras.layers.ReLU(name=f"relu{index}")(x)
    net = keras.Model(image, x, name=TINY)
    return finish_model(net, TINY, num_classes, dropout, parse_weights(weights))


if TINY not in MODELS:
    MODELS.register(TINY)(tiny_cnn)


class InterruptAt:
    """Keras callback raising KeyboardInterrupt (as Ctrl+C would) inside an epoch."""

    def __new__(cls, epoch: int, batch: int):
        import keras

        class _Interrupt(keras.callbacks.Callback):
            def on_train_batch_end(self, index: int, logs: dict | None = None) -> None:
                if self._epoch == epoch and index == batch:
                    raise KeyboardInterrupt

            def on_epoch_begin(self, index: int, logs: dict | None = None) -> None:
                self._epoch = index

        return _Interrupt()


def tiny_config(data: Path, out: Path, **overrides: Any) -> TrainConfig:
    """A config that trains the tiny CNN on 32 px images in a few seconds."""
    values = dict(data=str(data), out=str(out), model=TINY, weights="none", img_size=32, epochs=2,
                  batch_size=8, lr=0.01, patience=None, augment={"enabled": False})
    values.update(overrides)
    return TrainConfig(**values)


def temp_files(root: Path) -> list[Path]:
    """Leftovers of interrupted atomic writes."""
    return [p for p in root.rglob(".*") if p.is_file()]
