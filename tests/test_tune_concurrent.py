"""Workers sharing one study (`edgecls tune --storage`): they draw apart, and a worker that
draws the candidate another worker is training waits for its result instead of training it
too. Real Optuna on real SQLite and journal storages; two ``Search`` objects stand for two
workers."""

from __future__ import annotations

import _thread
import contextlib
import signal
import threading
import time
from pathlib import Path

import pytest

from edgecls.tune import report, steps, study
from edgecls.tune.budget import Budget
from edgecls.tune.latency_cache import BenchTarget, LatencyCache, LatencyMeter, Measurement, runtime_version
from edgecls.tune.space import Signature
from edgecls.tune.study import STATE_COMPLETE, STATE_FAILED, OutOfTime, open_search
from edgecls.tune.trial import OVER_BUDGET, Fidelity, run_trial
from helpers.tune import tiny_space

pytest.importorskip("optuna")


@pytest.fixture(scope="module", params=["sqlite", "journal"])
def url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """One storage for the module, each kind whose workers wait for a live twin: SQLite
    (Optuna's heartbeats; its schema takes a second or two to create) and a journal file
    (our stamps); each test opens studies of its own names in it."""
    folder = tmp_path_factory.mktemp("concurrent")
    return f"sqlite:///{folder / 'study.db'}" if request.param == "sqlite" else f"journal:{folder / 'study.log'}"


def _draw(handle) -> tuple[int, ...]:
    return tuple(handle.choose(name, list(range(100))) for name in ("a", "b", "c"))


def test_workers_given_one_seed_draw_apart_and_the_seed_still_decides(url: str) -> None:
    """Same --seed on two workers: trial n's draws come from (seed, n), not from how many
    trials the process asked before, so the workers' first trials differ."""
    first, second = (open_search(url, "seeded", local=False, seed=0) for _ in range(2))
    on_first, on_second = first.ask(), second.ask()  # both running at once
    drawn = {on_first.number: _draw(on_first), on_second.number: _draw(on_second)}
    assert drawn[0] != drawn[1]

    alone = open_search(url, "alone", local=True, seed=0)
    for number in (0, 1):  # one worker, one trial after the other: the same draws
        handle = alone.ask()
        assert _draw(handle) == drawn[number]
        alone.tell(handle, STATE_COMPLETE, 0.5)
    other = open_search(url, "other-seed", local=True, seed=1).ask()
    assert _draw(other) != drawn[0]


class Workers:
    """Worker A has a trial running with parameters P; worker B's next trial is forced to P."""

    def __init__(self, url: str, study: str, tmp_path: Path) -> None:
        self.first, self.second = (open_search(url, study, local=False) for _ in range(2))
        self.space = tiny_space(sizes=(32, 48, 64))
        self.running = self.first.ask()
        self.candidate = self.space.sample(self.running)
        self.second.study.enqueue_trial(self.running.trial.params)
        self.budget = Budget(latency_ms=1.0)
        self.meter = _cached_meter(tmp_path, self.candidate.signature, p50_ms=5.0)
        self.messages: list[str] = []
        self.paths = tmp_path

    def run_second(self, deadline: float | None = None):
        """B's trial, through ``run_trial`` as ``edgecls tune`` runs it."""
        return run_trial(self.second, self.space, self.meter, self.budget, self.paths / "images",
                         self.paths / "split.json", self.paths / "trials", Fidelity(), {}, self.messages.append,
                         deadline)

    def waiting(self, timeout_s: float = 30.0) -> None:
        """Returns once B says it waits for A's trial."""
        end = time.monotonic() + timeout_s
        while not any("waiting for its result" in m for m in self.messages) and time.monotonic() < end:
            time.sleep(0.01)


def _cached_meter(tmp_path: Path, signature: Signature, p50_ms: float) -> LatencyMeter:
    """A meter on this machine whose cache already holds three rounds of ``signature``: a
    trial that runs the candidate itself gets its figures without an export or a bench."""
    meter = LatencyMeter(BenchTarget(), LatencyCache(tmp_path / "latency.json"), 3, tmp_path / "work",
                         steps.untrained_artifact, steps.bench_here)
    runtime = runtime_version(signature.format, meter.machine(signature.format))
    rounds = [{"p50_ms": p50_ms, "p90_ms": p50_ms}] * 3
    meter.cache.put(Measurement.of_rounds(signature.key(), meter.target.key(), runtime, rounds, 10**5, {}))
    return meter


