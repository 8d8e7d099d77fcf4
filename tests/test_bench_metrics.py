"""Bench building blocks: latency statistics and accuracy metrics on known inputs."""

from __future__ import annotations

import numpy as np
import pytest

from edgecls.metrics import top_k_indices
from edgecls.bench import accuracy, latency, machine, memory
from edgecls.errors import DataError


def test_summarize_known_times() -> None:
    times = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 100.0])
    stats = latency.summarize(times)
    assert stats["runs"] == 10 and stats["min_ms"] == 1.0 and stats["max_ms"] == 100.0
    assert stats["p50_ms"] == 5.5 and stats["mean_ms"] == 14.5
    assert stats["std_ms"] == pytest.approx(np.std(times, ddof=1), abs=1e-4)
    assert stats["fps"] == pytest.approx(1000 / 14.5, abs=0.01)
    assert stats["block_p50_ms"] == [1.5, 3.5, 5.5, 7.5, 54.5]
    assert stats["block_p50_spread_pct"] == pytest.approx(100 * 53 / 5.5, abs=0.01)


def test_time_calls_warms_up_untimed_then_times_exactly_n() -> None:
    calls = []
    times = latency.time_calls(lambda: calls.append(1), warmup=3, runs=7)
    assert len(calls) == 10 and times.shape == (7,) and (times >= 0).all()


def test_time_budget_runs_at_least_the_minimum() -> None:
    times = latency.time_calls(lambda: None, warmup=0, runs=None, seconds=0.0)
    assert times.size == latency.MIN_RUNS_FOR_BUDGET


def test_labels_match_by_name_or_first_imagenet_name() -> None:
    model = ["background", "tench, Tinca tinca", "goldfish", "golf ball", "parachute, chute"]
    assert accuracy.class_output_indices(["Parachute", "tench", "golf ball"], model, 5).tolist() == [4, 1, 3]
    with pytest.raises(DataError, match="not among the model's labels: n01440764"):
        accuracy.class_output_indices(["n01440764"], model, 5)
    assert accuracy.class_output_indices(["a", "b"], None, 2).tolist() == [0, 1]
    with pytest.raises(DataError, match="--labels"):
        accuracy.class_output_indices(["a", "b"], None, 1000)


def test_top_k_indices_best_first() -> None:
    probs = np.array([[0.1, 0.5, 0.2, 0.15, 0.05, 0.0], [0.3, 0.0, 0.0, 0.0, 0.0, 0.7]])
    top = top_k_indices(probs, 3)
    assert top[0].tolist() == [1, 2, 3] and top[1].tolist() == [5, 0, 1]  # ties: lower index first
    assert top_k_indices(probs[:, :2], 5).shape == (2, 2)


def test_top5_is_left_out_for_models_of_five_classes_or_fewer() -> None:
    probs = np.array([[0.7, 0.3], [0.4, 0.6]])
    top_k = top_k_indices(probs, accuracy.TOP_K)
    two = accuracy.accuracy_metrics(top_k, np.array([0, 0]), ["ants", "bees"], np.array([0, 1]), 2)
    assert "top5" not in two and two["top_k"] is None and two["top1"] == 0.5
    wide = top_k_indices(np.eye(6)[[0, 1]], accuracy.TOP_K)
    six = accuracy.accuracy_metrics(wide, np.array([0, 1]), list("abcdef"), np.arange(6), 6)
    assert six["top5"] == 1.0 and six["top_k"] == 5


def test_metrics_match_scikit_learn() -> None:
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(3)
    targets = rng.integers(0, 4, 200)
    probs = rng.random((200, 6))
    probs[np.arange(200), targets + 1] += rng.random(200) * 1.2  # data class i is output i+1
    top_k = top_k_indices(probs, accuracy.TOP_K)
    metrics = accuracy.accuracy_metrics(top_k, targets, ["a", "b", "c", "d"], np.array([1, 2, 3, 4]))
    predicted = top_k[:, 0] - 1  # -1 and 4 are outside the data classes
    assert metrics["top1"] == pytest.approx(np.mean(predicted == targets), abs=1e-6)
    assert metrics["top5"] == pytest.approx(sklearn_metrics.top_k_accuracy_score(
        targets + 1, probs, k=5, labels=range(6)), abs=1e-6)
    inside = (predicted >= 0) & (predicted < 4)
    expected = sklearn_metrics.confusion_matrix(targets[inside], predicted[inside], labels=range(4))
    assert metrics["confusion"] == expected.tolist()
    assert sum(metrics["confusion_other"]) == int((~inside).sum())
    f1 = sklearn_metrics.f1_score(targets, np.where(inside, predicted, 99), labels=range(4), average="macro")
    assert metrics["macro_f1"] == pytest.approx(f1, abs=1e-6)
    for i, name in enumerate("abcd"):
        assert metrics["per_class"][name] == pytest.approx(np.mean(predicted[targets == i] == i), abs=1e-6)


def test_agreement() -> None:
    assert accuracy.agreement(["a", "b", "c", "d"], ["a", "x", "c", "d"]) == 0.75
    with pytest.raises(ValueError):
        accuracy.agreement(["a"], ["a", "b"])


def test_machine_and_memory_are_described() -> None:
    info = machine.describe_machine("x86-cpu")
    assert info["target"] == "x86-cpu" and info["cores_logical"] >= 1 and info["python"].count(".") == 2
    assert info["cpu_model"] and info["os"]
    current = memory.current_rss_mb()
    block = np.ones(64 * 2**20, np.uint8)  # +64 MiB resident, then freed: the peak keeps it
    del block
    assert current > 10 and memory.peak_rss_mb() >= current + 60
