"""`edgecls run`: classify a camera, video or folder.

Runtime-only imports (numpy, OpenCV, one backend), inside the command bodies, so this
works on a device without TensorFlow.
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import typer

from edgecls.cli.app import app
from edgecls.cli.remote import REMOTE_PYTHON_HELP, REMOTE_RUN_HELP, run_remote
from edgecls.errors import ConfigError
from edgecls.live import sinks as out
from edgecls.live.collect import Collector, CollectRules, parse_classes
from edgecls.live.collect_store import StoreLimits
from edgecls.runtime.classifier import Classifier
from edgecls.runtime.image_header import set_max_pixels
from edgecls.live.loop import LoopOptions, run_loop
from edgecls.live.serve_auth import StreamAuth
from edgecls.live.server import ServerLimits
from edgecls.live.sinks import MjpegSink
from edgecls.live.sources import open_source
from edgecls.runtime.targets import apply, backend_options, load_target

_COLLECT = "Collect frames for labelling (--collect DIR)"


@app.command("run")
def run(
    ctx: typer.Context,
    model: Path = typer.Argument(..., help="Model file: .tflite, .onnx or OpenVINO .xml."),
    source: str = typer.Option(None, "--source", "-s", help=(
        "Camera index (0) or /dev/videoN, video file, image folder, rtsp:// or http:// URL, "
        "GStreamer pipeline, or 'picamera2'. Default: the target's camera, else 0.")),
    labels: Path = typer.Option(None, help="Labels file (one per line) for models without embedded labels."),
    target: str = typer.Option(None, help="Device profile from `edgecls targets list` (threads, providers, device)."),
    threads: int = typer.Option(None, min=1, help="Inference threads (default: target, else up to 4 cores)."),
    device: str = typer.Option(None, help="OpenVINO device: CPU, GPU or NPU."),
    providers: str = typer.Option(None, help="ONNX Runtime providers, comma-separated: cpu,cuda,tensorrt."),
    top_k: int = typer.Option(5, "--top-k", min=1, help="How many (label, score) pairs per frame."),
    threshold: float = typer.Option(0.0, min=0.0, max=1.0, help="Below this score the label is 'unknown'."),
    smooth: int = typer.Option(1, min=1, help="Average scores over the last N frames."),
    headless: bool = typer.Option(False, help="No window: one JSON line per frame on stdout (or --jsonl)."),
    jsonl: Path = typer.Option(None, help="Write the per-frame JSON lines to this file."),
    save: Path = typer.Option(None, help="Write the annotated video to this file (.mp4 or .avi)."),
    serve: bool = typer.Option(False, help="Stream annotated frames as MJPEG over HTTP "
                                           "(page at /, stream at /stream)."),
    host: str = typer.Option("127.0.0.1", help=(
        "Address for --serve. Any address but loopback (e.g. 0.0.0.0, to allow other machines) "
        "requires a token or --basic-auth; a token is generated and printed if none is given.")),
    port: int = typer.Option(8080, min=0, max=65535, help="Port for --serve."),
    token: str = typer.Option(None, envvar="EDGECLS_SERVE_TOKEN", show_envvar=True, help=(
        "Token viewers must send (?token=... or 'Authorization: Bearer ...'); "
        "prefer the environment variable, which other users cannot see in the process list.")),
    basic_auth: str = typer.Option(None, "--basic-auth", envvar="EDGECLS_SERVE_BASIC_AUTH", show_envvar=True,
                                   help="USER:PASSWORD for HTTP basic auth instead of (or besides) a token."),
    no_auth: bool = typer.Option(False, "--no-auth", help=(
        "Serve a non-loopback --host to anyone who reaches the port, without credentials.")),
    max_viewers: int = typer.Option(10, min=1, help="Streams served at once; more get 503 (busy)."),
    serve_fps: float = typer.Option(15.0, min=0.1, help="Most frames per second encoded for the stream."),
    max_frames: int = typer.Option(None, min=1, help="Stop after this many frames."),
    verify: bool = typer.Option(True, "--verify/--no-verify", help=(
        "Refuse a model file that does not match the digest embedded at export (a damaged "
        "copy). --no-verify runs it anyway; models without a digest always run.")),
    max_pixels: str = typer.Option(None, "--max-pixels", help=(
        "Refuse images whose header declares more pixels than this (e.g. 90M), before "
        "decoding them. Default: 64M, or $EDGECLS_MAX_PIXELS.")),
    collect: Path = typer.Option(None, "--collect", help=(
        "Keep frames worth labelling in this folder (JPEG + JSON sidecar: time, source, model "
        "digest, top-k, why kept); a restarted run continues it. Without a --collect-* "
        "strategy: --collect-below 0.5."), rich_help_panel=_COLLECT),
    collect_below: float = typer.Option(None, min=0.0, max=1.0, help=(
        "Keep frames whose top-1 score is under this."), rich_help_panel=_COLLECT),
    collect_margin: float = typer.Option(None, min=0.0, max=1.0, help=(
        "Keep frames whose top-1 minus top-2 score is under this (the model hesitates "
        "between two classes)."), rich_help_panel=_COLLECT),
    collect_flicker: bool = typer.Option(False, "--collect-flicker", help=(
        "Keep frames whose label differs from the previous frame's while the scene stayed still."),
        rich_help_panel=_COLLECT),
    collect_classes: str = typer.Option(None, help=(
        "Comma-separated labels: the strategies above count only frames with one of these as "
        "top-1; alone, every such frame is kept."), rich_help_panel=_COLLECT),
    collect_random: float = typer.Option(None, min=0.0, max=1.0, help=(
        "Also keep this fraction of all frames at random (e.g. 0.01), whatever the scores: "
        "an unbiased sample of what the device sees."), rich_help_panel=_COLLECT),
    collect_max_per_minute: int = typer.Option(None, min=1, help="Keep at most this many frames in any "
                                               "60 s (counted from the folder).", rich_help_panel=_COLLECT),
    collect_max_per_hour: int = typer.Option(None, min=1, help="Keep at most this many frames in any hour.",
                                             rich_help_panel=_COLLECT),
    collect_max_per_day: int = typer.Option(None, min=1, help="Keep at most this many frames in any 24 h.",
                                            rich_help_panel=_COLLECT),
    collect_max_mb: float = typer.Option(None, min=0.001, help=(
        "Storage budget of the folder in MB (besides, nothing is written when the disk would "
        "keep under 64 MB free)."), rich_help_panel=_COLLECT),
    collect_when_full: str = typer.Option("stop", help=(
        "When the budget is reached: 'stop' keeping frames, or 'evict-oldest' to make room."),
        rich_help_panel=_COLLECT),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log backend settings and reconnects."),
    remote: str = typer.Option(None, "--remote", help=REMOTE_RUN_HELP),
    remote_python: str = typer.Option(None, help=REMOTE_PYTHON_HELP),
) -> None:
    """Classify frames from a camera, video, stream or image folder, live.

    Shows a window with label, score and FPS when a display exists; `--headless` prints
    JSON lines instead. The end of the input, Ctrl+C, SIGTERM (`systemctl stop`,
    `docker stop`) or SIGHUP finalize the outputs, print a summary (frames, FPS,
    latency p50/p95) on stderr and exit 0.
    """
    collecting = _CollectOptions(collect, collect_below, collect_margin, collect_flicker, collect_classes,
                                 collect_random, collect_max_per_minute, collect_max_per_hour,
                                 collect_max_per_day, collect_max_mb, collect_when_full)
    collecting.check(ctx)
    if remote:
        raise typer.Exit(run_remote(ctx, model, remote, remote_python))
    set_max_pixels(max_pixels)
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s: %(message)s")
    given_providers = [p.strip() for p in providers.split(",") if p.strip()] if providers else None
    chosen = apply(load_target(target) if target else None, threads=threads, device=device or None,
                   providers=given_providers or None, provider_options=None, source=source or None)
    options = backend_options(chosen)
    classifier = Classifier(model, labels=labels, options=options, top_k=top_k, verify=verify)
    _log_backend(classifier)
    collector = collecting.collector(model, classifier.labels) if collect else None
    frames = open_source(chosen["source"] or "0")
    if collector is not None:
        collector.source = frames.description
    stream = _StreamSettings(host, port, token, basic_auth, no_auth, max_viewers, serve_fps) if serve else None
    sinks = _make_sinks(headless, jsonl, save, stream, getattr(frames, "fps", 0.0))
    summary = run_loop(classifier, frames, sinks, LoopOptions(top_k, threshold, smooth, max_frames),
                       collector=collector)
    summary["backend"] = classifier.backend.name
    summary["settings"] = classifier.backend.settings
    _print_summary(summary)


def _log_backend(classifier) -> None:
    backend = classifier.backend
    logging.getLogger("edgecls").info("%s %s, settings %s", backend.name, backend.version(), backend.settings)


@dataclass
class _CollectOptions:
    folder: Path | None
    below: float | None
    margin: float | None
    flicker: bool
    classes: str | None
    random: float | None
    per_minute: int | None
    per_hour: int | None
    per_day: int | None
    max_mb: float | None
    when_full: str

    def check(self, ctx: typer.Context) -> None:
        """Refuses --collect-* options without --collect, and bad values, before any work."""
        if self.folder is None:
            given = [p.opts[0] for p in ctx.command.params if p.name.startswith("collect_")
                     and ctx.params.get(p.name) not in (None, p.default)]
            if given:
                raise ConfigError(f"{given[0]} needs --collect DIR", "name the folder to keep frames in")
        self.rules(), self.limits()

    def rules(self) -> CollectRules:
        return CollectRules(self.below, self.margin, self.flicker, parse_classes(self.classes), self.random)

    def limits(self) -> StoreLimits:
        max_bytes = int(self.max_mb * 1e6) if self.max_mb is not None else None
        return StoreLimits(self.per_minute, self.per_hour, self.per_day, max_bytes, self.when_full)

    def collector(self, model: Path, labels: list[str]) -> Collector:
        rules = self.rules()
        rules.check_classes(labels)
        return Collector(self.folder, rules, self.limits(), model=model)


@dataclass
class _StreamSettings:
    host: str
    port: int
    token: str | None
    basic_auth: str | None
    no_auth: bool
    max_viewers: int
    max_fps: float


def _make_sinks(headless: bool, jsonl: Path | None, save: Path | None, stream: _StreamSettings | None,
                fps: float) -> list:
    chosen: list = []
    if jsonl is not None:
        chosen.append(out.JsonLinesSink(path=jsonl))
    elif headless:
        chosen.append(out.JsonLinesSink(stream=sys.stdout))
    if save is not None:
        chosen.append(out.VideoSink(save, fps))
    if stream is not None:
        chosen.append(_start_stream(stream))
    if not headless:
        if out.display_available():
            chosen.append(out.WindowSink())
        elif not chosen:
            typer.echo("no display found: printing JSON lines (use --headless to silence this)", err=True)
            chosen.append(out.JsonLinesSink(stream=sys.stdout))
    return chosen


def _start_stream(stream: _StreamSettings):
    auth = StreamAuth.from_options(stream.token, stream.basic_auth, stream.no_auth)
    sink = MjpegSink(stream.host, stream.port, auth=auth, max_fps=stream.max_fps,
                     limits=ServerLimits(max_viewers=stream.max_viewers))
    server = sink.server
    typer.echo(f"streaming on {server.watch_url}", err=True)
    if server.auth.generated:
        typer.echo("  (token generated for this run; set EDGECLS_SERVE_TOKEN to keep one)", err=True)
    elif not server.auth.required and server.auth.open_access:
        typer.echo("  (--no-auth: anyone who reaches this port can watch)", err=True)
    return sink


def _print_summary(summary: dict) -> None:
    from rich.console import Console

    console = Console(stderr=True, highlight=False)
    state = "done"
    if summary.get("interrupted"):
        state = f"stopped by {summary['signal']}" if summary.get("signal") not in (None, "SIGINT") else "interrupted"
    console.print(
        f"[bold]{state}:[/] {summary['frames']} frames, {summary['fps']:.1f} FPS, "
        f"latency p50 {summary['latency_ms_p50']:.2f} ms, p95 {summary['latency_ms_p95']:.2f} ms "
        f"({summary['backend']})"
    )
    collected = summary.get("collect")
    if collected:
        console.print(f"collect: kept {collected['kept']} frames in {collected['folder']} "
                      f"(now {collected['frames_in_folder']} frames, {collected['folder_mb']:.1f} MB)",
                      markup=False, highlight=False)
    console.print(json.dumps(summary), soft_wrap=True, markup=False)
