"""A tiny search space and config for `edgecls tune` tests: the tiny CNN of
``helpers.runs`` (registered on import), 32 px, one or two epochs per trial."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgecls.tune.budget import Budget
from edgecls.tune.space import SearchSpace
from edgecls.tune.trial import Fidelity
from edgecls.tune.tuner import TuneConfig
from helpers.runs import TINY


def tiny_space(sizes: tuple[int, ...] = (32,), weights: str = "none") -> SearchSpace:
    return SearchSpace(families=(TINY,), sizes=sizes, mac_reductions=(0.0,), lrs=(0.01,),
                       fine_tune_lrs=(0.003,), fine_tune_fractions=(1.0,), scratch_lrs=(0.01, 0.003),
                       weights={TINY: weights})


def tiny_tune_config(data: Path, out: Path, cache: Path, **overrides: Any) -> TuneConfig:
    """Two trials of the tiny CNN, a generous budget, latency cached in ``cache``."""
    values: dict[str, Any] = dict(
        data=data, out=out, budget=Budget(latency_ms=1000.0, size_bytes=10**7), space=tiny_space(),
        fidelity=Fidelity(head_epochs=1, fine_tune_epochs=1, scratch_epochs=2, final_epochs=3, batch_size=8),
        trials=2, cache=cache, base={"augment": {"enabled": False}})
    values.update(overrides)
    return TuneConfig(**values)
