"""Where a training run computes (tf.distribute), and which process writes the run.

- One device: TensorFlow's default strategy.
- Several GPUs on one machine: ``MirroredStrategy`` over all of them.
- ``TF_CONFIG`` describing a cluster: ``MultiWorkerMirroredStrategy``. Every worker runs
  the same ``edgecls train`` command; the chief (task ``chief`` 0, else ``worker`` 0)
  writes the run directory. The other workers write the same files into a scratch run
  directory of their own (saving a distributed model is a collective step, so all
  workers must save), kept while the run is unfinished (``--resume`` needs it) and
  removed when it finishes.
- ``EDGECLS_CPU_REPLICAS=N``: the CPU split into N logical devices, mirrored like GPUs.
  A test and development aid (it exercises the mirrored path without GPUs), not a
  speed-up.

All strategies are synchronous data parallelism: ``batch_size`` is the global batch of
one step, split evenly over the replicas (each gets ``batch_size / replicas`` images);
steps per epoch and the learning rate do not change with the number of replicas. Each
worker reads the whole dataset and keeps its share of every batch
(``AutoShardPolicy.DATA``), so every worker needs the same ``--data`` folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgecls.data.split import Split
from edgecls.errors import ConfigError, EdgeclsError
from edgecls.rundir import RunDir
from edgecls.train.config import TrainConfig

if TYPE_CHECKING:  # checkpoint.py's callback class needs Keras at import: the CLI must import without it
    from edgecls.train.checkpoint import TrainState

CPU_REPLICAS_ENV = "EDGECLS_CPU_REPLICAS"
TF_CONFIG_ENV = "TF_CONFIG"
_TF_CONFIG_EXAMPLE = ('e.g. {"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
                      '"task": {"type": "worker", "index": 0}}')


@dataclass(frozen=True)
class Cluster:
    """This process's place in a ``TF_CONFIG`` cluster.

    Attributes:
        rank: index among the workers; 0 is the chief.
        workers: number of workers (chief included).
    """

    rank: int
    workers: int

    @property
    def is_chief(self) -> bool:
        return self.rank == 0


@dataclass(frozen=True)
class Placement:
    """Where this process trains.

    Attributes:
        kind: ``"default"``, ``"mirrored"`` or ``"multi_worker"``.
        replicas: replicas training in sync, over all workers.
        cluster: this worker's place in a cluster (None on one machine).
    """

    kind: str
    replicas: int
    cluster: Cluster | None = None

    @property
    def is_chief(self) -> bool:
        """Whether this process writes the run directory."""
        return self.cluster is None or self.cluster.is_chief

    @property
    def distributed(self) -> bool:
        return self.kind != "default"


def read_cluster(environ: Mapping[str, str] | None = None) -> Cluster | None:
    """This process's place in the cluster ``TF_CONFIG`` describes (None without one).

    Raises:
        ConfigError: ``TF_CONFIG`` is not JSON, lacks its cluster or task, names a task
            the cluster does not have, or asks for parameter servers.
    """
    text = (os.environ if environ is None else environ).get(TF_CONFIG_ENV, "").strip()
    if not text:
        return None
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _bad_tf_config(f"is not valid JSON ({exc.msg} at character {exc.pos})") from None
    if not isinstance(spec, dict):
        raise _bad_tf_config("is not a JSON object")
    cluster, task = spec.get("cluster"), spec.get("task")
    if not cluster:
        return None  # TensorFlow's own reading: no cluster, no distribution
    if not isinstance(cluster, dict) or not all(_is_address_list(v) for v in cluster.values()):
        raise _bad_tf_config('"cluster" must map task types to lists of "host:port" strings')
    unsupported = sorted(set(cluster) - {"chief", "worker", "evaluator"})
    if unsupported:
        raise _bad_tf_config(f"has task types {unsupported}; edgecls trains with "
                             "MultiWorkerMirroredStrategy: only chief and worker tasks")
    if not isinstance(task, dict) or not isinstance(task.get("type"), str) \
            or not isinstance(task.get("index", 0), int):
        raise _bad_tf_config('needs "task": {"type": "worker", "index": N} for this process')
    kind, index = task["type"], task.get("index", 0)
    if kind == "evaluator":
        raise _bad_tf_config("names an evaluator task; edgecls has no side-car evaluator "
                             "(the chief evaluates the finished run)")
    if kind not in cluster or not 0 <= index < len(cluster[kind]):
        raise _bad_tf_config(f"task {kind} {index} is not in the cluster "
                             f"({ {k: len(v) for k, v in cluster.items()} })")
    chiefs = len(cluster.get("chief", []))
    if chiefs > 1:
        raise _bad_tf_config("has more than one chief")
    workers = chiefs + len(cluster.get("worker", []))
    rank = index if kind == "chief" else chiefs + index
    return Cluster(rank=rank, workers=workers)


def _is_address_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(a, str) and ":" in a for a in value)


def _bad_tf_config(problem: str) -> ConfigError:
    return ConfigError(f"the {TF_CONFIG_ENV} environment variable {problem}",
                       f"describe the cluster and this process's task, {_TF_CONFIG_EXAMPLE}; "
                       f"unset {TF_CONFIG_ENV} to train on one machine")


def cpu_replicas(environ: Mapping[str, str] | None = None) -> int:
    """The number of logical CPU devices asked for with ``EDGECLS_CPU_REPLICAS`` (0: none)."""
    text = (os.environ if environ is None else environ).get(CPU_REPLICAS_ENV, "").strip()
    if not text:
        return 0
    if not text.isdigit() or not 1 <= int(text) <= 64:
        raise ConfigError(f"{CPU_REPLICAS_ENV}={text!r} is not a number of devices from 1 to 64",
                          f"unset {CPU_REPLICAS_ENV} (it is a test aid), or set e.g. 2")
    return int(text)


def worker_run_root(out: str | Path, cluster: Cluster | None) -> Path:
    """The run directory this process writes: ``out`` on the chief, else a scratch
    directory of this worker (same name for the same ``out``, so ``--resume`` finds it)."""
    out = Path(out)
    if cluster is None or cluster.is_chief:
        return out
    key = hashlib.sha256(str(out.resolve()).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"edgecls-worker{cluster.rank}-{key}"


def make_strategy(environ: Mapping[str, str] | None = None) -> tuple[Any, Placement]:
    """The tf.distribute strategy for this process, and where it places training.

    In a cluster this waits until every worker has started.

    Raises:
        ConfigError: malformed ``TF_CONFIG`` or ``EDGECLS_CPU_REPLICAS``, or logical
            devices asked for after TensorFlow set up its devices.
    """
    import tensorflow as tf

    cluster = read_cluster(environ)
    cpus = cpu_replicas(environ)
    if cluster is not None:
        if cpus:
            raise ConfigError(f"{CPU_REPLICAS_ENV} cannot be combined with {TF_CONFIG_ENV}",
                              f"unset {CPU_REPLICAS_ENV}: each worker trains on its own devices")
        strategy = _multi_worker_strategy_class()()
        return strategy, Placement("multi_worker", strategy.num_replicas_in_sync, cluster)
    if cpus:
        strategy = tf.distribute.MirroredStrategy(_logical_cpus(cpus))
        return strategy, Placement("mirrored", strategy.num_replicas_in_sync)
    if len(tf.config.list_logical_devices("GPU")) > 1:
        strategy = tf.distribute.MirroredStrategy()
        return strategy, Placement("mirrored", strategy.num_replicas_in_sync)
    return tf.distribute.get_strategy(), Placement("default", 1)


def _logical_cpus(count: int) -> list[str]:
    """Splits the CPU into ``count`` logical devices; returns their names."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    wanted = [tf.config.LogicalDeviceConfiguration() for _ in range(count)]
    try:
        tf.config.set_logical_device_configuration(cpu, wanted)
    except RuntimeError:
        if len(tf.config.list_logical_devices("CPU")) != count:
            raise ConfigError(f"{CPU_REPLICAS_ENV}={count} came after TensorFlow set up its devices",
                              "set it in the environment of a fresh process") from None
    return [device.name for device in tf.config.list_logical_devices("CPU")]


