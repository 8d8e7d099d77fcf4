"""Budgets with units and the search space of `edgecls tune` (no TensorFlow needed)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from edgecls.errors import ConfigError
from edgecls.tune.budget import Budget, make_budget, parse_duration, parse_latency, parse_size
from edgecls.tune.space import SearchSpace, Signature


@pytest.mark.parametrize("text, ms", [("10ms", 10.0), ("15 ms", 15.0), ("0.5s", 500.0),
                                      ("800us", 0.8), (" 2.5 MS ", 2.5)])
def test_latency_with_units(text: str, ms: float) -> None:
    assert parse_latency(text) == pytest.approx(ms)


@pytest.mark.parametrize("text, size", [("4MB", 4_000_000), ("500kB", 500_000), ("2MiB", 2 * 2**20),
                                        ("1.5 mb", 1_500_000)])
def test_size_with_units(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text, match", [("10", "has no unit"), ("4", "has no unit"),
                                         ("ten ms", "not a number"), ("10 parsecs", "unknown unit"),
                                         ("0ms", "above zero")])
def test_bad_latency_is_one_clear_error(text: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as info:
        parse_latency(text)
    assert "\n" not in str(info.value) and "--max-latency" in str(info.value)


def test_size_without_unit_refused_and_durations() -> None:
    with pytest.raises(ConfigError, match="--max-size '4' has no unit"):
        parse_size("4")
    assert parse_duration("3h") == 10800 and parse_duration("90min") == 5400
    with pytest.raises(ConfigError, match="no unit"):
        parse_duration("3")


def test_budget_percentile_and_excess() -> None:
    budget = make_budget("10ms", "2MB", 90)
    assert budget.latency_key == "p90_ms"
    assert budget.excess(5.0, 1_000_000) == pytest.approx(-0.5)
    assert budget.excess(15.0, 1_000_000) == pytest.approx(0.5)
    assert budget.excess(5.0, 3_000_000) == pytest.approx(0.5)
    with pytest.raises(ConfigError, match="--latency-percentile 75"):
        make_budget("10ms", None, 75)
    with pytest.raises(ConfigError, match="no budget"):
        make_budget(None, None)
    assert Budget(latency_ms=10).describe() == "p50 latency <= 10 ms"


class FixedChoice:
    """Takes the first option of each dimension except the ones given, recording the asks."""

    def __init__(self, **picks: object) -> None:
        self.picks, self.asked = picks, []

    def choose(self, name: str, options):
        self.asked.append(name)
        return self.picks.get(name, options[0])


def test_space_asks_only_what_applies() -> None:
    space = SearchSpace(families=("efficientnet_lite0", "mobilenet_v3_small"), sizes=(96, 128),
                        weights={"efficientnet_lite0": "imagenet", "mobilenet_v3_small": "none"}).check()
    scratch = FixedChoice(family="mobilenet_v3_small", mac_reduction=0.3)
    candidate = space.sample(scratch)
    assert candidate.weights == "none" and candidate.fine_tune_lr is None
    assert "fine_tune_lr" not in scratch.asked and "lr" not in scratch.asked
    assert candidate.signature.mac_reduction == 0.3  # MobileNetV3 blocks can be narrowed
    pretrained = space.sample(FixedChoice(family="efficientnet_lite0", size=128))
    assert pretrained.train_overrides()["fine_tune_lr"] is not None
    assert pretrained.signature.key() == "efficientnet_lite0-128px-mac0.00-int8-tflite-tdefault"


def test_unprunable_family_has_no_pruning_choice() -> None:
    space = SearchSpace(families=("efficientnet_lite0",), sizes=(96,), mac_reductions=(0.0, 0.3),
                        weights={"efficientnet_lite0": "imagenet"})
    assert space.pruning_choices("some_custom_net") == (0.0,)
    assert len(space.check().signatures()) == 2
    assert Signature("a", 96).key() != Signature("a", 96, threads=2).key()


@pytest.mark.parametrize("change, match", [({"sizes": (100,)}, "multiples of 8"),
                                           ({"families": ("resnet9000",)}, "unknown model family"),
                                           ({"formats": ("coreml",)}, "formats"),
                                           ({"mac_reductions": (0.95,)}, "MAC reductions")])
def test_invalid_space_never_starts(change: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        SearchSpace(**change).check()


def _every_candidate(space: SearchSpace) -> set:
    """Every candidate ``sample`` can draw: each option of each question, depth first."""
    found, pending = set(), [()]
    while pending:
        path = list(pending.pop())
        asked = 0

        def choose(name, options, path=path):
            nonlocal asked
            options = list(dict.fromkeys(options))
            if asked == len(path):  # a new question: the first option now, the others later
                pending.extend((*path, i) for i in range(1, len(options)))
                path.append(0)
            asked += 1
            return options[path[asked - 1]]

        found.add(space.sample(SimpleNamespace(choose=choose)))
    return found


def test_space_size_counts_every_distinct_candidate() -> None:
    space = SearchSpace(families=("efficientnet_lite0", "mobilenet_v3_small"), sizes=(96, 128, 128),
                        mac_reductions=(0.0, 0.3), threads=(None, 2)).check()
    assert space.weights["mobilenet_v3_small"] == "none"  # from scratch: scratch_lrs only
    assert space.size() == len(_every_candidate(space)) == 2 * 2 * 2 * 27 + 2 * 2 * 2 * 2
