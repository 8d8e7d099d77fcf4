"""`edgecls run` on a newcomer's folders and paths (regressions found by running the CLI
as a newcomer): one bad photo in a folder, macOS resource forks, a run folder as model."""

from __future__ import annotations

import logging

import cv2
import numpy as np
import pytest

from edgecls.errors import DataError, ModelError
from edgecls.runtime.backends import backend_for_suffix
from edgecls.live.sources import FolderSource


def test_a_bad_file_in_a_folder_is_skipped_with_a_warning(tmp_path, caplog):
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"img{i}.png"), np.full((8, 8, 3), i, np.uint8))
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "._img0.png").write_bytes(b"\x00\x05\x16\x07 resource fork")  # copied from a Mac
    source = FolderSource(tmp_path)
    with caplog.at_level(logging.WARNING):
        frames = list(source)
    assert [f.index for f in frames] == [0, 1, 2]
    assert [f.name.rsplit("/", 1)[-1] for f in frames] == ["img0.png", "img1.png", "img2.png"]
    assert source.skipped == [tmp_path / "empty.jpg"]
    assert "skipped" in caplog.text and "empty.jpg" in caplog.text


def test_a_single_bad_file_is_still_an_error(tmp_path):
    bad = tmp_path / "empty.jpg"
    bad.write_bytes(b"")
    with pytest.raises(DataError):
        list(FolderSource(bad))


def test_a_folder_given_as_model_names_the_models_inside(tmp_path):
    run = tmp_path / "run"
    (run / "export").mkdir(parents=True)
    (run / "export" / "model_int8.tflite").write_bytes(b"x")
    with pytest.raises(ModelError, match="is a folder") as caught:
        backend_for_suffix(run)
    assert "model_int8.tflite" in caught.value.hint
    with pytest.raises(ModelError, match="is a folder") as caught:
        backend_for_suffix(tmp_path / "run" / "export" / "..")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="is a folder") as caught:
        backend_for_suffix(tmp_path / "empty")
    assert "edgecls export" in caught.value.hint


def test_saved_models_are_readable_like_any_file_the_user_writes(tmp_path):
    """best.keras was created owner-only (0600, mkstemp's mode): a service user or a
    colleague could not read the run's model while every other file of the run was 0644."""
    import os

    import keras

    from edgecls.atomic import save_keras_model_atomic

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    previous = os.umask(0o022)
    try:
        save_keras_model_atomic(model, tmp_path / "best.keras")
    finally:
        os.umask(previous)
    assert (tmp_path / "best.keras").stat().st_mode & 0o777 == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["best.keras"]


def test_bench_says_how_many_held_out_images_it_really_scored():
    """A held-out file that does not decode was counted as scored ("scored on the 58")."""
    from rich.console import Console

    from edgecls.cli.bench import _warn_about_selection

    selection = {"mode": "held_out", "images_used": 58, "images_given": 314,
                 "excluded_as_training": 256, "held_out_known": True}
    record = {"file": "m.tflite", "accuracy": {"images": 57, "images_skipped": 1, "selection": selection}}
    console = Console(record=True, width=200)
    _warn_about_selection([record], console)
    assert "scored on 57 readable of the 58 of 314 images" in console.export_text()


def test_export_and_evaluate_refuse_an_unfinished_run_before_tensorflow_loads(tmp_path):
    """A run without best.keras (training interrupted before its first epoch ended) is
    named as such in one line, before TensorFlow is imported (tens of seconds)."""
    import subprocess
    import sys

    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("model: tiny\n")
    code = ("import sys\n"
            "sys.argv = ['edgecls', *sys.argv[1:]]\n"
            "from edgecls.cli import main\n"
            "try:\n"
            "    main()\n"
            "finally:\n"
            "    print('tensorflow imported:', 'tensorflow' in sys.modules)\n")
    for command in ("export", "evaluate"):
        proc = subprocess.run([sys.executable, "-c", code, command, str(run)],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 2, proc.stderr[-2000:]
        assert proc.stderr.startswith("error:") and "best.keras is missing" in proc.stderr, proc.stderr
        assert "tensorflow imported: False" in proc.stdout


def test_explain_leaves_hidden_files_of_a_folder_out(tmp_path):
    from edgecls.explain.inputs import collect_images

    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "._a.png").write_bytes(b"\x00\x05\x16\x07")
    (tmp_path / ".thumbnails").mkdir()
    cv2.imwrite(str(tmp_path / ".thumbnails" / "b.png"), np.zeros((8, 8, 3), np.uint8))
    assert [i.path.name for i in collect_images([tmp_path])] == ["a.png"]
