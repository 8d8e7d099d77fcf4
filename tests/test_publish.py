"""Exports publish as a whole and clean up after killed runs: a process killed in the
middle of publishing is rolled forward by the next export, stale scratch folders and
temporary files go, and `train --resume` removes partial checkpoint saves."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from edgecls.errors import ConfigError
from edgecls.export.manifest import Manifest
from edgecls.export.publish import JOURNAL_NAME, WORK_PREFIX, export_transaction, recover
from edgecls.rundir import RunDir


def _manifest(tag: str) -> Manifest:
    return Manifest(run=tag, model="best.keras", labels=["a", "b"], input_size=(8, 8),
                    max_drop_pp=1.0, held_out_images=2, held_out_by_split={"test": 2},
                    float_accuracy=1.0, calibration=None,
                    cpu="test")


def _artifact(folder: Path, name: str, content: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(content)
    if path.suffix == ".xml":
        path.with_suffix(".bin").write_text(content + " weights")
    return path


def _publish(out: Path, tag: str) -> None:
    with export_transaction(out) as transaction:
        for name in ("model_int8.tflite", "model_int8.xml"):
            transaction.stage(_artifact(transaction.work / "attempt", name, tag), out / name)
        transaction.commit(_manifest(tag))


def _published(out: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(out.iterdir()) if p.is_file()}


def test_commit_publishes_everything_and_leaves_nothing_else(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _publish(out, "v1")
    files = _published(out)
    assert sorted(files) == ["manifest.json", "model_int8.bin", "model_int8.tflite", "model_int8.xml"]
    assert json.loads(files["manifest.json"])["run"] == "v1"
    assert files["model_int8.bin"] == "v1 weights"


def test_failure_before_commit_keeps_the_old_set(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _publish(out, "v1")
    before = _published(out)
    with pytest.raises(RuntimeError, match="gate crashed"):
        with export_transaction(out) as transaction:
            transaction.stage(_artifact(transaction.work / "a", "model_int8.tflite", "v2"),
                              out / "model_int8.tflite")
            raise RuntimeError("gate crashed")
    assert _published(out) == before


def test_debris_of_killed_runs_is_removed(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _publish(out, "v1")
    stale = out / f"{WORK_PREFIX}k1ll3d"
    _artifact(stale / "tflite-int8-first-x", "model_int8.tflite", "half")
    for name in (".model_int8.tflite.abc123.tmp", ".model_int8.xml.incoming", ".manifest.json.x.tmp"):
        (out / name).write_text("partial")
    done = recover(out)
    assert len(done) == 4 and not stale.exists()
    assert sorted(_published(out)) == ["manifest.json", "model_int8.bin", "model_int8.tflite",
                                       "model_int8.xml"]


def test_second_export_into_the_same_folder_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with export_transaction(out):
        with pytest.raises(ConfigError, match="another edgecls export is writing"):
            with export_transaction(out):
                pass


_KILLED_MID_PUBLISH = r"""
import os, signal, sys
from pathlib import Path
sys.path.insert(0, sys.argv[2])
import test_publish
from edgecls.export import publish

real_replace, moves = os.replace, []
def replace_then_die(src, dst):
    real_replace(src, dst)
    if Path(src).parent.name == "publish" and Path(dst).parent.name == "out":
        moves.append(dst)
    if len(moves) == 2:  # the .tflite and the .bin are in; the .xml and manifest are not
        os.kill(os.getpid(), signal.SIGKILL)
publish.os.replace = replace_then_die
test_publish._publish(Path(sys.argv[1]), "v2")
"""


def test_killed_in_the_middle_of_publishing_is_rolled_forward(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _publish(out, "v1")
    killed = subprocess.run([sys.executable, "-c", _KILLED_MID_PUBLISH, str(out),
                             str(Path(__file__).parent)], check=False, capture_output=True, text=True,
                            timeout=120)
    assert killed.returncode == -9, killed.stderr
    half = _published(out)
    assert JOURNAL_NAME in half and json.loads(half["manifest.json"])["run"] == "v1"
    assert half["model_int8.xml"] == "v1" and half["model_int8.tflite"] == "v2"  # mixed
    with export_transaction(out):  # the next export finishes the publish first
        pass
    after = _published(out)
    assert sorted(after) == ["manifest.json", "model_int8.bin", "model_int8.tflite", "model_int8.xml"]
    assert json.loads(after["manifest.json"])["run"] == "v2"
    assert {after[n] for n in ("model_int8.tflite", "model_int8.xml")} == {"v2"}


def test_resume_removes_partial_checkpoint_saves(tmp_path: Path) -> None:
    from edgecls.train.checkpoint import load_state, remove_partial_files  # imports Keras

    run = RunDir(tmp_path / "run")
    run.checkpoints.mkdir(parents=True)
    debris = [run.root / ".best.k1ll3d.partial.keras", run.checkpoints / ".last.x.partial.keras",
              run.checkpoints / ".state.json.y.tmp"]
    for path in debris:
        path.write_bytes(b"partial")
    keep = run.root / "best.keras"
    keep.write_bytes(b"model")
    assert load_state(run) is None  # no finished checkpoint: nothing to resume from
    assert not any(p.exists() for p in debris) and keep.exists()
    assert remove_partial_files(run) == []
