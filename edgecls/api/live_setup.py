"""What ``run_live`` builds from its options before the loop starts: the collector of
``collect=``/``collect_*``, the sinks (JSON lines, video, MJPEG stream, window) and the
device's arguments of ``remote=``. Runtime-only imports: no TensorFlow."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgecls.errors import ConfigError
from edgecls.live import sinks as out
from edgecls.live.collect import Collector, CollectRules, parse_classes
from edgecls.live.collect_store import StoreLimits
from edgecls.live.serve_auth import StreamAuth
from edgecls.live.server import ServerLimits


def flag(name: str) -> str:
    """The command-line spelling of an API parameter: ``collect_below`` -> ``--collect-below``."""
    return "--" + name.replace("_", "-")


@dataclass
class CollectOptions:
    """``--collect DIR`` and its ``--collect-*`` strategies and limits."""

    folder: Path | None
    below: float | None = None
    margin: float | None = None
    flicker: bool = False
    classes: str | None = None
    random: float | None = None
    per_minute: int | None = None
    per_hour: int | None = None
    per_day: int | None = None
    max_mb: float | None = None
    when_full: str = "stop"

    def check(self, given: list[str]) -> None:
        """Refuses ``given`` collect options without a folder, and bad values, before any work."""
        if self.folder is None and given:
            raise ConfigError(f"{flag(given[0])} needs --collect DIR", "name the folder to keep frames in")
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
class StreamSettings:
    """``--serve``: where the MJPEG stream listens, who may watch, how fast."""

    host: str
    port: int
    token: str | None
    basic_auth: str | None
    no_auth: bool
    max_viewers: int
    max_fps: float


def make_sinks(headless: bool, jsonl: Path | None, save: Path | None, stream: StreamSettings | None,
               fps: float) -> list[Any]:
    """The sinks the options ask for; without a display nor another sink, JSON lines on stdout."""
    chosen: list[Any] = []
    if jsonl is not None:
        chosen.append(out.JsonLinesSink(path=jsonl))
    elif headless:
        chosen.append(out.JsonLinesSink(stream=sys.stdout))
    if save is not None:
        chosen.append(out.VideoSink(save, fps))
    if stream is not None:
        chosen.append(start_stream(stream))
    if not headless:
        if out.display_available():
            chosen.append(out.WindowSink())
        elif not chosen:
            print("no display found: printing JSON lines (use --headless to silence this)", file=sys.stderr)
            chosen.append(out.JsonLinesSink(stream=sys.stdout))
    return chosen


def start_stream(stream: StreamSettings) -> Any:
    """Starts the MJPEG server and says where to watch (on stderr)."""
    auth = StreamAuth.from_options(stream.token, stream.basic_auth, stream.no_auth)
    sink = out.MjpegSink(stream.host, stream.port, auth=auth, max_fps=stream.max_fps,
                         limits=ServerLimits(max_viewers=stream.max_viewers))
    server = sink.server
    print(f"streaming on {server.watch_url}", file=sys.stderr)
    if server.auth.generated:
        print("  (token generated for this run; set EDGECLS_SERVE_TOKEN to keep one)", file=sys.stderr)
    elif not server.auth.required and server.auth.open_access:
        print("  (--no-auth: anyone who reaches this port can watch)", file=sys.stderr)
    return sink


# Options that never go to the device: the ssh side's own, the model and labels (sent as
# files), and credentials (the device serves on its loopback through the forward, and a
# secret on a command line would show in its process list).
LOCAL_ONLY = {"model", "remote", "remote_python", "labels", "token", "basic_auth", "headless", "serve", "port"}


def device_args(given: dict[str, Any], defaults: dict[str, Any]) -> list[str]:
    """The options of this run that differ from their defaults, spelled for the device's
    ``edgecls run`` (a flag whose default is on is turned off with ``--no-NAME``)."""
    args: list[str] = []
    for name, value in given.items():
        if name in LOCAL_ONLY or value is None or value == defaults.get(name):
            continue
        if isinstance(value, bool):
            args.append(flag(name) if value else flag(f"no_{name}"))
        else:
            args += [flag(name), str(value)]
    return args
