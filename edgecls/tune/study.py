"""The study: sampler, pruner and storage, behind one small interface (``Search``).

This is the only module that imports Optuna. A study lives in a database: SQLite under
``--out`` by default, or any ``--storage`` URL Optuna opens (``postgresql://``,
``mysql://`` for a cluster; ``sqlite:///`` or ``journal:PATH`` for one box). Several
processes given the same storage and study name share the study, each asking for the
next trial.

- Sampler: TPE with constraints (a candidate over the budget is told as infeasible, so
  the sampler learns where the budget lies) and the constant liar (trials running on other
  workers count as bad, so workers draw apart); trial n draws from (seed, n).
- Pruner: successive halving on the val accuracy reported after every epoch (rung 1 is
  the head on cached features, rung 2 the short fine-tune).
- A trial left running by a killed process is failed once its heartbeat is stale (or at
  once on ``--resume`` of a study that only this machine writes) and enqueued again with
  the same parameters; failed trials never count towards ``--trials``. Optuna keeps the
  heartbeats of database storages; a ``journal:`` storage has none in Optuna, so there a
  thread stamps the running trial's time into it (``StampedHeartbeat``).
- A trial whose parameters a finished trial already had is not run again: it is told that
  trial's result (``Search.repeat``) and marked ``repeat_of``; repeats never count
  towards ``--trials``. One whose parameters an earlier trial is still running on another
  live worker waits for it (``Search.running_twin``, ``Search.await_twin``), then repeats it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from edgecls.errors import ConfigError

STATE_COMPLETE, STATE_PRUNED, STATE_FAILED = "complete", "pruned", "failed"
HEARTBEAT_S = 30
GRACE_S = 120
RETRIES = 2
DATASET_ATTR = "dataset"
WAIT_POLL_S = 2.0  # how often a trial waiting for its twin on another worker asks the storage
STAMP_ATTR = "edgecls:heartbeat"  # a journal trial's system attribute: its worker's last sign of life (epoch s)


class Pruned(Exception):
    """Raised inside a trial when the pruner stops it."""


class OutOfTime(Exception):
    """Raised in a trial still waiting for its twin when the search's time is spent."""


def default_storage(out: Path) -> str:
    """The embedded default: a SQLite file under the tuning folder."""
    return f"sqlite:///{(Path(out) / 'study.db').resolve()}"


@dataclass
class TrialHandle:
    """One running trial: samples parameters and reports intermediate val accuracy."""

    trial: Any

    @property
    def number(self) -> int:
        return int(self.trial.number)

    def choose(self, name: str, options: Sequence[Any]) -> Any:
        return self.trial.suggest_categorical(name, list(options))

    def report(self, value: float, step: int) -> None:
        """Reports val accuracy after ``step`` epochs; raises ``Pruned`` when the pruner says so."""
        self.trial.report(float(value), step)
        if self.trial.should_prune():
            raise Pruned(f"stopped by the pruner after {step} epochs at val accuracy {value:.4f}")

    def set(self, key: str, value: Any) -> None:
        self.trial.set_user_attr(key, value)

    def constrain(self, excess: float) -> None:
        """How far over budget the candidate is (<= 0: within): the sampler learns from it."""
        self.trial.set_constraint("budget", excess)

    @property
    def retry_of(self) -> int | None:
        """The number of the trial this one retries (None for a new one)."""
        attrs = self.trial.storage.get_trial_system_attrs(self.trial._trial_id)
        return attrs.get("failed_trial")


