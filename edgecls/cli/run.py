"""`edgecls run`: classify a camera, video or folder.

Runtime-only imports (numpy, OpenCV, one backend), inside the command bodies, so this
works on a device without TensorFlow.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import typer

from edgecls.api.options import MAX_PIXELS_HELP
from edgecls.cli.app import app
from edgecls.cli.remote import REMOTE_PYTHON_HELP, REMOTE_RUN_HELP

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
    max_pixels: str = typer.Option(None, "--max-pixels", help=MAX_PIXELS_HELP),
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
    from edgecls.api.live import LOG_FORMAT, run_live

    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format=LOG_FORMAT)
    options = {name: value for name, value in ctx.params.items() if name != "model"}
    summary = run_live(model, **options)
    if remote:  # the device printed its summary (relayed on stderr)
        raise typer.Exit(summary.exit_code)
    _print_summary(summary.to_dict())


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
