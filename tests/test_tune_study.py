"""The study behind `edgecls tune` (Optuna storage) and the latency cache: resume after a
kill, workers sharing a storage, a study of another dataset, the cache's key."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from edgecls.bench.machine import cpu_model
from edgecls.errors import ConfigError
from edgecls.tune.budget import Budget
from edgecls.tune.latency_cache import (
    BenchTarget,
    LatencyCache,
    LatencyMeter,
    Measurement,
    runtime_version,
    target_machine,
    wanted_rounds,
)
from edgecls.tune.space import Signature
from edgecls.tune.study import STATE_COMPLETE, open_search

pytest.importorskip("optuna")


def _url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'study.db'}"


def test_resume_fails_a_trial_left_running_and_retries_it_once(tmp_path: Path) -> None:
    search = open_search(_url(tmp_path), "s", local=True)
    search.claim("data-a", {"data": "a"})
    done = search.ask()
    done.choose("size", [96, 128, 160])
    search.tell(done, STATE_COMPLETE, 0.5)
    killed = search.ask()  # the process dies here: the trial stays RUNNING in the storage
    size = killed.choose("size", [96, 128, 160])
    assert search.finished() == 1

    reopened = open_search(_url(tmp_path), "s", local=True)
    assert reopened.recover(resume=False) == []  # its heartbeat is not stale: could be alive
    assert reopened.recover(resume=True) == [killed.number]
    assert reopened.recover(resume=True) == []  # failed once, queued once
    retry = reopened.ask()
    assert retry.retry_of == killed.number and retry.choose("size", [96, 128, 160]) == size
    reopened.tell(retry, STATE_COMPLETE, 0.7)
    assert reopened.finished() == 2  # the killed trial is not counted, its retry is
    states = sorted(r["state"] for r in reopened.records())
    assert states == ["complete", "complete", "failed"]


def test_a_study_of_another_dataset_is_refused(tmp_path: Path) -> None:
    open_search(_url(tmp_path), "shared", local=False).claim("data-a", {"data": "/photos/a"})
    open_search(_url(tmp_path), "shared", local=False).claim("data-a", {"data": "/photos/a"})  # same: fine
    with pytest.raises(ConfigError, match=r"study 'shared' belongs to another dataset \(/photos/a\)"):
        open_search(_url(tmp_path), "shared", local=False).claim("data-b", {"data": "/photos/b"})


@pytest.mark.parametrize("url", ["sqlite:////no/such/folder/study.db", "journal:/no/such/folder/j.log",
                                 "nosuchdb://x/y"])
def test_storage_that_cannot_be_opened(url: str) -> None:
    with pytest.raises(ConfigError, match="cannot open the study storage") as info:
        open_search(url, "s", local=False)
    assert "\n" not in str(info.value)


_WORKER = """
import json, sys
from edgecls.tune.study import STATE_COMPLETE, open_search
search = open_search(sys.argv[1], "shared", local=False)
numbers = []
for _ in range(int(sys.argv[2])):
    trial = search.ask()
    trial.choose("size", [96, 128, 160])
    search.tell(trial, STATE_COMPLETE, 0.5)
    numbers.append(trial.number)
