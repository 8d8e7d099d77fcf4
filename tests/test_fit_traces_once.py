"""A fit traces its train step once: ``build_for_fit`` creates the optimizer, loss and
metric variables before the first trace, where TensorFlow would otherwise trace the step
again after the first trace created them (seconds per fit on a real backbone)."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.images import write_image_folder
from helpers.runs import make_run, tiny_config


@pytest.fixture
def traces(monkeypatch) -> dict[str, int]:
    """How many times Keras traced a train step and a test step."""
    from keras.src.backend.tensorflow.trainer import TensorFlowTrainer

    counts = {"train_step": 0, "test_step": 0}
    for name in counts:
        step = getattr(TensorFlowTrainer, name)

        def counted(self, data, step=step, name=name):
            counts[name] += 1
            return step(self, data)

        monkeypatch.setattr(TensorFlowTrainer, name, counted)
    return counts


def test_training_traces_its_steps_once(traces: dict[str, int], tmp_path: Path) -> None:
    from edgecls.train.fit import train

    data = write_image_folder(tmp_path / "images", {"circle_r": 12, "square_g": 12})
    train(tiny_config(data, tmp_path / "run", epochs=2))
    assert traces == {"train_step": 1, "test_step": 1}


def test_structured_fine_tune_traces_its_step_once(traces: dict[str, int], tmp_path: Path) -> None:
    from edgecls.optimize.structured import StructuredConfig, structured_prune_run
    from helpers.tune import tiny_mbconv

    run = make_run(tmp_path, epochs=1, model=lambda: tiny_mbconv((32, 32), 3, False, None))
    traces.update(train_step=0, test_step=0)  # make_run's own fit is plain Keras
    config = StructuredConfig(ratio=0.5, epochs=1, batch_size=16, distill=True, augment=False)
    report = structured_prune_run(run, tmp_path / "narrow", config)
    assert report.after.macs < report.before.macs and len(report.val_accuracy) == 2
    assert traces["train_step"] == 1