def _multi_worker_strategy_class() -> type:
    """``MultiWorkerMirroredStrategy`` whose ``reduce`` takes what Keras 3's ``fit`` gives it.

    Keras 3 (3.15) reduces a whole (images, labels) batch in one ``reduce`` call before
    training, and scalar logs along axis 0 after each step; TensorFlow's strategy reduces
    single values only, and a scalar has no axis 0 (keras-team/keras#20585: without this,
    ``fit`` fails on a cluster). This reduces each value of a structure, scalars as a whole.
    """
    import tensorflow as tf

    class KerasMultiWorkerMirroredStrategy(tf.distribute.MultiWorkerMirroredStrategy):
        def reduce(self, reduce_op: Any, value: Any, axis: Any) -> Any:
            parent = super()

            def one(item: Any) -> Any:
                local = self.experimental_local_results(item)[0]
                scalar = getattr(local, "shape", None) is not None and local.shape.rank == 0
                return parent.reduce(reduce_op, item, None if scalar else axis)

            return tf.nest.map_structure(one, value)

    return KerasMultiWorkerMirroredStrategy


def shard_by_data(dataset: Any) -> Any:
    """``dataset`` with auto-sharding by elements (``AutoShardPolicy.DATA``): each worker
    reads everything and keeps its part of every batch (file sharding would need one
    file per shard, the pipeline reads one image per file)."""
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def gather_from_workers(strategy: Any, numbers: list[int]) -> list[list[int]]:
    """Each worker's ``numbers``, in rank order (a collective: every worker must call it)."""
    import tensorflow as tf

    local = strategy.experimental_distribute_values_from_function(
        lambda _context: tf.constant([numbers], tf.int64))
    rows = strategy.gather(local, axis=0).numpy().tolist()
    per_worker = len(rows) // max(1, _workers(strategy))
    return rows[::per_worker]


def _workers(strategy: Any) -> int:
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None:
        return 1
    return sum(len(tasks) for kind, tasks in resolver.cluster_spec().as_dict().items()
               if kind in ("chief", "worker"))


