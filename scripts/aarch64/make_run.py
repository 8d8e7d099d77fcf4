"""Makes a small finished run directory for the aarch64 check: split, labels, best.keras.

Usage: make_run.py DATA_DIR RUN_DIR [--model efficientnet_lite0] [--size 160] [--epochs 3]

A pretrained backbone (EfficientNet-Lite0's offline ImageNet weights) with a new head
trained on a frozen backbone: a few seconds of training, confident predictions, so that
INT8 kernels on x86 and aarch64 must agree on every top-1 label. The run follows the
layout contract of ``edgecls.rundir`` so that ``edgecls export RUN`` takes it as is.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def make_run(data: Path, run: Path, model_name: str, size: int, epochs: int) -> Path:
    """Splits ``data`` into ``run``, trains the head, saves ``run/best.keras``."""
    import keras

    from edgecls.data.pipeline import load_arrays
    from edgecls.data.split import prepare_split
    from edgecls.models import build
    from edgecls.models.head import BACKBONE
    from edgecls.rundir import RunDir

    run.mkdir(parents=True, exist_ok=True)
    split = prepare_split(data, run)
    images, labels = load_arrays(split.items("train"), (size, size))
    keras.utils.set_random_seed(0)
    model = build(model_name, weights="imagenet", include_top=False,
                  num_classes=len(split.labels), input_size=size)
    model.get_layer(BACKBONE).trainable = False
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(images.astype("float32"), labels, epochs=epochs, batch_size=16, verbose=2)
    model.save(RunDir(run).best_model)
    return run


def main() -> None:
    """Parses the command line and makes the run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("run", type=Path)
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    make_run(args.data, args.run, args.model, args.size, args.epochs)


if __name__ == "__main__":
    main()