print(json.dumps(numbers))
"""


def test_two_workers_on_one_storage_never_run_the_same_trial(tmp_path: Path) -> None:
    url = _url(tmp_path)
    open_search(url, "shared", local=False).claim("data-a", {})
    workers = [subprocess.Popen([sys.executable, "-c", _WORKER, url, "4"], stdout=subprocess.PIPE, text=True)
               for _ in range(2)]
    outputs = [json.loads(w.communicate(timeout=120)[0]) for w in workers]
    assert all(w.returncode == 0 for w in workers)
    numbers = outputs[0] + outputs[1]
    assert len(numbers) == 8 and sorted(numbers) == list(range(8))
    assert open_search(url, "shared", local=False).finished() == 8


def test_latency_cache_keyed_by_target_signature_and_runtime(tmp_path: Path) -> None:
    cache = LatencyCache(tmp_path / "latency.json")
    sig = Signature("efficientnet_lite0", 128)
    here = BenchTarget()
    runtime = runtime_version(sig.format, target_machine(here, sig.format))
    assert runtime.startswith("ai-edge-litert ")  # the installed LiteRT and its version, on this CPU
    assert runtime.endswith(f"on {platform.machine()} ({cpu_model()})")
    rounds = [{"p50_ms": 4.4}, {"p50_ms": 3.9}, {"p50_ms": 4.0}]
    cache.put(Measurement.of_rounds(sig.key(), here.key(), runtime, rounds, 5_000_000, {}))
    cached = cache.get(here.key(), runtime, sig.key())
    assert cached.latency_ms() == 4.0 and cached.spread() == (3.9, 4.4) and cached.samples() == [4.4, 3.9, 4.0]
    assert cache.get("ssh:pi@pi5", runtime, sig.key()) is None  # another target
    assert cache.get(here.key(), "ai-edge-litert 9.9", sig.key()) is None  # another runtime version
    assert cache.get(here.key(), runtime, Signature("efficientnet_lite0", 160).key()) is None
    assert cache.get(here.key(), runtime, Signature("efficientnet_lite0", 128, threads=1).key()) is None
    assert LatencyCache(tmp_path / "latency.json").get(here.key(), runtime, sig.key()) is not None  # on disk
    (tmp_path / "latency.json").write_text("{broken")
    assert cache.get(here.key(), runtime, sig.key()) is None  # a damaged cache is measured again


def test_targets_tell_apart_and_say_where_figures_come_from() -> None:
    from edgecls.remote.host import parse_host

    pi = BenchTarget(host=parse_host("pi@pi5.local"))
    assert pi.key() == "ssh:pi@pi5.local" and pi.key() != BenchTarget().key()
    assert "this machine" in BenchTarget().label() and "pi@pi5.local" in pi.label()
    onnx = Signature("efficientnet_lite0", 128, format="onnx")
    assert runtime_version(onnx.format, target_machine(BenchTarget(), "onnx")).startswith("onnxruntime ")


def test_ctrl_c_fails_the_running_trial_and_queues_it_for_resume(tmp_path: Path) -> None:
    search = open_search(_url(tmp_path), "s", local=True)
    stopped = search.ask()
    size = stopped.choose("size", [96, 128, 160])
    search.abandon(stopped)  # what run_trial does on KeyboardInterrupt
    retry = search.ask()
    assert retry.retry_of == stopped.number and retry.choose("size", [96, 128, 160]) == size
    assert search.finished() == 0


@pytest.fixture(scope="module")
def postgres_url():
    pytest.importorskip("psycopg", reason="the PostgreSQL driver psycopg is not installed")
    from helpers.postgres import start_postgres

    server, reason = start_postgres()
    if server is None:
        pytest.skip(f"PostgreSQL cannot start here: {reason}")
    yield server.url
    server.stop()


@pytest.mark.slow
def test_two_workers_share_a_postgresql_study(postgres_url: str) -> None:
    """The cluster recipe: worker processes on one PostgreSQL study, each taking the next
    trial; a trial left running is failed once and retried."""
    open_search(postgres_url, "shared", local=False).claim("data-a", {"data": "/photos"})
    workers = [subprocess.Popen([sys.executable, "-c", _WORKER, postgres_url, "5"], stdout=subprocess.PIPE,
                                text=True) for _ in range(2)]
    numbers = [n for w in workers for n in json.loads(w.communicate(timeout=300)[0])]
    assert sorted(numbers) == list(range(10))
    search = open_search(postgres_url, "shared", local=True)
    killed = search.ask()
    killed.choose("size", [96, 128, 160])
    assert search.recover(resume=True) == [killed.number]
    assert search.ask().retry_of == killed.number and search.finished() == 10
    with pytest.raises(ConfigError, match="belongs to another dataset"):
        open_search(postgres_url, "shared", local=False).claim("data-b", {})


def test_postgresql_that_cannot_be_reached() -> None:
    pytest.importorskip("psycopg", reason="the PostgreSQL driver psycopg is not installed")
    with pytest.raises(ConfigError, match=r"cannot open the study storage postgresql://tune:\*\*\*@127.0.0.1:1/x"):
        open_search("postgresql://tune:secret@127.0.0.1:1/x", "s", local=False)


@pytest.mark.parametrize(("samples", "size", "decision"), [
    ([1.8, 1.9, 1.95], 10**6, "within"),
    ([2.1, 2.4, 2.2], 10**6, "over"),
    ([1.9, 2.1, 2.2], 10**6, "remeasured-over"),  # the limit lies in the range: median decides
    ([1.5, 2.4, 1.9, 1.8, 1.7], 10**6, "remeasured-within"),
    ([2.0, 1.7, 1.8], 10**6, "within"),  # the limit is the highest round: every round meets it
    ([2.0, 2.3, 2.1], 10**6, "remeasured-over"),  # the lowest round sits on the limit
    ([1.9, 2.1, 2.2], 3 * 10**6, "over"),  # over on size: the latency's range does not matter
])
def test_budget_decision_on_the_median_of_rounds(samples: list[float], size: int, decision: str) -> None:
    budget = Budget(latency_ms=2.0, size_bytes=2 * 10**6)
    assert budget.decide(samples, size) == decision
    assert budget.straddles(samples, size) == decision.startswith("remeasured")


def test_rounds_wanted_grow_only_for_a_range_that_straddles_the_limit() -> None:
    budget = Budget(latency_ms=2.0)
    rounds = [{"p50_ms": v, "p90_ms": v + 1} for v in (1.9, 2.1, 2.2)]
    assert wanted_rounds(rounds[:1], 0, budget) == 3 and wanted_rounds([], 0, None) == 3
    assert wanted_rounds(rounds, 0, budget) == 5 and wanted_rounds(rounds, 0, None) == 3
    assert wanted_rounds(rounds, 0, Budget(latency_ms=2.0, percentile=90)) == 3  # p90: 2.9-3.2, all over
    assert wanted_rounds(rounds, 0, Budget(size_bytes=10)) == 3  # no latency limit


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from helpers.tiny_models import TinyNet, make_onnx, tiny_metadata

    net = TinyNet()
    return make_onnx(tmp_path_factory.mktemp("onnx") / "tiny_int8.onnx", net, tiny_metadata(net, precision="int8"),
                     quantized=True)


ONNX = Signature("tiny_onnx", 16, format="onnx")


def _local_meter(cache: Path, model: Path) -> LatencyMeter:
    """A meter on this machine whose "export" is the tiny ONNX model, benched for real."""
    import shutil

    from edgecls.tune import latency_cache, steps

    def export(signature: Signature, classes: int, folder: Path) -> Path:
        return Path(shutil.copy(model, folder / model.name))

    def bench(artifact: Path, signature: Signature) -> dict:
        return steps.bench_here(artifact, signature.threads, runs=latency_cache.ROUND_RUNS)

    return LatencyMeter(BenchTarget(), LatencyCache(cache), 3, cache.parent / "work", export, bench)


def _key(meter: LatencyMeter) -> tuple[str, str, str]:
    return meter.target.key(), runtime_version("onnx", meter.machine("onnx")), ONNX.key()


def test_an_entry_of_the_single_bench_format_is_measured_again_in_rounds(tiny_onnx: Path, tmp_path: Path) -> None:
    import statistics

    cache = tmp_path / "latency.json"
    meter = _local_meter(cache, tiny_onnx)
    target, runtime, signature = _key(meter)
    old = {"signature": signature, "target": target, "runtime": runtime, "latency": {"p50_ms": 9.0},
           "size_bytes": 123, "measured": "2026-11-30T10:00:00+00:00", "machine": {}}  # as cached before rounds
    cache.write_text(json.dumps({"entries": {LatencyCache.entry_key(target, runtime, signature): old,
                                             "damaged": {"version": 2, "rounds": "x"}}}))
    assert LatencyCache(cache).get(target, runtime, signature) is None
    measured = meter.measure(ONNX, Budget(latency_ms=1000.0))
    assert (meter.measured, meter.hits, meter.benches) == (1, 0, 3)
    p50s = measured.samples()
    assert len(p50s) == 3 and measured.latency_ms() == statistics.median(p50s) < 9.0
    assert measured.spread() == (min(p50s), max(p50s)) and measured.size_bytes == tiny_onnx.stat().st_size
    entry = json.loads(cache.read_text())["entries"][LatencyCache.entry_key(target, runtime, signature)]
    assert entry["version"] == 2 and [r["p50_ms"] for r in entry["rounds"]] == p50s
    assert meter.measure(ONNX, Budget(latency_ms=1000.0)) == measured and meter.hits == 1  # cached now


def test_a_borderline_signature_gets_two_more_rounds_once(tiny_onnx: Path, tmp_path: Path) -> None:
    """Three cached rounds of 1-3 ms straddle a 2.5 ms limit: two more real benches of the
    tiny model (well under 1 ms) run, and the median of the five decides."""
    cache = tmp_path / "latency.json"
    meter = _local_meter(cache, tiny_onnx)
    target, runtime, signature = _key(meter)
    given = [{"p50_ms": v, "p90_ms": v} for v in (1.0, 2.0, 3.0)]
    LatencyCache(cache).put(Measurement.of_rounds(signature, target, runtime, given, 100, {}))
    assert meter.measure(ONNX, Budget(latency_ms=5.0)).samples() == [1.0, 2.0, 3.0]  # not borderline: cached
    budget = Budget(latency_ms=2.5)
    measured = meter.measure(ONNX, budget)
    assert (meter.hits, meter.remeasured, meter.benches) == (1, 1, 2)
    samples = measured.samples()
    assert samples[:3] == [1.0, 2.0, 3.0] and len(samples) == 5 and max(samples[3:]) < 1.0
    assert measured.latency_ms() == 1.0 and budget.decide(samples, measured.size_bytes) == "remeasured-within"
    again = _local_meter(cache, tiny_onnx)  # another process: five rounds are all a signature gets
    assert again.measure(ONNX, budget).samples() == samples and (again.hits, again.benches) == (1, 0)


def test_a_trial_with_a_finished_trials_parameters_reuses_its_result(tmp_path: Path) -> None:
    from edgecls.tune.study import STATE_PRUNED

    lrs = [0.03, 0.01, 0.003]
    search = open_search(_url(tmp_path), "s", local=True)
    search.claim("data-a", {})

    def ask(lr: float):
        search.study.enqueue_trial({"lr": lr})  # the sampler's draw, fixed
        handle = search.ask()
        assert handle.choose("lr", lrs) == lr
        return handle

    trained = ask(0.01)
    trained.set("val_accuracy", 0.8)
    trained.set("run_dir", "/runs/0000")
    trained.constrain(-0.5)
    search.tell(trained, STATE_COMPLETE, 0.8)
    stopped = ask(0.003)
    stopped.report(0.4, 1)
    search.tell(stopped, STATE_PRUNED)

    repeat = ask(0.01)
    record = search.repeat(repeat)
    assert record["repeat_of"] == trained.number and record["state"] == "complete" and record["value"] == 0.8
    assert record["val_accuracy"] == 0.8 and "run_dir" not in record  # the twin's run stays the finalist
    assert search.study.trials[repeat.number].constraints == {"budget": -0.5}
    again = ask(0.003)
    pruned = search.repeat(again)
    assert pruned["repeat_of"] == stopped.number and pruned["state"] == "pruned"
    assert search.study.trials[again.number].intermediate_values == {1: 0.4}  # TPE ranks it as its twin
    assert search.repeat(ask(0.03)) is None  # new parameters: the trial goes on
    assert search.finished() == 2 and search.tried() == 2  # repeats count neither way
