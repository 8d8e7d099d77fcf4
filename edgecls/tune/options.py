"""The options of ``edgecls tune`` as a user gives them (budgets with units, comma-separated
lists), one field per command-line option and API parameter: the single source of their
help texts and defaults. ``TuneOptions.to_config`` turns them into a ``TuneConfig``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgecls.config import option
from edgecls.errors import ConfigError

if TYPE_CHECKING:  # the command line imports this module at start-up: the search loads on use
    from edgecls.tune.space import SearchSpace
    from edgecls.tune.tuner import TuneConfig

DEFAULT_STUDY = "edgecls-tune"
DEFAULT_TRIALS = 20
DEFAULT_FINAL_EPOCHS = 20
Values = str | Sequence[Any] | None  # "96,128" on the command line, [96, 128] from Python


@dataclass
class TuneOptions:
    """What ``edgecls tune`` takes besides ``--data``, ``--out`` and ``--resume``."""

    max_latency: str | None = option(None, help="Latency budget with its unit, e.g. 10ms, 0.5s (on the p50).")
    max_size: str | None = option(None, help="Artifact size budget, e.g. 4MB (10^6 bytes), 2MiB.")
    latency_percentile: int = option(50, help="Percentile the latency budget is on: 50, 90 or 99.")
    host: str | None = option(None, help=("Measure on this device over ssh (user@host[:port]); default: this "
                                          "machine, and every output says so."))
    target: str | None = option(None, help="Device profile (targets/): its format and threads.")
    time_budget: str | None = option(
        None, help="Wall-clock budget for the search and the winner's full training, e.g. 3h, 90min: no new "
                   "trial starts once what is left is the best trial's estimated full training.")
    trials: int | None = option(None, help=("Trained trials to finish (all workers together). "
                                            f"Default: {DEFAULT_TRIALS}."))
    storage: str | None = option(None, help=("Study database URL shared by several workers (postgresql://..., "
                                             "mysql://..., sqlite:///..., journal:PATH). Default: OUT/study.db."))
    study: str | None = option(None, help=f"Study name in the storage. Default: {DEFAULT_STUDY}.")
    families: Values = option(None, help=("Model families, e.g. efficientnet_lite0,mobilenet_v3_small. "
                                          "Default: EfficientNet-Lite0-2."))
    sizes: Values = option(None, help="Input sizes to try. Default: 96,128,160,192,224.")
    mac_reductions: Values = option(None, help="Structured-pruning MAC reductions. Default: 0,0.15,0.3,0.45.")
    formats: Values = option(None, help="Formats to try. Default: the --target's, else tflite.")
    threads: Values = option(None, help="Thread counts to try. Default: the runtime's.")
    final_epochs: int | None = option(None, help=f"The winner's training epochs. Default: {DEFAULT_FINAL_EPOCHS}.")
    seed: int = option(0, help="Split, sampler and training seed.")

    def to_config(self, data: str | Path | None, out: str | Path, resume: bool = False) -> TuneConfig:
        """The ``TuneConfig`` of these options (with ``resume``, the saved settings of
        ``out`` where an option is not given); connects once to ``host``.

        Raises:
            ConfigError: a missing dataset, a budget without unit, a bad list.
        """
        from edgecls.tune.budget import make_budget
        from edgecls.tune.latency_cache import BenchTarget
        from edgecls.tune.trial import Fidelity
        from edgecls.tune.tuner import TuneConfig

        out = Path(out)
        if resume:
            return self._resumed(data, out)
        if data is None:
            raise ConfigError("no dataset given", "pass --data DIR (a folder with one subfolder per class)")
        budget = make_budget(self.max_latency, self.max_size, self.latency_percentile)
        return TuneConfig(data=Path(data), out=out, budget=budget, space=self._space().check(),
                          fidelity=Fidelity(final_epochs=self.final_epochs or DEFAULT_FINAL_EPOCHS),
                          target=BenchTarget(host=_reachable(self.host), profile=self.target),
                          storage=self.storage, study=self.study or DEFAULT_STUDY,
                          trials=self.trials or DEFAULT_TRIALS, time_s=self._time_s(None), seed=self.seed)

    def _resumed(self, data: str | Path | None, out: Path) -> TuneConfig:
        from edgecls.tune.budget import Budget
        from edgecls.tune.latency_cache import BenchTarget
        from edgecls.tune.space import SearchSpace
        from edgecls.tune.trial import Fidelity
        from edgecls.tune.tuner import TuneConfig, load_settings

        saved = load_settings(out)
        return TuneConfig(data=Path(data or saved["data"]), out=out, budget=Budget(**saved["budget"]),
                          space=SearchSpace.from_description(saved["space"]).check(),
                          fidelity=Fidelity(**saved["fidelity"]),
                          target=BenchTarget(host=_reachable(self.host or saved.get("host")),
                                             profile=self.target or saved.get("profile")),
                          storage=self.storage or saved.get("storage"),
                          study=self.study or saved.get("study") or DEFAULT_STUDY,
                          trials=self.trials or saved["trials"], time_s=self._time_s(saved.get("time_s")),
                          seed=self.seed)

    def _time_s(self, saved: float | None) -> float | None:
        from edgecls.tune.budget import parse_duration

        return parse_duration(self.time_budget) if self.time_budget else saved

    def _space(self) -> SearchSpace:
        from edgecls.runtime.targets import load_target
        from edgecls.tune.space import SearchSpace

        space = SearchSpace()
        profile = load_target(self.target) if self.target else None
        values: dict[str, Any] = {
            "families": _names(self.families), "sizes": _numbers(self.sizes, int, "--sizes"),
            "mac_reductions": _numbers(self.mac_reductions, float, "--mac-reductions"),
            "formats": _names(self.formats) or ((profile.format,) if profile else None),
            "threads": (_numbers(self.threads, int, "--threads")
                        or ((profile.threads,) if profile and profile.threads else None)),
        }
        for key, value in values.items():
            if value:
                setattr(space, key, value)
        return space


def _items(values: Values) -> list[Any]:
    if values is None:
        return []
    if isinstance(values, str):
        return [v.strip() for v in values.split(",") if v.strip()]
    return list(values)


def _numbers(values: Values, kind: type, option_name: str) -> tuple | None:
    try:
        return tuple(kind(v) for v in _items(values)) or None
    except (TypeError, ValueError):
        raise ConfigError(f"{option_name} {values!r} is not a comma-separated list of numbers",
                          f"e.g. {option_name} 96,128,160") from None


def _names(values: Values) -> tuple[str, ...] | None:
    return tuple(str(v).lower() for v in _items(values)) or None


def _reachable(host: str | None) -> Any:
    """The parsed host, after one connection: an unreachable device stops the search
    before anything is trained."""
    if host is None:
        return None
    from edgecls.remote.host import parse_host
    from edgecls.tune.steps import check_host

    spec = parse_host(host)
    check_host(spec)
    return spec
