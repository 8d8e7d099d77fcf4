"""``edgecls.run_live``: the live loop of ``edgecls run`` (a camera, video, stream or image
folder through a model, into JSON lines, a video, an MJPEG stream or a window), here or
on a device over ssh (``remote=``).

Runtime-only imports, like ``edgecls.live``: this module works on a device without
TensorFlow. Ctrl+C (in a notebook: interrupt the kernel), SIGTERM and SIGHUP end the
loop cleanly: outputs finalized, the summary returned with ``interrupted`` set.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgecls.api import html
from edgecls.api.live_setup import CollectOptions, StreamSettings, device_args, make_sinks

LOG_FORMAT = "%(levelname)s: %(message)s"
TOKEN_ENV = "EDGECLS_SERVE_TOKEN"
BASIC_AUTH_ENV = "EDGECLS_SERVE_BASIC_AUTH"


@dataclass
class LiveSummary:
    """How a live run went: what ``edgecls run`` prints as its last line (``to_dict()``).

    Attributes:
        frames: frames classified.
        fps: frames per second over the run.
        latency_ms_p50: median inference latency (ms); ``latency_ms_p95`` its 95th percentile.
        interrupted: stopped by Ctrl+C or a signal (``signal`` names one other than SIGINT).
        collected: the ``collect=`` summary (frames kept, skipped and why), else None.
        exit_code: 0, or (``remote=``) the device's exit code when its run failed.
    """

    frames: int = 0
    seconds: float = 0.0
    fps: float = 0.0
    latency_ms_p50: float = 0.0
    latency_ms_p95: float = 0.0
    latency_ms_mean: float = 0.0
    interrupted: bool = False
    signal: str | None = None
    backend: str | None = None
    collected: dict[str, Any] | None = None
    exit_code: int = 0
    host: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_summary(cls, summary: dict[str, Any], host: str | None = None, exit_code: int = 0) -> LiveSummary:
        keys = ("frames", "seconds", "fps", "latency_ms_p50", "latency_ms_p95", "latency_ms_mean",
                "interrupted", "signal", "backend")
        return cls(**{k: summary[k] for k in keys if k in summary}, collected=summary.get("collect"),
                   exit_code=exit_code, host=host, raw=summary)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.raw)

    def _repr_html_(self) -> str:
        rows = [["frames", self.frames], ["seconds", self.seconds], ["FPS", self.fps],
                ["latency p50 (ms)", self.latency_ms_p50], ["latency p95 (ms)", self.latency_ms_p95],
                ["backend", self.backend]]
        if self.collected:
            rows.append(["frames kept (collect)", self.collected.get("kept")])
        state = "interrupted" if self.interrupted else "done"
        if self.exit_code:
            state = f"failed on the device (exit code {self.exit_code})"
        where = f" on {self.host}" if self.host else ""
        return html.STYLE + html.table(["", "value"], rows, caption=f"live run{where}: {state}")


def run_live(model: str | Path, source: str | None = None, labels: str | Path | None = None,
             target: str | None = None, threads: int | None = None, device: str | None = None,
             providers: str | None = None, top_k: int = 5, threshold: float = 0.0, smooth: int = 1,
             headless: bool = False, jsonl: str | Path | None = None, save: str | Path | None = None,
             serve: bool = False, host: str = "127.0.0.1", port: int = 8080, token: str | None = None,
             basic_auth: str | None = None, no_auth: bool = False, max_viewers: int = 10,
             serve_fps: float = 15.0, max_frames: int | None = None, verify: bool = True,
             max_pixels: str | int | None = None, collect: str | Path | None = None,
             collect_below: float | None = None, collect_margin: float | None = None,
             collect_flicker: bool = False, collect_classes: str | None = None,
             collect_random: float | None = None, collect_max_per_minute: int | None = None,
             collect_max_per_hour: int | None = None, collect_max_per_day: int | None = None,
             collect_max_mb: float | None = None, collect_when_full: str = "stop", verbose: bool = False,
             remote: str | None = None, remote_python: str | None = None) -> LiveSummary:
    """Classifies every frame of ``source`` with ``model`` until the input ends,
    ``max_frames`` frames, Ctrl+C or a stop signal; the parameters are ``edgecls run``'s
    options (``edgecls run --help`` explains each). In a notebook pass ``jsonl=`` (or
    ``headless=True``) so no window is looked for, and ``max_frames=`` for a camera.

    Returns:
        The run's summary (frames, FPS, latency percentiles, frames collected).

    Raises:
        EdgeclsError: a bad option, model or source, before anything is written.
    """
    given = {name: value for name, value in locals().items() if name in _PARAMETERS}
    collecting = _collect_options(given)
    if remote:
        return _run_on_device(Path(model), remote, remote_python, given)
    return _run_here(Path(model), collecting, given)


def _collect_options(given: dict[str, Any]) -> CollectOptions:
    names = ("below", "margin", "flicker", "classes", "random", "max_per_minute", "max_per_hour",
             "max_per_day", "max_mb", "when_full")
    values = [given[f"collect_{name}"] for name in names]
    collect = given["collect"]
    options = CollectOptions(Path(collect) if collect is not None else None, *values)
    options.check([name for name in given if name.startswith("collect_")
                   and given[name] not in (None, _PARAMETERS[name].default)])
    return options


def _run_here(model: Path, collecting: CollectOptions, o: dict[str, Any]) -> LiveSummary:
    from edgecls.live.loop import LoopOptions, run_loop
    from edgecls.live.sources import open_source
    from edgecls.runtime.classifier import Classifier
    from edgecls.runtime.image_header import set_max_pixels
    from edgecls.runtime.targets import apply, backend_options, load_target

    set_max_pixels(o["max_pixels"])
    if o["verbose"]:  # backend settings and reconnects
        logging.basicConfig(format=LOG_FORMAT)
        logging.getLogger("edgecls").setLevel(logging.INFO)
    providers = [p.strip() for p in o["providers"].split(",") if p.strip()] if o["providers"] else None
    chosen = apply(load_target(o["target"]) if o["target"] else None, threads=o["threads"],
                   device=o["device"] or None, providers=providers or None, provider_options=None,
                   source=o["source"] or None)
    classifier = Classifier(model, labels=o["labels"], options=backend_options(chosen), top_k=o["top_k"],
                            verify=o["verify"])
    backend = classifier.backend
    logging.getLogger("edgecls").info("%s %s, settings %s", backend.name, backend.version(), backend.settings)
    collector = collecting.collector(model, classifier.labels) if collecting.folder is not None else None
    frames = open_source(chosen["source"] or "0")
    if collector is not None:
        collector.source = frames.description
    sinks = make_sinks(o["headless"], _path(o["jsonl"]), _path(o["save"]), _stream(o), getattr(frames, "fps", 0.0))
    summary = run_loop(classifier, frames, sinks,
                       LoopOptions(o["top_k"], o["threshold"], o["smooth"], o["max_frames"]), collector=collector)
    summary["backend"] = backend.name
    summary["settings"] = backend.settings
    return LiveSummary.from_summary(summary)


def _stream(o: dict[str, Any]) -> StreamSettings | None:
    if not o["serve"]:
        return None
    token = o["token"] if o["token"] is not None else os.environ.get(TOKEN_ENV)
    basic = o["basic_auth"] if o["basic_auth"] is not None else os.environ.get(BASIC_AUTH_ENV)
    return StreamSettings(o["host"], o["port"], token, basic, o["no_auth"], o["max_viewers"], o["serve_fps"])


def _path(value: str | Path | None) -> Path | None:
    return Path(value) if value is not None else None


def _run_on_device(model: Path, remote: str, remote_python: str | None, o: dict[str, Any]) -> LiveSummary:
    """The loop on the device over ssh: its JSON lines on stdout here, its messages on
    stderr; the summary is the one the device printed last. Ctrl+C here ends the ssh
    session (the device's run stops with it) and raises KeyboardInterrupt."""
    from edgecls.api.benching import prepare_options
    from edgecls.remote.host import parse_host
    from edgecls.remote.live import LiveSession, RemoteRun, check_local_port, free_local_port

    serve_port = None
    if o["serve"]:
        serve_port = o["port"] or free_local_port()
        check_local_port(serve_port)
    args = device_args(o, {name: p.default for name, p in _PARAMETERS.items()})
    if not o["jsonl"]:
        args.append("--headless")
    job = RemoteRun(model=model, host=parse_host(remote), args=args, labels=_path(o["labels"]),
                    serve_port=serve_port, prepare=prepare_options(remote_python, "index"))
    errors = _SummaryTee(sys.stderr)
    session = LiveSession(job, sys.stdout, errors)
    with _sigterm_exits():
        try:
            session.start()
            code = session.relay()
        finally:
            session.stop()
    return LiveSummary.from_summary(errors.summary or {}, host=remote, exit_code=code)


class _SummaryTee(io.TextIOBase):
    """Passes the device's stderr through and keeps the last JSON object line (its summary)."""

    def __init__(self, target: Any) -> None:
        self.target, self.summary = target, None

    def write(self, text: str) -> int:
        if text.startswith("{"):
            try:
                self.summary = json.loads(text)
            except ValueError:
                pass
        return self.target.write(text)

    def flush(self) -> None:
        self.target.flush()


@contextlib.contextmanager
def _sigterm_exits() -> Iterator[None]:
    """SIGTERM raises SystemExit so the ssh clients are ended (and with them the device's
    run); the previous handler comes back after (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


_PARAMETERS = dict(inspect.signature(run_live).parameters)