@pytest.fixture
def poll(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(study, "WAIT_POLL_S", 0.01)


def test_a_worker_waits_for_its_twin_running_elsewhere_then_reuses_its_result(url: str, tmp_path: Path,
                                                                              poll: None) -> None:
    workers = Workers(url, "waits", tmp_path)
    first = workers.running
    outcome: dict = {}
    waiter = threading.Thread(target=lambda: outcome.update(result=workers.run_second()))
    waiter.start()
    workers.waiting()
    time.sleep(0.05)  # five polls: still waiting, nothing trained
    assert waiter.is_alive() and workers.messages == [
        f"trial {first.number + 1}: same parameters as trial {first.number}, running on another worker: "
        "waiting for its result"]
    first.set("val_accuracy", 0.8)
    first.set("run_dir", "/runs/0000")
    workers.first.tell(first, STATE_COMPLETE, 0.8)
    waiter.join(30)
    result = outcome["result"]
    assert result.repeat_of == first.number and result.state == "complete" and result.val_accuracy == 0.8
    assert result.measurement is None and workers.meter.hits == 0  # neither measured nor trained
    rows = report.trial_rows(workers.second.records())
    assert [(r["repeat_of"], r["waited_for_twin"]) for r in rows] == [(None, None), (first.number, first.number)]
    assert workers.second.finished() == 1  # the twin alone counts towards --trials


def test_a_worker_runs_the_candidate_itself_when_its_twin_fails(url: str, tmp_path: Path, poll: None) -> None:
    workers = Workers(url, "twin-fails", tmp_path)
    outcome: dict = {}
    waiter = threading.Thread(target=lambda: outcome.update(result=workers.run_second()))
    waiter.start()
    workers.waiting()
    workers.first.tell(workers.running, STATE_FAILED)
    waiter.join(30)
    result = outcome["result"]
    assert result.repeat_of is None and workers.meter.hits == 1  # measured (from the cache): run here
    assert result.state == OVER_BUDGET and result.decision == "over"  # 5 ms against 1 ms: not trained
    assert workers.messages[-1] == (f"trial {result.number}: trial {workers.running.number} failed or its worker "
                                    "stopped: running the candidate here")


@pytest.mark.parametrize("stop", ["time", "ctrl+c"])
def test_a_waiting_trial_stopped_by_the_time_limit_or_ctrl_c_is_queued_again(url: str, tmp_path: Path, poll: None,
                                                                           stop: str) -> None:
    workers = Workers(url, f"stopped-{stop}", tmp_path)
    if stop == "time":
        with pytest.raises(OutOfTime, match=r"trial \d+ was waiting for trial \d+"):
            workers.run_second(deadline=time.monotonic() + 0.1)
    else:
        workers.messages = Said(lambda: threading.Timer(0.1, _thread.interrupt_main).start())
        with pytest.raises(KeyboardInterrupt), python_sigint():  # a lost interrupt: OutOfTime in 60 s
            workers.run_second(deadline=time.monotonic() + 60)
    stopped = workers.second.records()[1]
    assert stopped["state"] == "failed" and workers.meter.hits == 0
    retry = workers.second.ask()  # queued again, as a trial stopped while training is
    assert retry.retry_of == stopped["number"] and retry.trial.params == workers.running.trial.params


@contextlib.contextmanager
def python_sigint():
    """Python's own SIGINT handler for the block: interrupt_main raises KeyboardInterrupt only
    through it, and a suite started as a background job (``cmd &``) inherits SIGINT ignored."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class Said(list):
    """Messages; calls ``then`` once, on the first one."""

    def __init__(self, then) -> None:
        super().__init__()
        self.then = then

    def append(self, message: str) -> None:
        if not self:
            self.then()
        super().append(message)


def test_a_journal_worker_stamps_its_trial_and_a_stopped_ones_trial_is_retried(tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Optuna has no heartbeats for journal storages: a running trial's worker stamps the time
    every HEARTBEAT_S seconds, and another worker fails and re-queues a trial whose stamp is
    older than GRACE_S (its worker was killed), never a fresh one."""
    monkeypatch.setattr(study, "HEARTBEAT_S", 0.05)
    url = f"journal:{tmp_path / 'study.log'}"
    alive, other = (open_search(url, "stamps", local=False) for _ in range(2))
    trial = alive.ask()
    trial.choose("size", [32, 48])
    with alive.heartbeat(trial):
        first = alive._frozen(trial.trial).system_attrs[study.STAMP_ATTR]
        time.sleep(0.3)
        later = alive._frozen(trial.trial).system_attrs[study.STAMP_ATTR]
        assert later > first  # stamped again while it runs
        assert other.recover(resume=False) == []  # fresh: its worker is alive
    killed = alive._frozen(trial.trial)
    alive.study._storage.set_trial_system_attr(killed._trial_id, study.STAMP_ATTR, time.time() - study.GRACE_S - 1)
    assert other.recover(resume=False) == [trial.number]
    retry = other.ask()
    assert retry.retry_of == trial.number and retry.trial.params == trial.trial.params