class Search:
    """A study in its storage."""

    def __init__(self, study: Any, local: bool) -> None:
        self.study = study
        self.local = local  # the default storage under --out: no other process writes it

    @property
    def name(self) -> str:
        return str(self.study.study_name)

    def ask(self) -> TrialHandle:
        """The next trial: a queued retry first, else a new one from the sampler."""
        with warnings.catch_warnings():  # "heartbeat is supposed to be used with Study.optimize"
            warnings.simplefilter("ignore", UserWarning)
            return TrialHandle(self.study.ask())

    def tell(self, handle: TrialHandle, state: str, value: float | None = None) -> None:
        import optuna

        states = {STATE_COMPLETE: optuna.trial.TrialState.COMPLETE,
                  STATE_PRUNED: optuna.trial.TrialState.PRUNED, STATE_FAILED: optuna.trial.TrialState.FAIL}
        self.study.tell(handle.trial, value if state == STATE_COMPLETE else None, state=states[state])

    def claim(self, dataset: str, settings: dict[str, Any]) -> None:
        """Ties a new study to ``dataset``; raises ConfigError for a study of another one."""
        claim(self.study, dataset, settings)

    def abandon(self, handle: TrialHandle) -> None:
        """Fails a trial stopped by Ctrl+C and queues it again, for ``--resume``."""
        self.tell(handle, STATE_FAILED)
        self._retry(self._frozen(handle.trial))

    def heartbeat(self, handle: TrialHandle) -> Any:
        """A context that keeps the trial's heartbeat while it runs: Optuna's, or our stamp
        on a journal storage."""
        from optuna.storages._heartbeat import get_heartbeat_thread

        if self._stamped():
            return StampedHeartbeat(self.study._storage, handle.trial._trial_id)
        return get_heartbeat_thread(handle.trial._trial_id, self.study._storage)

    def _stamped(self) -> bool:
        """Whether liveness comes from our stamps (a journal storage: no Optuna heartbeat)."""
        from optuna.storages.journal import JournalStorage

        return isinstance(self.study._storage, JournalStorage)

    def records(self) -> list[dict[str, Any]]:
        """Every trial as a plain dict: number, state, value, params, user attributes."""
        return [_record(t) for t in self.study.get_trials(deepcopy=False)]

    def finished(self) -> int:
        """Trials that count towards ``--trials``: trained to the end or stopped by the
        pruner (a failed trial, e.g. one killed and retried, does not, nor a repeat)."""
        return sum(1 for r in self.records() if r["state"] in ("complete", "pruned") and not r.get("over_budget")
                   and r.get("repeat_of") is None)

    def tried(self) -> int:
        """Distinct parameter sets of the finished trials (over budget included)."""
        return len({tuple(sorted(r["params"].items())) for r in self.records() if r["state"] in ("complete", "pruned")})

    def repeat(self, handle: TrialHandle) -> dict[str, Any] | None:
        """Ends ``handle``'s trial with the result of the finished trial (complete, over budget
        or pruned) that had the same parameters, without running it; returns its record
        (None: the parameters are new, the trial goes on).

        Optuna's FAQ on duplicates shows two ways: return the old value, or raise
        ``TrialPruned`` so the sampler avoids the point. The old value is told here: TPE ranks
        pruned trials below every complete one (one pruned at no step below every pruned
        one), so a repeat of the best candidate told as pruned would push the sampler away
        from the region it should search. A repeat of a pruned trial gets its epoch values
        and is pruned again, ranked as it was; one of an over-budget trial gets its
        constraint. A sampler that keeps drawing tried points is stopped by the caller."""
        twin = self._twin(handle)
        if twin is None:
            return None
        trial = handle.trial
        for key, value in twin.user_attrs.items():
            if key != "run_dir":  # the twin's run is the one finalists use
                trial.set_user_attr(key, value)
        trial.set_user_attr("repeat_of", twin.number)
        trial.set_user_attr("note", f"same parameters as trial {twin.number}: its result reused, not trained")
        for key, value in twin.constraints.items():
            trial.set_constraint(key, value)
        for step, value in sorted(twin.intermediate_values.items()):
            trial.report(value, step)
        self.study.tell(trial, twin.value if twin.state.name == "COMPLETE" else None, state=twin.state)
        return _record(self._frozen(trial))

    def running_twin(self, handle: TrialHandle) -> Any:
        """The earliest trial running elsewhere with ``handle``'s parameters (None: none).

        Only a study other workers share has such trials; a dead worker's trial is failed
        once its heartbeat is stale. Only earlier trials count, so two workers drawing one
        candidate at once never wait for each other. Not a lock: trials sampled in the same
        instant can both miss the other's parameters (a window of milliseconds)."""
        import optuna
        from optuna.storages._heartbeat import is_heartbeat_enabled

        if self.local or not (is_heartbeat_enabled(self.study._storage) or self._stamped()):
            return None
        params = handle.trial.params
        running = self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
        return next((t for t in running if t.number < handle.number and t.params == params), None)

    def await_twin(self, handle: TrialHandle, twin: Any, deadline: float | None = None,
                   poll_s: float | None = None) -> bool:
        """Waits while ``twin`` (``running_twin``'s) runs; True once it finished (``repeat``
        then reuses its result), False when it failed or its heartbeat went stale (``handle``
        trains the candidate itself). Polls every ``poll_s`` (``WAIT_POLL_S``) seconds.

        Raises:
            OutOfTime: ``deadline`` (``time.monotonic``) passed with the twin still running.
        """
        while True:
            state = _off_main_thread(lambda: self._twin_state(twin))
            if state != "RUNNING":
                return state in ("COMPLETE", "PRUNED")
            if deadline is not None and time.monotonic() >= deadline:
                raise OutOfTime(f"trial {handle.number} was waiting for trial {twin.number}")
            time.sleep(WAIT_POLL_S if poll_s is None else poll_s)

    def _twin(self, handle: TrialHandle) -> Any:
        """The first finished trial with ``handle``'s parameters (None when there is none)."""
        import optuna

        params = handle.trial.params
        states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
        return next((t for t in self.study.get_trials(deepcopy=False, states=states)
                     if t.params == params and t.number != handle.number and "repeat_of" not in t.user_attrs), None)

    def _twin_state(self, twin: Any) -> str:
        """``twin``'s state name, once a stale heartbeat (its worker stopped) has failed it."""
        self.recover(resume=False)
        return str(self._frozen(twin).state.name)

    def recover(self, resume: bool) -> list[int]:
        """Fails the trials a killed process left running and enqueues them again: those
        whose heartbeat is stale, and with ``resume`` of a local study every running one.
        Returns the numbers of the trials failed here."""
        import optuna
        from optuna.storages import fail_stale_trials

        before = {t.number for t in self.study.get_trials(states=(optuna.trial.TrialState.FAIL,))}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            fail_stale_trials(self.study)
        for trial in self.study.get_trials(states=(optuna.trial.TrialState.RUNNING,)):
            if (resume and self.local) or (self._stamped() and stale_stamp(trial)):
                if self.study._storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL):
                    self._retry(self._frozen(trial))
        failed = [t for t in self.study.get_trials(states=(optuna.trial.TrialState.FAIL,))
                  if t.number not in before]
        return sorted(t.number for t in failed)

    def _frozen(self, trial: Any) -> Any:
        """The stored state of ``trial`` (a live or frozen trial) as a FrozenTrial."""
        return self.study._storage.get_trial(trial._trial_id)

    def _retry(self, trial: Any) -> None:
        """Queues a failed trial again with its parameters (as a stale heartbeat does)."""
        import optuna
        from optuna.storages import RetryHeartbeatStaleTrialCallback

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            RetryHeartbeatStaleTrialCallback(max_retry=RETRIES)(self.study, trial)


