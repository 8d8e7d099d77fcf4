"""``benchmark`` (``edgecls bench``: here or on ssh hosts) and ``report`` (``edgecls report``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgecls.api.results import BenchResult
from edgecls.atomic import write_text_atomic
from edgecls.bench.report import merge_records, merge_reports
from edgecls.bench.runner import BenchOptions, run_bench
from edgecls.bench.schema import dump_report
from edgecls.bench.targets import apply_target
from edgecls.errors import ConfigError, EdgeclsError
from edgecls.formats import MODEL_SUFFIXES, format_for_path, without_side_files
from edgecls.rundir import RunDir
from edgecls.runtime.backends import backend_for_suffix, check_model_file


def benchmark(models: str | Path | Sequence[str | Path], data: str | Path | None = None, *,
              json_path: str | Path | None = None, hosts: str | Sequence[str] | None = None,
              threads: int | str | Sequence[int] | None = None, providers: str | Sequence[str] | None = None,
              remote_python: str | None = None, install: str = "index", progress: bool = True,
              **options: Any) -> BenchResult:
    """Measures latency, size, memory and accuracy of model files (``edgecls bench``), each
    in a fresh process through the edgecls runtime; with ``hosts``, on those devices over ssh.

    Args:
        models: model files, or folders of them (an export folder, a run: its ``export/``).
        data: labelled images (a folder, a pre-split dataset or a run directory).
        json_path: also write the report object there (``bench.json``).
        hosts: ``user@host[:port]`` or ``~/.ssh/config`` aliases, measured in parallel.
        threads: thread count(s), e.g. ``[1, 2, 4]`` or ``"1,2,4"``: one record per count.
        providers: ONNX Runtime execution providers.
        remote_python: with ``hosts``: the device's Python.
        install: with ``hosts``: how edgecls gets there when the device has none
            (``index``, ``wheels``, ``never``).
        progress: draw progress bars.
        options: the other ``edgecls.bench.runner.BenchOptions`` fields (``runs``,
            ``seconds``, ``warmup``, ``reference``, ``target``, ``min_accuracy``, ...).

    Raises:
        EdgeclsError: a missing model, an unknown format, a bad option (before measuring).
    """
    bench_options = bench_options_of(data, threads, providers, options)
    if json_path is not None:
        check_output(Path(json_path))
    files = models_in([models] if isinstance(models, (str, Path)) else list(models))
    check_models(files)
    if hosts:
        report = _bench_on_hosts(files, bench_options, hosts, remote_python, install, progress)
    else:
        apply_target(bench_options, threads_given=threads is not None)
        report = _bench_here(files, bench_options, progress)
    if json_path is not None:
        write_text_atomic(Path(json_path), dump_report(report))
    merged = merge_records([report], check_labels=False) if report["records"] else None
    return BenchResult(merged or _hosts_only(report), report, Path(json_path) if json_path else None)


def report(files: str | Path | Sequence[str | Path], html: str | Path | None = None, md: str | Path | None = None,
           changes: Sequence[str | Path] | None = None) -> BenchResult:
    """Compares bench results of one or more machines (``edgecls report``); with ``html``
    / ``md`` also writes the page with plots / the Markdown table."""
    from edgecls.bench.render_html import render_html
    from edgecls.bench.render_md import render_markdown
    from edgecls.explain.changes import embed_changes

    merged = merge_reports([files] if isinstance(files, (str, Path)) else list(files))
    if html is not None:
        page = render_html(merged)
        write_text_atomic(Path(html), embed_changes(page, [Path(c) for c in changes]) if changes else page)
    if md is not None:
        write_text_atomic(Path(md), render_markdown(merged))
    return BenchResult(merged)


def bench_options_of(data: str | Path | None, threads: Any, providers: Any, options: dict[str, Any]) -> BenchOptions:
    """``BenchOptions`` from the API's arguments; an unknown name is a ConfigError."""
    known = set(BenchOptions.__dataclass_fields__) - {"data", "threads", "providers"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ConfigError(f"unknown bench option(s) {', '.join(unknown)}", f"valid: {', '.join(sorted(known))}")
    paths = {k: Path(v) for k, v in options.items() if k in ("reference", "labels_file") and v is not None}
    return BenchOptions(data=Path(data) if data is not None else None, threads=parse_threads(threads),
                        providers=split_names(providers), **{**options, **paths})


def parse_threads(value: int | str | Sequence[int] | None) -> list[int | None]:
    """``"1,2,4"``, ``2`` or ``[1, 2]`` as distinct thread counts; None: the backend's choice."""
    if value is None:
        return [None]
    if isinstance(value, int):
        return [value]
    try:
        counts = [int(part) for part in (value.split(",") if isinstance(value, str) else value)
                  if str(part).strip()]
    except ValueError:
        raise EdgeclsError(f"--threads {value!r} is not a list of integers", "e.g. --threads 1,2,4") from None
    if not counts:
        raise EdgeclsError("--threads is empty", "e.g. --threads 2")
    return list(dict.fromkeys(counts))


def split_names(value: str | Sequence[str] | None) -> list[str] | None:
    if not value:
        return None
    parts = value.split(",") if isinstance(value, str) else value
    return [part.strip() for part in parts if part.strip()]


def check_output(path: Path) -> None:
    """Fails before a long bench, not after it, when the JSON cannot be written."""
    if path.is_dir():
        raise EdgeclsError(f"--json {path} is a folder", "give a file name, e.g. --json bench.json")
    parent = path.parent if str(path.parent) else Path(".")
    if parent.exists() and not parent.is_dir():
        raise EdgeclsError(f"cannot write {path}: {parent} is not a folder")


def models_in(paths: Sequence[str | Path]) -> list[Path]:
    """``paths`` with each folder replaced by the model files in it (a run's: in its
    ``export/``), in name order, and side files of given models dropped (``model_*``
    matches OpenVINO's ``.bin``). A folder without any is a user error."""
    out: list[Path] = []
    for path in map(Path, paths):
        if not path.is_dir():
            out.append(path)
            continue
        found = _model_files(path) or _model_files(RunDir(path).export.root)
        if not found:
            raise EdgeclsError(f"{path} is a folder without model files ({', '.join(MODEL_SUFFIXES)})",
                               "pass model files, an export folder or a run exported with "
                               "`edgecls export RUN`")
        out.extend(found)
    return without_side_files(out)


def check_models(models: list[Path]) -> None:
    """A missing file, a folder or an unknown suffix is a user error (exit 2), found
    before measuring anything; a file that fails to load is a ``failed`` record."""
    for model in models:
        check_model_file(model)
        backend_for_suffix(model)


def prepare_options(remote_python: str | None, install: str) -> Any:
    """Checks ``install`` and builds the device preparation options."""
    from edgecls.remote.device import INSTALL_POLICIES, PrepareOptions

    if install not in INSTALL_POLICIES:
        raise ConfigError(f"--install {install!r} is not one of {', '.join(INSTALL_POLICIES)}",
                          "e.g. --install wheels for a device without internet")
    return PrepareOptions(python=remote_python, install=install)


def _model_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and format_for_path(p) is not None)


