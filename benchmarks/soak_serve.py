"""Soak of `edgecls run --serve`: what viewers and idle connections cost the live loop,
and whether memory grows over a long run.

The loop (``run_loop``: Classifier + MjpegSink, as `edgecls run --serve` builds it)
classifies the same 640x480 frame from memory as fast as it can, so any cost of the
server shows in its FPS. Viewers and idle connections come from a separate process on
127.0.0.1 at nice 19 (a viewer is another machine on a device's network; here it still
shares the CPU and the kernel's loopback work, so the figures are pessimistic).

1. FPS with N viewers connected, frames streamed to them in every other second only
   (fine interleaving: a shared machine's changing load falls on both alike); alone and
   with 1,000 idle connections held.
2. FPS in pairs of adjacent short segments, without and with the connections (order
   alternating), median of the pair ratios: N viewers, 1,000 idle connections, both;
   the CPU time of the server and encoder threads during them.
3. Soak: one long run with N viewers and 1,000 idle connections (reopened as the server
   drops them); RSS sampled every 5 s after a warm-up, slope by least squares.

Goals (issue 15): RSS slope < 1 MB/hour; N=50 viewers cost < 10 % of loop FPS;
1,000 idle connections change nothing.

Usage: nice .venv/bin/python benchmarks/soak_serve.py [--viewers 50] [--idle 1000]
       [--toggle-seconds 60] [--pairs 20] [--seconds 2] [--soak-minutes 3] [--model M.tflite --labels L.txt]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import selectors
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from edgecls.runtime.classifier import Classifier
from edgecls.live.loop import run_loop
from edgecls.live.server import ServerLimits
from edgecls.live.sinks import MjpegSink, Sink
from edgecls.live.sources import Frame, FrameSource

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CORAL = SHARED / "models" / "coral"
MODEL = CORAL / "mobilenet_v1_0.25_128_quant.tflite"
LABELS = CORAL / "imagenet_labels.txt"


class TimedSource(FrameSource):
    """The same frame, as fast as the loop takes it, for ``seconds``."""

    def __init__(self, image: np.ndarray, seconds: float) -> None:
        self.image, self.seconds = image, seconds

    def __iter__(self) -> Iterator[Frame]:
        end, index = time.monotonic() + self.seconds, 0
        while (now := time.monotonic()) < end:
            yield Frame(index, self.image, now)
            index += 1


class KeepOpen(Sink):
    """Lends a sink to several ``run_loop`` calls (each closes its sinks)."""

    def __init__(self, sink: Sink) -> None:
        self.sink, self.wants_pixels = sink, sink.wants_pixels

    def write(self, image: np.ndarray, result: dict, fps: float) -> bool:
        return self.sink.write(image, result, fps)


def serve_cpu_seconds(sink: MjpegSink) -> float:
    """CPU time (user + system) of the stream's server and encoder threads so far."""
    total = 0.0
    for thread in sink.threads:
        fields = Path(f"/proc/self/task/{thread.native_id}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def process_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def test_frame() -> np.ndarray:
    """A real photo at camera size when the shared data is there, else a textured frame."""
    photos = sorted((SHARED / "data" / "flowers128").rglob("*.jpg"))[:1]
    if photos:
        return cv2.resize(cv2.imread(str(photos[0])), (640, 480))
    rng = np.random.default_rng(0)
    return cv2.GaussianBlur(rng.integers(0, 256, (480, 640, 3), np.uint8), (9, 9), 0)


# -- the client process: viewers reading streams, idle connections -----------------------

class Client:
    """Runs in its own process, driven by lines on stdin: ``viewers N``, ``idle M``,
    ``close`` (answers ``{"viewer_fps": ..., "reopened": ...}`` for the time since the
    connections opened), ``quit``. Idle connections the server drops are reopened.

    At the lowest CPU priority: real viewers read on other machines, so their reading
    should take as little as possible from the device's loop here.
    """

    def __init__(self, port: int) -> None:
        os.nice(19)
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4096)), hard))
        self.port = port
        self.selector = selectors.DefaultSelector()
        self.selector.register(sys.stdin, selectors.EVENT_READ, None)
        self.frames: list[int] = []
        self.reopened = 0
        self.opened_at = time.monotonic()
        self.buffer = bytearray(1 << 20)
        self.cycle: tuple[float, float, float, float] | None = None

    def run(self) -> None:
        while True:
            for key, _ in self.selector.select(timeout=0.02 if self.cycle else 0.5):
                if key.data is None:
                    if not self.command(sys.stdin.readline().split()):
                        return
                else:
                    self.receive(key)
            if self.cycle:
                self.follow_cycle()

    def follow_cycle(self) -> None:
        """Holds ``count`` idle connections in every odd period after ``start``, none in even ones."""
        count, period, start, until = self.cycle
        now = time.monotonic()
        wanted = now < until and int((now - start) / period) % 2 == 1
        held = [k for k in self.selector.get_map().values() if k.data is not None and k.data[0] == "idle"]
        if wanted and not held:
            for index in range(int(count)):
                self.connect("idle", index)
        elif not wanted and held:
            for key in held:
                self.selector.unregister(key.fileobj)
                key.fileobj.close()  # type: ignore[union-attr]
        if now >= until:
            self.cycle = None

    def command(self, words: list[str]) -> bool:
        if not words or words[0] == "quit":
            return False
        if words[0] == "viewers":
            for _ in range(int(words[1])):
                sock = self.connect("viewer", len(self.frames))
                sock.sendall(b"GET /stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                self.frames.append(0)
        elif words[0] == "cycle":  # cycle COUNT PERIOD START UNTIL (monotonic clock, shared on one machine)
            self.cycle = tuple(float(w) for w in words[1:5])  # type: ignore[assignment]
        elif words[0] == "idle":
            for index in range(int(words[1])):
                self.connect("idle", index)
        elif words[0] == "close":
            seconds = time.monotonic() - self.opened_at
            viewer_fps = float(np.mean(self.frames)) / seconds if self.frames else 0.0
            print(json.dumps({"viewer_fps": viewer_fps, "reopened": self.reopened}), flush=True)
            for key in [k for k in self.selector.get_map().values() if k.data is not None]:
                self.selector.unregister(key.fileobj)
                key.fileobj.close()  # type: ignore[union-attr]
            self.frames, self.reopened = [], 0
            return True
        self.opened_at = time.monotonic()
        print("ok", flush=True)
        return True

    def connect(self, kind: str, index: int) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        sock.setblocking(False)
        self.selector.register(sock, selectors.EVENT_READ, (kind, index, bytearray()))
        return sock

    def receive(self, key: selectors.SelectorKey) -> None:
        kind, index, tail = key.data
        if key.fileobj.fileno() < 0:  # type: ignore[union-attr]  closed by a command in this batch
            return
        try:
            count = key.fileobj.recv_into(self.buffer)  # type: ignore[union-attr]
        except BlockingIOError:
            return
        except OSError:
            count = 0
        if count == 0:  # dropped by the server
            self.selector.unregister(key.fileobj)
            key.fileobj.close()  # type: ignore[union-attr]
            if kind == "idle":  # keep the pressure on
                self.connect("idle", index)
                self.reopened += 1
        elif kind == "viewer":
            chunk = tail + self.buffer[:count]
            self.frames[index] += chunk.count(b"--frame\r\n")
            tail[:] = chunk[-9:]


class ClientProcess:
    """The loop's side of ``Client``."""

    def __init__(self, port: int) -> None:
        self.process = subprocess.Popen([sys.executable, __file__, "--client", str(port)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def send(self, line: str) -> str:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        return self.process.stdout.readline().strip()

    def open(self, viewers: int, idle: int) -> None:
        """Opens the connections (none for a baseline segment, which waits the same)."""
        for kind, count in (("viewers", viewers), ("idle", idle)):
            assert self.send(f"{kind} {count}") == "ok"
        time.sleep(0.3)  # connections settle

    def close(self) -> dict:
        return json.loads(self.send("close"))

    def quit(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("quit\n")
        self.process.stdin.close()
        self.process.wait(timeout=30)


# -- the measurements -------------------------------------------------------------------

class Toggled(Sink):
    """Passes frames to the stream only in every other ``period`` of time, and counts
    the loop's frames and time in both kinds of period: the viewers stay connected, so
    'off' is 0 viewers served and 'on' is N, interleaved finely enough that a shared
    machine's changing load falls on both alike."""

    def __init__(self, sink: Sink, period: float, seconds: float, settle: float = 0.0,
                 start: float | None = None) -> None:
        self.sink, self.period, self.settle = sink, period, settle
        self.start = start if start is not None else time.monotonic()
        self.last = time.monotonic()
        periods = int(seconds / period) + 2
        self.frames, self.seconds = np.zeros(periods), np.zeros(periods)

    def write(self, image: np.ndarray, result: dict, fps: float) -> bool:
        now = time.monotonic()
        elapsed = max(0.0, now - self.start)
        index = min(int(elapsed / self.period), len(self.frames) - 1)
        if elapsed - index * self.period >= self.settle:  # not in the settling start of a period
            self.frames[index] += 1
            self.seconds[index] += now - self.last
        self.last = now
        return self.sink.write(image, result, fps) if index % 2 else True

    def pair_ratios(self) -> np.ndarray:
        """FPS of each 'on' period over that of the 'off' period before it."""
        fps = self.frames / np.maximum(self.seconds, 1e-9)
        pairs = (len(fps) - 2) // 2  # the last period may be cut short
        return fps[1:2 * pairs:2] / fps[0:2 * pairs:2]


def pair_stats(ratios: np.ndarray) -> dict[str, float]:
    """Per-pair on/off changes in %: median and quartiles, and the geometric mean with its
    95 % interval (a mean of log ratios: one preempted period cannot swing it as it does an
    arithmetic mean of ratios)."""
    logs = np.log(ratios[ratios > 0])
    half = 1.96 * float(np.std(logs, ddof=1)) / np.sqrt(len(logs)) if len(logs) > 1 else float("nan")
    mean = float(np.mean(logs))
    change = 100 * (ratios - 1)
    return {"pairs": len(change), "median": float(np.median(change)), "q1": float(np.percentile(change, 25)),
            "q3": float(np.percentile(change, 75)), "mean": 100 * float(np.expm1(mean)),
            "lo": 100 * float(np.expm1(mean - half)), "hi": 100 * float(np.expm1(mean + half))}


def describe_pairs(got: dict[str, float]) -> str:
    return (f"per pair: geometric mean {got['mean']:+.1f} % [95 %: {got['lo']:+.1f}, {got['hi']:+.1f}], "
            f"median {got['median']:+.1f} % [quartiles {got['q1']:+.1f}, {got['q3']:+.1f}] over {got['pairs']} pairs")


def toggled_fps(classifier: Classifier, sink: MjpegSink, client: ClientProcess, frame: np.ndarray,
                viewers: int, idle: int, seconds: float, period: float) -> dict[str, float]:
    """Loop FPS serving 0 vs ``viewers`` viewers, alternating every ``period`` seconds."""
    client.open(viewers, idle)
    toggled = Toggled(KeepOpen(sink), period, seconds)
    run_loop(classifier, TimedSource(frame, seconds), [toggled])
    got = client.close()
    off = toggled.frames[0::2].sum() / toggled.seconds[0::2].sum()
    on = toggled.frames[1::2].sum() / toggled.seconds[1::2].sum()
    return {"off": off, "on": on, "change": 100 * (on / off - 1), "viewer_fps": 2 * got["viewer_fps"],
            **pair_stats(toggled.pair_ratios())}


def idle_cycle_fps(classifier: Classifier, sink: MjpegSink, client: ClientProcess, frame: np.ndarray,
                   idle: int, seconds: float, period: float) -> dict[str, float]:
    """Loop FPS while the client holds ``idle`` connections in every other period; the
    first second of each period (connecting, closing) is left out."""
    start = time.monotonic() + 0.5
    assert client.send(f"cycle {idle} {period} {start} {start + seconds}") == "ok"
    counter = Toggled(KeepOpen(sink), period, seconds, settle=min(1.0, period / 3), start=start)
    time.sleep(0.5)
    run_loop(classifier, TimedSource(frame, seconds), [counter])
    off = counter.frames[0::2].sum() / counter.seconds[0::2].sum()
    on = counter.frames[1::2].sum() / counter.seconds[1::2].sum()
    return {"off": off, "on": on, "change": 100 * (on / off - 1), **pair_stats(counter.pair_ratios())}


def paired_fps(classifier: Classifier, sink: MjpegSink, client: ClientProcess, frame: np.ndarray,
               viewers: int, idle: int, pairs: int, seconds: float) -> dict[str, float]:
    """Loop FPS with and without the connections, in adjacent segments (order alternating),
    so a shared machine's changing load hits both alike; the median of the pair ratios."""
    ratios, base_fps, loaded_fps, viewer_fps, serve_cpu, serve_share = [], [], [], [], [], []
    shared = KeepOpen(sink)
    for pair in range(pairs):
        result: dict[str, float] = {}
        for loaded in ((False, True) if pair % 2 == 0 else (True, False)):
            client.open(viewers if loaded else 0, idle if loaded else 0)  # the same waits either way
            cpu_before, process_before = serve_cpu_seconds(sink), process_cpu_seconds()
            result[str(loaded)] = run_loop(classifier, TimedSource(frame, seconds), [shared])["fps"]
            cpu = serve_cpu_seconds(sink) - cpu_before
            loop_cpu = process_cpu_seconds() - process_before - cpu
            got = client.close()
            if loaded:
                serve_cpu.append(cpu / seconds)
                serve_share.append(cpu / loop_cpu)
                viewer_fps.append(got["viewer_fps"])
        base_fps.append(result["False"])
        loaded_fps.append(result["True"])
        ratios.append(result["True"] / result["False"])
    return {"base": float(np.mean(base_fps)), "loaded": float(np.mean(loaded_fps)),
            "change": 100 * (float(np.median(ratios)) - 1), "viewer_fps": float(np.mean(viewer_fps)),
            "serve_cpu": 100 * float(np.mean(serve_cpu)), "serve_share": 100 * float(np.mean(serve_share)),
            "q1": 100 * (float(np.percentile(ratios, 25)) - 1), "q3": 100 * (float(np.percentile(ratios, 75)) - 1)}


def soak(classifier: Classifier, sink: MjpegSink, client: ClientProcess, frame: np.ndarray,
         args: argparse.Namespace) -> dict[str, float]:
    """RSS over one long run with viewers and idle connections; slope by least squares."""
    seconds = args.soak_minutes * 60.0
    warmup = min(30.0, seconds / 4)
    client.open(args.viewers, args.idle)
    samples: list[tuple[float, float]] = []
    start = time.monotonic()
    next_sample = [start + warmup]

    def sample(result: dict) -> None:  # RSS read every 5 s of the run
        if result["frame"] % 64 == 0 and (now := time.monotonic()) >= next_sample[0]:
            samples.append((now - start, rss_mb()))
            next_sample[0] = now + 5.0

    summary = run_loop(classifier, TimedSource(frame, seconds), [KeepOpen(sink)], on_result=sample)
    got = client.close()
    t, r = np.array(samples).T
    return {"frames": summary["frames"], "minutes": (time.monotonic() - start) / 60, "rss_start": r[0],
            "rss_end": r[-1], "slope_mb_per_hour": float(np.polyfit(t, r, 1)[0]) * 3600,
            "samples": len(samples), "viewer_fps": got["viewer_fps"], "idle_reopened": got["reopened"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=MODEL)
    parser.add_argument("--labels", type=Path, default=LABELS)
    parser.add_argument("--viewers", type=int, default=50)
    parser.add_argument("--idle", type=int, default=1000)
    parser.add_argument("--toggle-seconds", type=float, default=60.0)
    parser.add_argument("--period", type=float, default=1.0, help="on/off period of the viewer toggle")
    parser.add_argument("--idle-cycle-seconds", type=float, default=120.0)
    parser.add_argument("--idle-period", type=float, default=4.0)
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=2.0, help="length of one segment")
    parser.add_argument("--soak-minutes", type=float, default=3.0)
    parser.add_argument("--serve-fps", type=float, default=15.0)
    args = parser.parse_args()
    if not args.model.is_file():
        sys.exit(f"model {args.model} not found (the shared Coral models); pass --model and --labels")
    classifier = Classifier(args.model, labels=args.labels if args.labels.is_file() else None)
    sink = MjpegSink("127.0.0.1", 0, max_fps=args.serve_fps, limits=ServerLimits(max_viewers=args.viewers + 10))
    port = int(sink.url.rsplit(":", 1)[1].strip("/"))
    frame = test_frame()
    cpu_lines = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in cpu_lines if line.startswith("model name")), "?")
    print(f"soak_serve: {args.model.name} via {classifier.backend.name} {classifier.backend.settings}, "
          f"640x480 frames, stream capped at {args.serve_fps:g} FPS; CPU {cpu}, "
          f"{len(os.sched_getaffinity(0))} cores; load average "
          f"{Path('/proc/loadavg').read_text().split()[0]} at start", flush=True)
    client = ClientProcess(port)
    if args.toggle_seconds:
        toggle_report(classifier, sink, client, frame, args)
    if args.idle_cycle_seconds:
        print(f"\nloop FPS without / with {args.idle} idle connections, held in every other "
              f"{args.idle_period:g} s for {args.idle_cycle_seconds:g} s (first second of each period left out)",
              flush=True)
        got = idle_cycle_fps(classifier, sink, client, frame, args.idle, args.idle_cycle_seconds, args.idle_period)
        print(f"  {got['off']:7.1f} -> {got['on']:7.1f} FPS  {got['change']:+6.1f} %; {describe_pairs(got)}",
              flush=True)
    if args.pairs:
        paired_report(classifier, sink, client, frame, args)
    if args.soak_minutes:
        soak_report(classifier, sink, client, frame, args)
    client.quit()
    sink.close()


def toggle_report(classifier: Classifier, sink: MjpegSink, client: ClientProcess, frame: np.ndarray,
                  args: argparse.Namespace) -> None:
    print(f"\nloop FPS serving 0 vs {args.viewers} viewers, alternating every {args.period:g} s for "
          f"{args.toggle_seconds:g} s (viewers stay connected; 'on' spills a frame interval into 'off')", flush=True)
    for name, idle in (("", 0), (f" (with {args.idle} idle connections)", args.idle)):
        got = toggled_fps(classifier, sink, client, frame, args.viewers, idle, args.toggle_seconds, args.period)
        print(f"  {got['off']:7.1f} -> {got['on']:7.1f} FPS  {got['change']:+6.1f} %{name}; {describe_pairs(got)}; "
              f"each viewer {got['viewer_fps']:4.1f} FPS while served", flush=True)


def paired_report(classifier: Classifier, sink: MjpegSink, client: ClientProcess, frame: np.ndarray,
                  args: argparse.Namespace) -> None:
    print(f"\nloop FPS, {args.pairs} pairs of {args.seconds:g} s segments without / with the connections "
          "(change: median of the pair ratios [quartiles])", flush=True)
    for name, viewers, idle in ((f"{args.viewers} viewers", args.viewers, 0), (f"{args.idle} idle", 0, args.idle),
                                (f"{args.viewers} viewers + {args.idle} idle", args.viewers, args.idle)):
        got = paired_fps(classifier, sink, client, frame, viewers, idle, args.pairs, args.seconds)
        print(f"  {name:<24} {got['base']:7.1f} -> {got['loaded']:7.1f} FPS  {got['change']:+6.1f} % "
              f"[{got['q1']:+.1f}, {got['q3']:+.1f}]; server+encoder threads {got['serve_cpu']:4.1f} % of a core "
              f"= {got['serve_share']:4.1f} % of the loop's CPU time"
              + (f"; each viewer {got['viewer_fps']:4.1f} FPS" if viewers else ""),
              flush=True)


def soak_report(classifier: Classifier, sink: MjpegSink, client: ClientProcess, frame: np.ndarray,
                args: argparse.Namespace) -> None:
    print(f"\nsoak: {args.soak_minutes:g} min with {args.viewers} viewers and {args.idle} idle connections ...",
          flush=True)
    result = soak(classifier, sink, client, frame, args)
    print(f"  {result['frames']} frames in {result['minutes']:.1f} min; RSS {result['rss_start']:.1f} -> "
          f"{result['rss_end']:.1f} MB ({result['samples']} samples after warm-up); "
          f"slope {result['slope_mb_per_hour']:+.2f} MB/hour (goal < 1)")
    print(f"  each viewer {result['viewer_fps']:.1f} FPS; idle connections dropped by the server and reopened: "
          f"{result['idle_reopened']}; server counters {sink.server.counters}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--client":
        Client(int(sys.argv[2])).run()
    else:
        main()