class StampedHeartbeat:
    """While open, stamps the trial's time into the storage every ``HEARTBEAT_S`` seconds,
    from a thread of its own (``STAMP_ATTR``); ``stale_stamp`` tells a dead worker's trial."""

    def __init__(self, storage: Any, trial_id: int) -> None:
        self.storage, self.trial_id = storage, trial_id
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, name="edgecls-heartbeat", daemon=True)

    def __enter__(self) -> StampedHeartbeat:
        self._stamp()
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()

    def _beat(self) -> None:
        while not self.stop.wait(HEARTBEAT_S):
            with contextlib.suppress(Exception):  # a trial finished meanwhile no longer takes stamps
                self._stamp()

    def _stamp(self) -> None:
        self.storage.set_trial_system_attr(self.trial_id, STAMP_ATTR, time.time())


def stale_stamp(trial: Any) -> bool:
    """Whether a running journal trial's worker stopped: no stamp for ``GRACE_S`` seconds
    (or none since it started: killed before its first stamp)."""
    stamp = trial.system_attrs.get(STAMP_ATTR)
    if stamp is None:
        stamp = trial.datetime_start.timestamp() if trial.datetime_start else None
    return stamp is not None and time.time() - float(stamp) > GRACE_S


def _off_main_thread(call: Callable[[], Any]) -> Any:
    """``call()`` run in a thread of its own, so that Ctrl+C interrupts the wait for it and
    never a storage call halfway: SQLite can stay locked after one, and the failed trial
    could then not be told."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except Exception as exc:  # raised again in the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _record(trial: Any) -> dict[str, Any]:
    """A trial as a plain dict: number, state, value, params, user attributes."""
    names = {"FAIL": STATE_FAILED, "COMPLETE": STATE_COMPLETE, "PRUNED": STATE_PRUNED}
    return {"number": trial.number, "state": names.get(trial.state.name, trial.state.name.lower()),
            "value": trial.value, "params": dict(trial.params), **dict(trial.user_attrs)}


def open_search(storage: str, name: str, local: bool, seed: int = 0, min_resource: int = 1) -> Search:
    """Opens (or creates) study ``name`` in ``storage``; ``Search.claim`` then ties it to
    a dataset.

    Raises:
        ConfigError: the storage cannot be opened.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("optuna").setLevel(logging.WARNING)
    backend = _storage(storage)
    sampler = _sampler(seed)
    pruner = optuna.pruners.SuccessiveHalvingPruner(min_resource=min_resource, reduction_factor=3)
    try:
        study = optuna.create_study(study_name=name, storage=backend, load_if_exists=True,
                                    direction="maximize", sampler=sampler, pruner=pruner)
    except Exception as exc:  # SQLAlchemy/driver errors of many types
        raise ConfigError(f"cannot open the study storage {_redacted(storage)}: {_first_line(exc)}",
                          "pass a --storage URL the database accepts (e.g. postgresql://user@host/db)") from None
    return Search(study, local)


