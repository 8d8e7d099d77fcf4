"""`edgecls tune`: search for the most accurate model that meets a latency and size budget
measured on the target, then train and export the winner."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from edgecls.cli.app import app
from edgecls.errors import ConfigError


def _numbers(text: str | None, kind: type, option: str) -> tuple | None:
    if text is None:
        return None
    try:
        return tuple(kind(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ConfigError(f"{option} {text!r} is not a comma-separated list of numbers",
                          f"e.g. {option} 96,128,160") from None


def _names(text: str | None) -> tuple[str, ...] | None:
    return tuple(v.strip().lower() for v in text.split(",") if v.strip()) if text else None


@app.command("tune")
def tune(
    data: Path = typer.Option(None, "--data", help="Image folder (as for `edgecls train`)."),
    out: Path = typer.Option(..., "--out", help="Tuning folder: trials, study, report and best/."),
    max_latency: str = typer.Option(None, "--max-latency",
                                    help="Latency budget with its unit, e.g. 10ms, 0.5s (on the p50)."),
    max_size: str = typer.Option(None, "--max-size", help="Artifact size budget, e.g. 4MB (10^6 bytes), 2MiB."),
    latency_percentile: int = typer.Option(50, "--latency-percentile",
                                           help="Percentile the latency budget is on: 50, 90 or 99."),
    host: str = typer.Option(None, "--host", help="Measure on this device over ssh (user@host[:port]); "
                                                  "default: this machine, and every output says so."),
    target: str = typer.Option(None, "--target", help="Device profile (targets/): its format and threads."),
    time_budget: str = typer.Option(None, "--time", help="No new trial starts after this long, e.g. 3h, 90min."),
    trials: int = typer.Option(None, "--trials", min=1,
                               help="Trained trials to finish (all workers together). Default: 20."),
    resume: bool = typer.Option(False, "--resume", help="Continue the study in --out with its saved settings."),
    storage: str = typer.Option(None, "--storage", help="Study database URL shared by several workers "
                                                        "(postgresql://..., mysql://..., sqlite:///..., "
                                                        "journal:PATH). Default: OUT/study.db."),
    study: str = typer.Option(None, "--study", help="Study name in the storage. Default: edgecls-tune."),
    families: str = typer.Option(None, "--families", help="Model families, e.g. efficientnet_lite0,"
                                                          "mobilenet_v3_small. Default: EfficientNet-Lite0-2."),
    sizes: str = typer.Option(None, "--sizes", help="Input sizes to try. Default: 96,128,160,192,224."),
    mac_reductions: str = typer.Option(None, "--mac-reductions",
                                       help="Structured-pruning MAC reductions. Default: 0,0.15,0.3,0.45."),
    formats: str = typer.Option(None, "--formats", help="Formats to try. Default: the --target's, else tflite."),
    threads: str = typer.Option(None, "--threads", help="Thread counts to try. Default: the runtime's."),
    final_epochs: int = typer.Option(None, "--final-epochs", help="The winner's training epochs. Default: 20."),
    seed: int = typer.Option(0, "--seed", help="Split, sampler and training seed."),
) -> None:
    """Find the most accurate model that meets the budget, measured on the target.

    Each trial samples a candidate (family, input size, structured-pruning MAC reduction,
    fine-tune settings, format, threads). Its latency and size are measured, not
    estimated: an INT8 artifact with untrained weights is benched on the target, once
    per architecture (cached per target and runtime version). A candidate over budget
    is never trained. The others train at low fidelity (the head on cached features,
    then a short fine-tune), ranked on val accuracy; successive halving stops losers
    early. The finalists are benched again with their trained weights (one over budget
    drops out); the winner is trained in full and exported through the accuracy gate into
    OUT/best/run and OUT/best/export; OUT/index.html, OUT/trials.csv and OUT/pareto.png
    show every trial and the Pareto front.
    """
    from edgecls.tune.tuner import open_tuning, run_tuning

    config = _config(data, out, max_latency, max_size, latency_percentile, host, target, time_budget, trials,
                     resume, storage, study, families, sizes, mac_reductions, formats, threads, final_epochs, seed)
    console = Console()
    console.print(f"budget: {config.budget.describe()}; {config.target.label()}", highlight=False, soft_wrap=True)
    tuning = open_tuning(config, resume)  # storage, study and data checked before TensorFlow loads
    from edgecls.present.tf_import import import_tensorflow_quietly

    import_tensorflow_quietly()
    result = run_tuning(tuning, say=lambda m: console.print(escape(m), highlight=False, soft_wrap=True))
    _render(result, console)
    if result.interrupted:
        typer.echo(f"interrupted: continue with `edgecls tune --out {out} --resume`", err=True)
        raise typer.Exit(130)


def _config(data, out, max_latency, max_size, percentile, host, target, time_budget, trials, resume,
            storage, study, families, sizes, mac_reductions, formats, threads, final_epochs, seed) -> Any:
    """The TuneConfig from the options (or, with --resume, from the saved settings)."""
    from edgecls.tune.budget import Budget, make_budget, parse_duration
    from edgecls.tune.latency_cache import BenchTarget
    from edgecls.tune.space import SearchSpace
    from edgecls.tune.trial import Fidelity
    from edgecls.tune.tuner import DEFAULT_STUDY, TuneConfig, load_settings

    if resume:
        saved = load_settings(out)
        budget = Budget(**saved["budget"])
        space = SearchSpace.from_description(saved["space"])
        fidelity = Fidelity(**saved["fidelity"])
        data = data or Path(saved["data"])
        host, target = host or saved.get("host"), target or saved.get("profile")
        storage, study = storage or saved.get("storage"), study or saved.get("study")
        time_s = parse_duration(time_budget) if time_budget else saved.get("time_s")
        trials = trials or saved["trials"]
    else:
        if data is None:
            raise ConfigError("no dataset given", "pass --data DIR (a folder with one subfolder per class)")
        budget = make_budget(max_latency, max_size, percentile)
        time_s = parse_duration(time_budget) if time_budget else None
        space = _space(families, sizes, mac_reductions, formats, threads, target)
        fidelity = Fidelity(final_epochs=final_epochs or 20)
        trials = trials or 20
    bench_target = BenchTarget(host=_reachable(host), profile=target)
    return TuneConfig(data=data, out=out, budget=budget, space=space.check(), fidelity=fidelity,
                      target=bench_target, storage=storage, study=study or DEFAULT_STUDY, trials=trials,
                      time_s=time_s, seed=seed)


def _space(families, sizes, mac_reductions, formats, threads, target) -> Any:
    from edgecls.runtime.targets import load_target
    from edgecls.tune.space import SearchSpace

    space = SearchSpace()
    profile = load_target(target) if target else None
    values: dict[str, Any] = {
        "families": _names(families), "sizes": _numbers(sizes, int, "--sizes"),
        "mac_reductions": _numbers(mac_reductions, float, "--mac-reductions"),
        "formats": _names(formats) or ((profile.format,) if profile else None),
        "threads": _numbers(threads, int, "--threads") or ((profile.threads,) if profile and profile.threads else None),
    }
    for key, value in values.items():
        if value:
            setattr(space, key, value)
    return space


def _reachable(host: str | None) -> Any:
    """The parsed --host, after one connection: an unreachable device stops the search
    before anything is trained."""
    if host is None:
        return None
    from edgecls.remote.host import parse_host
    from edgecls.tune.steps import check_host

    spec = parse_host(host)
    check_host(spec)
    return spec


def _render(result: Any, console: Any) -> None:
    from rich.table import Table

    table = Table(title=f"trials ({result.summary['figures']})")
    for column in ("trial", "state", "candidate", "latency ms", "size MB", "trained ms", "val acc"):
        table.add_column(column, justify="left" if column in ("state", "candidate") else "right")
    for row in result.rows:
        candidate = f"{row['family']} {row['size']}px mac-{(row['mac_reduction'] or 0):.2f} {row['format']}"
        table.add_row(str(row["trial"]), row["state"] + (" *" if row["pareto"] else ""), candidate,
                      _num(row["latency_ms"], 2), _num(row["size_mb"], 2), _num(row.get("trained_latency_ms"), 2),
                      _num(row["val_accuracy"], 4))
    console.print(table)
    summary = result.summary
    console.print(f"{summary['trials']} trials: {summary['complete']} complete, {summary['pruned']} pruned, "
                  f"{summary['over_budget']} over budget (not trained), {summary['failed']} failed; latency "
                  f"measured {summary['latency_measured_here']}x, {summary['latency_cache_hits']} cache hits. "
                  "*: Pareto front", highlight=False)
    for note in result.notes:
        console.print(f"[yellow]note:[/] {escape(note)}", highlight=False)
    winner = result.winner
    if winner:
        console.print(f"winner: trial {winner['trial']} {winner['family']} {winner['size']}px, "
                      f"{winner['latency_ms']:.2f} ms, {winner['size_bytes'] / 1e6:.2f} MB "
                      f"({winner['figures']}); test accuracy {_num(winner['float_test_accuracy'], 4)} (float), "
                      f"INT8 gate {winner['gate']}; run {winner['run']}; "
                      f"artifact {winner['artifact']}", highlight=False, soft_wrap=True)


def _num(value: Any, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"
