"""Training beyond one device with tf.distribute: two logical CPU devices (the mirrored
path several GPUs take) and two local worker processes with TF_CONFIG (the cluster path).

Each distributed run is a real `edgecls train` in fresh processes (logical devices and a
cluster must be set up before TensorFlow starts), compared with a single-process run.
"""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

import edgecls
from edgecls.data.split import Split
from edgecls.errors import ConfigError
from edgecls.rundir import RunDir
from edgecls.train.distribute import Cluster, read_cluster, worker_run_root
from helpers.cli import run_cli
from helpers.images import write_image_folder
from helpers.runs import tiny_config

TESTS = Path(__file__).resolve().parent
RUNNER = ("import sys, helpers.runs; from edgecls.cli import main; "  # registers tiny_cnn
          "sys.argv = ['edgecls', *sys.argv[1:]]; main()")
TIMEOUT = 900  # seconds; TensorFlow starts in 5-10 s on an idle machine, far slower when loaded
pytestmark = pytest.mark.timeout(TIMEOUT + 60)  # above the processes' own limit, which names them


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dist_images")
    return write_image_folder(root / "images", {"circle_r": 20, "square_g": 20, "circle_b": 20})


@pytest.fixture(scope="module")
def backbone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Backbone weights for the tiny CNN: runs start from them like from ImageNet weights
    (head phase, then fine-tuning), with BatchNorm frozen as in every pretrained run."""
    from helpers.runs import tiny_cnn

    path = tmp_path_factory.mktemp("backbone") / "tiny.weights.h5"
    tiny_cnn((32, 32), None, include_top=False, weights=None).save_weights(path)
    return path


def options(backbone: Path, **overrides) -> dict:
    """The tiny run's options (a larger val split, so one replica's accuracy would show)."""
    values = {"split": [0.6, 0.3, 0.1], "weights": str(backbone), **overrides}
    config = tiny_config(Path("unused"), Path("unused"), **values)
    return {k: v for k, v in vars(config).items() if k not in ("data", "out")}


@pytest.fixture(scope="module")
def single(data: Path, backbone: Path, tmp_path_factory: pytest.TempPathFactory) -> RunDir:
    """The same run in this process, on one device: the layout to match."""
    from edgecls.train.fit import train

    run = RunDir(tmp_path_factory.mktemp("single") / "run")
    train(tiny_config(data, run.root, **options(backbone)))
    return run


def layout(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


def launch(tmp: Path, args: list[str], runner: str = RUNNER, **env: str) -> subprocess.Popen:
    """`edgecls train ARGS` in a fresh process (tiny_cnn registered), scratch dirs in tmp."""
    scratch = tmp / "scratch"
    scratch.mkdir(exist_ok=True)
    environ = {k: v for k, v in os.environ.items() if k not in ("TF_CONFIG", "EDGECLS_CPU_REPLICAS")}
    environ.update(PYTHONPATH=os.pathsep.join([str(TESTS), str(Path(edgecls.__file__).parents[1])]),
                   TF_CPP_MIN_LOG_LEVEL="3", TMPDIR=str(scratch), **env)
    return subprocess.Popen([sys.executable, "-c", runner, "train", *args, "--no-progress"],
                            env=environ, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(process: subprocess.Popen) -> str:
    output, _ = process.communicate(timeout=TIMEOUT)
    assert process.returncode == 0, output
    return output


def train_args(data: Path, backbone: Path, out: Path, tmp: Path, **overrides) -> list[str]:
    config = tmp / "config.yaml"
    config.write_text(yaml.safe_dump(options(backbone, **overrides)))
    return ["--data", str(data), "--out", str(out), "--config", str(config)]


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def tf_config(ports: list[int], index: int) -> str:
    return json.dumps({"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                       "task": {"type": "worker", "index": index}})


def optimizer_steps(model_path: Path) -> int:
    import keras

    return int(keras.saving.load_model(model_path).optimizer.iterations.numpy())


def val_accuracy_of(run: RunDir) -> float:
    """The last checkpoint's accuracy on the val split, computed here on one device."""
    from edgecls.data.pipeline import load_arrays
    from edgecls.data.split import Split
    from edgecls.models.float_model import load_float_model, predict

    model = load_float_model(run.last_checkpoint)
    images, labels = load_arrays(Split.load(run.split).items("val"), (32, 32))
    return float(np.mean(np.argmax(predict(model, images, 16), axis=1) == labels))