def _sampler(seed: int) -> Any:
    """TPE with the constant liar, whose random draws for trial n come from (seed, n).

    The constant liar (Optuna's default since 5.0, set here so it stays on) counts the
    trials running on other workers as bad results, so a worker drawing meanwhile moves
    away from them. It is on for every study, not only shared ones: it only acts on
    running trials other than the one being drawn, and a study that one process writes
    has none (``--resume`` fails a killed run's leftovers first), so there it draws as
    plain TPE would and the seed gives the same search.

    Seeding per trial: two workers given the same ``--seed`` would otherwise step through
    the same random sequence and draw the same candidates one for one while TPE is still
    in its random start-up (Optuna issue #4714); the constant liar does not act on those.
    Trial n's draws depend on the seed and n, so workers, which get distinct trial
    numbers, draw apart, and the seed still decides every draw."""
    import numpy as np
    import optuna

    class TrialSeededTPE(optuna.samplers.TPESampler):
        def before_trial(self, study: Any, trial: Any) -> None:
            # SeedSequence: numpy's way to derive unrelated streams from related seeds
            state = int(np.random.SeedSequence([seed % 2**32, trial.number]).generate_state(1)[0])
            for generator in _private_generators(self):
                generator.rng.seed(state)
            super().before_trial(study, trial)

    return TrialSeededTPE(seed=seed, n_startup_trials=5, constant_liar=True)


def _private_generators(sampler: Any) -> list[Any]:
    """TPE's and its start-up sampler's random generators (``_rng``, private in Optuna 5):
    none when a release renames them, and then draws follow the study's one seed, as
    before per-trial seeding."""
    owners = (sampler, getattr(sampler, "_random_sampler", None))
    found = [getattr(owner, "_rng", None) for owner in owners]
    return [g for g in found if g is not None and hasattr(g, "rng")]


def _storage(url: str) -> Any:
    import optuna
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    if url.startswith("journal:"):
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        path = Path(url.removeprefix("journal:")).expanduser()
        if not path.parent.is_dir():
            raise ConfigError(f"cannot open the study storage {url}: folder {path.parent} does not exist",
                              "pass journal:PATH in an existing folder")
        return JournalStorage(JournalFileBackend(str(path)))
    try:
        with warnings.catch_warnings():  # heartbeats are "experimental" since Optuna 2.9
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return RDBStorage(url, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S,
                              heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=RETRIES))
    except (optuna.exceptions.OptunaError, ValueError, ImportError, Exception) as exc:
        raise ConfigError(f"cannot open the study storage {_redacted(url)}: {_first_line(exc)}",
                          "pass a --storage URL the database accepts (e.g. postgresql://user@host/db, "
                          "sqlite:///path/study.db)") from None


def claim(study: Any, dataset: str, settings: dict[str, Any]) -> None:
    """Stamps a new study with its dataset and settings; refuses one made for other data."""
    owner = study.user_attrs.get(DATASET_ATTR)
    if owner is None:
        study.set_user_attr(DATASET_ATTR, dataset)
        study.set_user_attr("settings", settings)
    elif owner != dataset:
        raise ConfigError(f"study {study.study_name!r} belongs to another dataset "
                          f"({study.user_attrs.get('settings', {}).get('data', 'unknown')})",
                          "pass another --study name, or the --data it was made for")


def study_settings(storage: str, name: str) -> dict[str, Any] | None:
    """The settings a study was created with, or None when it does not exist."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.load_study(study_name=name, storage=_storage(storage))
    except KeyError:
        return None
    return study.user_attrs.get("settings")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


def _redacted(url: str) -> str:
    """The URL without its password."""
    import re

    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)