def _bench_here(models: list[Path], options: BenchOptions, progress: bool) -> dict[str, Any]:
    from edgecls.present.progress import step_bar

    steps = len(models) * len(options.threads) + (1 if options.reference else 0)
    with step_bar("measuring", steps, enabled=progress) as tick:
        return run_bench(models, options, progress=tick)


def _bench_on_hosts(models: list[Path], options: BenchOptions, hosts: str | Sequence[str],
                    remote_python: str | None, install: str, progress: bool) -> dict[str, Any]:
    from edgecls.present.hosts import HostProgress
    from edgecls.remote.bench import RemoteBenchJob, bench_on_hosts
    from edgecls.remote.host import parse_hosts
    from edgecls.remote.ssh import SshOptions

    job = RemoteBenchJob(models, options, parse_hosts([hosts] if isinstance(hosts, str) else list(hosts)),
                         SshOptions(), prepare_options(remote_python, install))
    if not progress:
        return bench_on_hosts(job, say=lambda host, message: None)
    with HostProgress(None, job.hosts) as bars:
        return bench_on_hosts(job, say=bars.update)


def _hosts_only(report: dict[str, Any]) -> Any:
    """A result without records (every host failed): the hosts' statuses alone."""
    from edgecls.bench.report import MergedReport

    return MergedReport(rows=[], hosts=list(report.get("hosts") or []))