def history(run: RunDir) -> list[dict[str, str]]:
    from edgecls.train.checkpoint import read_history

    return read_history(run)


def assert_like_single_process(run: RunDir, single: RunDir) -> None:
    """Same files, history columns, metrics keys and steps as the one-device run, and
    validation metrics over all replicas (not one replica's share of the val split)."""
    assert layout(run.root) == layout(single.root)
    assert run.history.read_text().splitlines()[0] == single.history.read_text().splitlines()[0]
    assert [row["epoch"] for row in history(run)] == ["1", "2"]
    assert json.loads(run.metrics.read_text()).keys() == json.loads(single.metrics.read_text()).keys()
    # batch_size is the global batch: as many optimizer steps as on one device
    assert optimizer_steps(run.last_checkpoint) == optimizer_steps(single.last_checkpoint)
    assert float(history(run)[-1]["val_accuracy"]) == pytest.approx(val_accuracy_of(run), abs=1e-5)


def test_mirrored_on_two_logical_cpus(mirrored: tuple[RunDir, str], single: RunDir) -> None:
    run, output = mirrored
    assert "on 2 mirrored replicas" in output
    assert "freshly-initialized weights" not in output  # tests/test_weights_reload.py
    assert_like_single_process(run, single)


def test_two_workers_write_one_run(data: Path, backbone: Path, single: RunDir,
                                   tmp_path: Path) -> None:
    run = RunDir(tmp_path / "run")
    ports = free_ports(2)
    args = train_args(data, backbone, run.root, tmp_path)
    workers = [launch(tmp_path, args, TF_CONFIG=tf_config(ports, i)) for i in range(2)]
    outputs = [finish(worker) for worker in workers]
    assert "2 replicas of 2 workers (this is worker 0)" in outputs[0]
    assert f"the chief writes the run directory {run.root}" in outputs[1]
    assert_like_single_process(run, single)
    assert list((tmp_path / "scratch").glob("edgecls-worker*")) == []  # worker 1's copy is gone


def epoch_of(run: RunDir) -> int:
    try:
        return json.loads(run.state.read_text())["epoch"]
    except (OSError, ValueError):
        return 0


@pytest.mark.slow  # four TensorFlow processes, and the chief needs ~30 s to miss the worker
def test_killed_worker_resumes(data: Path, backbone: Path, tmp_path: Path) -> None:
    """A worker killed mid-run stops the chief with a user error; --resume on both
    continues from the last finished epoch and trains every epoch exactly once."""
    epochs = 8
    run = RunDir(tmp_path / "run")
    args = train_args(data, backbone, run.root, tmp_path, epochs=epochs, weights="none")
    ports = free_ports(2)
    chief, worker = (launch(tmp_path, args, TF_CONFIG=tf_config(ports, i)) for i in range(2))
    scratch = RunDir(tmp_path / "scratch" / worker_run_root(run.root, Cluster(1, 2)).name)
    deadline = time.monotonic() + TIMEOUT
    while min(epoch_of(run), epoch_of(scratch)) < 2:  # both finished epoch 2
        assert chief.poll() is None and time.monotonic() < deadline, chief.communicate()[0]
        time.sleep(0.05)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    output, _ = chief.communicate(timeout=TIMEOUT)
    assert chief.returncode == 2, output
    assert "another worker of the cluster is gone" in output and "Traceback" not in output
    assert 2 <= epoch_of(run) < epochs

    ports = free_ports(2)
    resumed = [launch(tmp_path, ["--out", str(run.root), "--resume"], TF_CONFIG=tf_config(ports, i))
               for i in range(2)]
    for process in resumed:
        finish(process)
    assert [row["epoch"] for row in history(run)] == [str(e) for e in range(1, epochs + 1)]
    assert json.loads(run.state.read_text())["done"] is True
    steps = math.ceil(len(Split.load(run.split).items("train")) / 8)
    assert optimizer_steps(run.last_checkpoint) == epochs * steps
    assert run.metrics.is_file() and not scratch.root.exists()


