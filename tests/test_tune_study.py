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
from edgecls.tune.latency_cache import BenchTarget, LatencyCache, Measurement, runtime_version, target_machine
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
    cache.put(Measurement(sig.key(), here.key(), runtime, {"p50_ms": 4.0}, 5_000_000))
    assert cache.get(here.key(), runtime, sig.key()).latency_ms() == 4.0
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