def check_workers_agree(strategy: Any, config: TrainConfig, split: Split, state: TrainState,
                        run: RunDir) -> None:
    """Stops every worker with the same error when their options, images or checkpoints
    differ (they would train different things, or wait for each other forever). When
    their ``BackupAndRestore`` backups differ, all drop them: restoring must be all or none.

    A collective step: every worker of the cluster must call it.
    """
    options = {k: v for k, v in asdict(config).items() if k not in ("data", "out")}
    images = {"labels": split.labels, "subsets": split.subsets}
    backup = backup_epoch(run.backup)
    rows = gather_from_workers(strategy, [_digest(options), _digest(images), state.epoch,
                                          state.phase, state.phase_epoch,
                                          -1 if backup is None else backup])
    if len({row[5] for row in rows}) > 1:
        shutil.rmtree(run.backup, ignore_errors=True)
    chief = rows[0]
    for rank, row in enumerate(rows[1:], start=1):
        if row[0] != chief[0]:
            raise ConfigError(f"worker {rank} was started with other training options than the chief",
                              "start every worker with the same command and options")
        if row[1] != chief[1]:
            raise EdgeclsError(f"worker {rank} sees other images or classes than the chief",
                               "give every worker a copy of the same --data folder")
        if row[2:5] != chief[2:5]:
            raise EdgeclsError(f"worker {rank} would resume from epoch {row[2]}, the chief from "
                               f"epoch {chief[2]}",
                               "each worker keeps its checkpoint on its own machine: restart all "
                               "workers where they ran before, or start a new run")


def _digest(value: Any) -> int:
    text = json.dumps(value, sort_keys=True, default=str)
    return int(hashlib.sha256(text.encode()).hexdigest()[:15], 16)


@contextmanager
def lost_worker_errors(placement: Placement) -> Iterator[None]:
    """Turns TensorFlow's errors about a worker that is gone into a user error."""
    try:
        yield
    except Exception as error:
        if placement.kind != "multi_worker" or not _is_lost_worker(error):
            raise
        tasks = [line.strip() for line in str(error).splitlines() if line.strip().startswith("/job:")]
        raise EdgeclsError(f"training stopped: another worker of the cluster is gone "
                           f"({', '.join(tasks) or type(error).__name__})",
                           "restart every worker with the same command plus --resume") from None


def _is_lost_worker(error: Exception) -> bool:
    import tensorflow as tf

    return isinstance(error, (tf.errors.UnavailableError, tf.errors.CancelledError,
                              tf.errors.AbortedError, tf.errors.DeadlineExceededError))


def moving_statistics_sync(strategy: Any) -> Any:
    """Keras callback averaging BatchNorm moving statistics over all replicas before each
    validation (see ``average_moving_statistics``)."""
    import keras

    class SyncMovingStatistics(keras.callbacks.Callback):
        def on_test_begin(self, logs: dict | None = None) -> None:
            average_moving_statistics(self.model, strategy)

    return SyncMovingStatistics()


def average_moving_statistics(model: Any, strategy: Any) -> None:
    """Sets every replica's BatchNorm moving mean and variance to their mean over all
    replicas (one collective step: every worker must call it).

    Keras 3 updates these per replica from the replica's share of each batch and never
    syncs them, so replicas drift apart and a saved model would carry the first replica's.
    Averaged before each validation, validation and checkpoints see the same statistics,
    computed from every replica's images.
    """
    import tensorflow as tf

    stats = [v for v in model.non_trainable_variables
             if v.path.endswith(("moving_mean", "moving_variance"))
             and len(getattr(v.value, "values", ())) > 0]
    if not stats:
        return

    def flat(context: Any) -> Any:
        local = context.replica_id_in_sync_group % len(stats[0].value.values)
        return tf.concat([tf.reshape(v.value.values[local], [-1]) for v in stats], axis=0)

    mean = strategy.reduce("MEAN", strategy.experimental_distribute_values_from_function(flat),
                           axis=None)
    offset = 0
    for variable in stats:
        size = int(np.prod(variable.shape))
        variable.assign(tf.reshape(mean[offset:offset + size], variable.shape))
        offset += size


def fault_backup(run: RunDir, state: TrainState, index: int) -> Any:
    """tf.distribute's fault-tolerance callback (Keras ``BackupAndRestore``) for phase
    ``index``, backing up into ``checkpoints/backup/`` of the directory this process
    writes (Keras deletes it when the phase ends).

    ``state.json`` stays the commit point: a backup of another epoch than the one the
    state resumes from (a kill between the two saves, or a finished phase) is discarded,
    so both agree.
    """
    import keras

    folder = run.backup
    resumes_at = state.phase_epoch if state.phase == index and state.epoch > 0 else 0
    if backup_epoch(folder) != resumes_at:
        shutil.rmtree(folder, ignore_errors=True)
    return keras.callbacks.BackupAndRestore(str(folder))


def backup_epoch(folder: Path) -> int | None:
    """The epoch a ``BackupAndRestore`` folder would restore (None: no usable backup)."""
    try:
        return int(json.loads((folder / "training_metadata.json").read_text())["epoch"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