BATCHNORM_CHECK = """
import numpy as np, keras
from edgecls.train.distribute import make_strategy, moving_statistics_sync
strategy, placement = make_strategy()
assert placement.replicas == 2
rng = np.random.default_rng(0)
x = rng.normal(size=(64, 4)).astype("float32") * np.linspace(1, 3, 64, dtype="float32")[:, None]
y = rng.integers(0, 2, 64)
for sync in (False, True):
    with strategy.scope():
        keras.utils.set_random_seed(0)
        inputs = keras.Input((4,))
        hidden = keras.layers.BatchNormalization()(keras.layers.Dense(4)(inputs))
        model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(hidden))
        model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False, validation_data=(x, y),
              callbacks=[moving_statistics_sync(strategy)] if sync else [])
    first, second = (v.numpy() for v in model.layers[2].moving_mean.value.values)
    print("sync" if sync else "free", float(np.abs(first - second).max()))
"""


# BATCHNORM_CHECK runs in the mirrored run's process once `edgecls train` is done (both need
# two logical CPUs: one TensorFlow start, not two), on the strategy the run made (a second
# strategy in one process would reuse its collective instance keys).
TRAIN_THEN_CHECK = f"""
import sys, helpers.runs
from edgecls.train import distribute, fit
made = []
fit.make_strategy = lambda *args, **kw: made.append(distribute.make_strategy(*args, **kw)) or made[-1]
from edgecls.cli import main
sys.argv = ['edgecls', *sys.argv[1:]]
try:
    main()
except SystemExit as exit_info:
    if exit_info.code:
        raise
distribute.make_strategy = lambda: made[0]
{BATCHNORM_CHECK}"""


@pytest.fixture(scope="module")
def mirrored(data: Path, backbone: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[RunDir, str]:
    """(run, output) of `edgecls train` on 2 logical CPUs, then BATCHNORM_CHECK's two lines."""
    tmp = tmp_path_factory.mktemp("mirrored")
    run = RunDir(tmp / "run")
    args = train_args(data, backbone, run.root, tmp)
    return run, finish(launch(tmp, args, TRAIN_THEN_CHECK, EDGECLS_CPU_REPLICAS="2"))


def test_batchnorm_statistics_agree_over_replicas(mirrored: tuple[RunDir, str]) -> None:
    """Keras lets each replica's BatchNorm moving statistics drift apart; the sync
    callback averages them before validation, so every replica (and the checkpoint)
    holds the same ones."""
    lines = [line.split() for line in mirrored[1].splitlines()]
    spread = dict(words for words in lines if len(words) == 2 and words[0] in ("free", "sync"))
    assert float(spread["free"]) > 1e-4  # what the callback fixes
    assert float(spread["sync"]) == 0.0


def test_tf_config_places_chief_and_workers(tmp_path: Path) -> None:
    def cluster(task: dict, **kinds: int) -> Cluster | None:
        spec = {k: [f"h{i}:1" for i in range(n)] for k, n in kinds.items()}
        return read_cluster({"TF_CONFIG": json.dumps({"cluster": spec, "task": task})})

    assert read_cluster({}) is None
    assert cluster({"type": "worker", "index": 1}, worker=3) == Cluster(rank=1, workers=3)
    assert cluster({"type": "chief", "index": 0}, chief=1, worker=2) == Cluster(rank=0, workers=3)
    assert cluster({"type": "worker", "index": 0}, chief=1, worker=2) == Cluster(rank=1, workers=3)
    out = tmp_path / "run"
    assert worker_run_root(out, Cluster(0, 2)) == out
    scratch = worker_run_root(out, Cluster(1, 2))
    assert scratch != out and scratch == worker_run_root(out, Cluster(1, 2))


@pytest.mark.parametrize(("tf_config", "message"), [
    ("{not json", "is not valid JSON"),
    ('{"cluster": {"worker": ["a:1"]}}', '"task"'),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 3}}', "worker 3 is not in"),
    ('{"cluster": {"worker": ["a:1"], "ps": ["b:1"]}, "task": {"type": "worker", "index": 0}}', "ps"),
    ('{"cluster": {"worker": "a:1"}, "task": {"type": "worker", "index": 0}}', "host:port"),
])
def test_malformed_tf_config_is_a_config_error(tf_config: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as error:
        read_cluster({"TF_CONFIG": tf_config})
    assert "TF_CONFIG" in str(error.value) and error.value.hint


def test_cli_reports_a_malformed_tf_config(monkeypatch, capsys, image_folder: Path,
                                           tmp_path: Path) -> None:
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker"')
    code, output = run_cli(monkeypatch, capsys, "train", "--data", str(image_folder),
                           "--out", str(tmp_path / "run"))
    assert code == 2 and "TF_CONFIG" in output and "not valid JSON" in output
    assert "Traceback" not in output and not (tmp_path / "run").exists()
