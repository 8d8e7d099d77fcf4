"""A simulated flywheel on flowers128: is the collect -> label -> retrain loop worth its labels,
and does uncertainty-driven collection beat random collection at the same labelling budget?

Per seed: the images (byte-identical copies left out) are split per class into a fixed test
share (never streamed, never trained on), an initial share (the first model's dataset) and
the pool (what the "camera" sees). The first model is trained on the initial share and
exported to INT8 TFLite (the device's model). Then, per strategy and round:

1. collect: the pool images not labelled yet stream through the live loop (``run_loop``
   with a ``FolderSource``, in a seeded random order) with a ``Collector``, as
   ``edgecls run MODEL --collect DIR`` does: uncertainty = ``--collect-below 0.5
   --collect-margin 0.25``, random = ``--collect-random P`` (P keeps ~1.5x the budget);
2. label: a ``ReviewSession`` on DIR moves ``--budget`` frames into the strategy's dataset
   with their true class as the person's answer, in the review page's order (uncertainty
   first) for uncertainty, in stream order (an unbiased sample) for random;
3. retrain ``train --init-from`` the previous round's run, ``compare NEW OLD``;
4. export the new model to INT8 TFLite (``--no-remedies``) for the next round's collect.

Each model's test accuracy is its float model's on the fixed test share; uncertainty vs
random is the paired difference on those images with its 95 % interval (``edgecls.stats``),
per seed and pooled over seeds. Results go to ``WORK/results.jsonl`` one line per round, so
``--summarize WORK/results.jsonl`` prints the table of whatever finished.

    nice -n 19 .venv/bin/python benchmarks/flywheel.py --seeds 0 [--rounds 2] [--budget 200]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "flowers128" / "all"
STRATEGIES = ("uncertainty", "random")
UNCERTAIN_BELOW, UNCERTAIN_MARGIN = 0.5, 0.25
RANDOM_SURPLUS = 1.5  # the random rate keeps about this many times the budget


def main() -> None:
    args = _parse_args()
    if args.summarize:
        print_table(read_results(Path(args.summarize)))
        return
    if not DATA.is_dir():
        sys.exit(f"dataset {DATA} is absent (see ../shared/DATA.md)")
    work = Path(args.work or tempfile.mkdtemp(prefix="edgecls_flywheel_"))
    work.mkdir(parents=True, exist_ok=True)
    results = work / "results.jsonl"
    print(f"work folder {work}; results in {results}", flush=True)
    images = unique_images(DATA, args.per_class)
    for seed in args.seeds:
        run_seed(args, work / f"seed{seed}", images, seed, results)
    print_table(read_results(results))


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--budget", type=int, default=200, help="frames labelled per round")
    parser.add_argument("--initial", type=float, default=0.15, help="share of each class the first model sees")
    parser.add_argument("--test", type=float, default=0.20, help="fixed test share of each class")
    parser.add_argument("--epochs", type=int, default=5, help="head epochs of each training (no fine-tuning)")
    parser.add_argument("--img-size", type=int, default=128)
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--per-class", type=int, help="use only this many images of each class (a quick trial)")
    parser.add_argument("--work", help="work folder (default: a new temporary one)")
    parser.add_argument("--summarize", metavar="RESULTS_JSONL", help="only print the table of a results file")
    return parser.parse_args()


# ---- the images and their split -------------------------------------------------------------

def unique_images(root: Path, per_class: int | None = None) -> list[tuple[str, Path]]:
    """(class, path) of every image whose bytes no other image shares, sorted (the first
    ``per_class`` of each class)."""
    items = [(folder.name, path) for folder in sorted(root.iterdir()) if folder.is_dir()
             for path in sorted(folder.iterdir()) if path.is_file()]
    digests = [hashlib.sha256(path.read_bytes()).hexdigest() for _, path in items]
    counts = Counter(digests)
    unique = [item for item, digest in zip(items, digests) if counts[digest] == 1]
    if per_class is None:
        return unique
    by_class: dict[str, list[tuple[str, Path]]] = defaultdict(list)
    for item in unique:
        by_class[item[0]].append(item)
    return [item for name in sorted(by_class) for item in by_class[name][:per_class]]


def plan_split(images: list[tuple[str, Path]], seed: int, test: float,
               initial: float) -> dict[str, list[tuple[str, Path]]]:
    """Per class, a seeded shuffle cut into test / initial / pool shares (disjoint, stratified)."""
    by_class: dict[str, list[tuple[str, Path]]] = defaultdict(list)
    for item in images:
        by_class[item[0]].append(item)
    rng = random.Random(seed)
    parts: dict[str, list[tuple[str, Path]]] = {"test": [], "initial": [], "pool": []}
    for name in sorted(by_class):
        items = sorted(by_class[name], key=lambda item: item[1].name)
        rng.shuffle(items)
        n_test, n_initial = round(test * len(items)), round(initial * len(items))
        parts["test"] += items[:n_test]
        parts["initial"] += items[n_test:n_test + n_initial]
        parts["pool"] += items[n_test + n_initial:]
    return parts


def link_dataset(folder: Path, items: list[tuple[str, Path]]) -> None:
    """A folder-per-class dataset of symlinks to ``items`` (the shared data stays read-only)."""
    for name, path in items:
        (folder / name).mkdir(parents=True, exist_ok=True)
        (folder / name / path.name).symlink_to(path)


def link_stream(folder: Path, items: list[tuple[str, Path]], seed: int) -> dict[str, str]:
    """A flat folder the camera streams from, in a seeded random order; file name -> true class."""
    folder.mkdir(parents=True)
    order = list(items)
    random.Random(seed).shuffle(order)
    truth = {}
    for index, (name, path) in enumerate(order):
        link = folder / f"{index:05d}_{name}_{path.name}"
        link.symlink_to(path)
        truth[str(link)] = name
    return truth


# ---- one seed ---------------------------------------------------------------------------------

def run_seed(args: argparse.Namespace, work: Path, images: list[tuple[str, Path]], seed: int,
             results: Path) -> None:
    parts = plan_split(images, seed, args.test, args.initial)
    print(f"seed {seed}: test {len(parts['test'])}, initial {len(parts['initial'])}, "
          f"pool {len(parts['pool'])} images", flush=True)
    test = TestSet(parts["test"], (args.img_size, args.img_size))
    link_dataset(work / "initial_data", parts["initial"])
    started = time.perf_counter()
    first = train_run(args, work / "initial_data", work / "round0", None, seed)
    first_artifact = export_int8(first)
    accuracy = test.correct(first)
    append_result(results, {"seed": seed, "strategy": "initial", "round": 0, "labelled": 0,
                            "test_correct": bits(accuracy), "seconds": time.perf_counter() - started})
    for strategy in args.strategies.split(","):
        run_strategy(args, work / strategy, parts, seed, strategy, first, first_artifact, test, results)


def run_strategy(args: argparse.Namespace, work: Path, parts: dict[str, list[tuple[str, Path]]],
                 seed: int, strategy: str, previous: Path, artifact: Path | None, test: TestSet,
                 results: Path) -> None:
    dataset = work / "data"
    link_dataset(dataset, parts["initial"])
    labelled: set[Path] = set()
    for round_no in range(1, args.rounds + 1):
        started = time.perf_counter()
        pool = [item for item in parts["pool"] if item[1] not in labelled]
        truth = link_stream(work / f"stream{round_no}", pool, seed * 100 + round_no)
        inbox = work / f"inbox{round_no}"
        collect = collect_frames(artifact, work / f"stream{round_no}", inbox, strategy, args.budget,
                                 len(pool), seed * 100 + round_no)
        picked = label_frames(inbox, dataset, truth, strategy, args.budget)
        labelled.update(Path(os.readlink(source)) for source in picked)
        new = train_run(args, dataset, work / f"round{round_no}", previous, seed)
        verdict = compare_runs(new, previous)
        last = round_no == args.rounds
        artifact = None if last else export_int8(new)
        seconds = time.perf_counter() - started
        record = {"seed": seed, "strategy": strategy, "round": round_no, "labelled": len(picked),
                  "labelled_classes": dict(Counter(picked.values())), "collect": collect,
                  "compare": verdict, "round_includes_export": not last,
                  "test_correct": bits(test.correct(new)), "seconds": seconds}
        append_result(results, record)
        print(f"seed {seed} {strategy} round {round_no}: {record['labelled']} labelled "
              f"{record['labelled_classes']}, test {mean(record['test_correct']):.4f}, "
              f"compare {verdict['summary']}, round {seconds:.0f} s", flush=True)
        previous = new


def collect_frames(artifact: Path, stream: Path, inbox: Path, strategy: str, budget: int,
                   frames: int, seed: int) -> dict[str, Any]:
    """The live loop over ``stream`` with ``--collect inbox``; its cost and what it kept."""
    from edgecls.live.collect import Collector
    from edgecls.live.loop import LoopOptions, run_loop
    from edgecls.live.sources import FolderSource
    from edgecls.runtime.classifier import Classifier

    rules = collect_rules(strategy, budget, frames)
    classifier = Classifier(artifact)
    collector = TimedCollector(Collector(inbox, rules, model=artifact, source=str(stream), seed=seed))
    summary = run_loop(classifier, FolderSource(stream), [], LoopOptions(), collector=collector)
    return {"frames": summary["frames"], "seconds": summary["seconds"],
            "loop_ms_per_frame": 1000.0 * summary["seconds"] / max(summary["frames"], 1),
            "latency_ms_p50": summary["latency_ms_p50"],
            "collect_ms_per_frame": 1000.0 * collector.seconds / max(collector.offers, 1),
            "kept": summary["collect"]["kept"], "skipped": summary["collect"]["skipped"],
            "rules": {k: v for k, v in vars(rules).items() if v not in (None, False, ())}}


def collect_rules(strategy: str, budget: int, frames: int) -> Any:
    """The ``--collect-*`` options of a strategy."""
    from edgecls.live.collect import CollectRules

    if strategy == "uncertainty":
        return CollectRules(below=UNCERTAIN_BELOW, margin=UNCERTAIN_MARGIN)
    if strategy == "random":
        return CollectRules(random=min(1.0, RANDOM_SURPLUS * budget / max(frames, 1)))
    raise SystemExit(f"unknown strategy {strategy!r}: use uncertainty or random")


class TimedCollector:
    """A ``Collector`` whose ``offer`` (the loop thread's share of collecting) is timed."""

    def __init__(self, collector: Any) -> None:
        self.collector, self.seconds, self.offers = collector, 0.0, 0

    def offer(self, frame: Any, probabilities: Any, result: dict[str, Any]) -> None:
        started = time.perf_counter()
        self.collector.offer(frame, probabilities, result)
        self.seconds += time.perf_counter() - started
        self.offers += 1

    def __getattr__(self, name: str) -> Any:
        return getattr(self.collector, name)


def label_frames(inbox: Path, dataset: Path, truth: dict[str, str], strategy: str,
                 budget: int) -> dict[str, str]:
    """Labels ``budget`` frames of ``inbox`` into ``dataset`` with their true class; streamed file -> class."""
    from edgecls.review.session import ReviewError, ReviewSession

    session = ReviewSession(inbox, dataset, who="flywheel")
    try:
        sources = {name: json.loads(frame.path.with_suffix(".json").read_text())
                   for name, frame in session.frames.items()}
        order = labelling_order(session.order, sources, strategy)
        picked: dict[str, str] = {}
        for name in order:
            if len(picked) == budget:
                break
            source = sources[name]["file"]
            try:
                session.label(name, truth[source])
            except ReviewError:  # the dataset already holds this frame's content
                continue
            picked[source] = truth[source]
        return picked
    finally:
        session.close()


def labelling_order(review_order: list[str], sidecars: dict[str, dict[str, Any]],
                    strategy: str) -> list[str]:
    """The review page's order (uncertainty first) for uncertainty; stream order for random."""
    if strategy == "random":
        return sorted(review_order, key=lambda name: sidecars[name]["frame"])
    return list(review_order)


# ---- train, export, compare, test -------------------------------------------------------------

def train_run(args: argparse.Namespace, data: Path, out: Path, init_from: Path | None, seed: int) -> Path:
    """``edgecls train`` (Lite0 ImageNet weights, head only) or ``train --init-from``."""
    from edgecls.train.config import TrainConfig
    from edgecls.train.fit import train

    config = TrainConfig(data=str(data), out=str(out), model="efficientnet_lite0", weights="imagenet",
                         img_size=args.img_size, epochs=args.epochs, head_epochs=args.epochs,
                         patience=None, seed=seed, init_from=str(init_from) if init_from else None)
    if init_from:
        config.model = config.weights = config.img_size = None  # inherited
    started = time.perf_counter()
    train(config)
    print(f"  trained {out.name} on {data} in {time.perf_counter() - started:.0f} s", flush=True)
    return out


def export_int8(run: Path) -> Path:
    """``edgecls export RUN --formats tflite --precisions int8 --no-remedies``; the artifact."""
    from edgecls.api.exporting import export_run_dir

    started = time.perf_counter()
    result = export_run_dir(run, formats="tflite", precisions="int8", remedies=False, progress=False)
    print(f"  exported {run.name} in {time.perf_counter() - started:.0f} s: {result.verdicts}", flush=True)
    return result.paths[0]


def compare_runs(new: Path, old: Path) -> dict[str, Any]:
    """``edgecls compare NEW OLD``: overall paired difference and verdict."""
    from edgecls.export.compare import compare_paths

    result = compare_paths(new, old).overall
    if result is None:
        return {"summary": "nothing to compare"}
    d = result.paired
    return {"images": result.images, "new": result.new_accuracy, "old": result.old_accuracy,
            "difference_pp": -d.drop_pp, "interval_pp": [-d.high_pp, -d.low_pp], "verdict": result.verdict,
            "summary": f"{-d.drop_pp:+.2f} pp [{-d.high_pp:+.2f}, {-d.low_pp:+.2f}] on {result.images}, "
                       f"{result.verdict}"}


class TestSet:
    """The fixed test images, decoded once; which of them a run's float model gets right."""

    def __init__(self, items: list[tuple[str, Path]], size: tuple[int, int]) -> None:
        from edgecls.data.pipeline import load_arrays

        self.truth = [name for name, _ in items]
        self.images, _ = load_arrays([(path, 0) for _, path in items], size)

    def correct(self, run: Path) -> list[bool]:
        from edgecls.models.float_model import load_float_model, predict
        from edgecls.rundir import RunDir

        labels = RunDir(run).read_labels()
        scores = predict(load_float_model(RunDir(run).best_model), self.images)
        return [labels[i] == true for i, true in zip(scores.argmax(axis=1), self.truth)]


# ---- results and the table ----------------------------------------------------------------------

def bits(correct: list[bool]) -> str:
    return "".join("1" if c else "0" for c in correct)


def mean(text: str) -> float:
    return text.count("1") / len(text) if text else float("nan")


def append_result(path: Path, record: dict[str, Any]) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


def read_results(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def uncertainty_vs_random(pairs: list[tuple[str, str]]) -> dict[str, float] | None:
    """Uncertainty minus random accuracy (pp) on the same test images, pooled over ``pairs``
    of (uncertainty bits, random bits), with the paired 95 % interval."""
    from edgecls.stats import compare_paired
    import numpy as np

    if not pairs:
        return None
    unc = np.array([c == "1" for u, _ in pairs for c in u])
    rnd = np.array([c == "1" for _, r in pairs for c in r])
    d = compare_paired(rnd, unc)
    return {"pp": -d.drop_pp, "low": -d.high_pp, "high": -d.low_pp, "images": d.counts.images,
            "turned_right": d.counts.wrong_to_right, "turned_wrong": d.counts.right_to_wrong}


def print_table(records: list[dict[str, Any]]) -> None:
    """Per seed x strategy x round, then uncertainty vs random per seed and pooled. ``busy``:
    frames a strategy picked but the collector's writer had no room for (a file source
    streams faster than a camera)."""
    print(f"\n{'seed':>4} {'strategy':<11} {'round':>5} {'labelled':>8} {'test acc':>8} {'n':>4} "
          f"{'kept':>5} {'busy':>5} {'collect ms/frame':>16} {'loop ms/frame':>13} {'round s':>8}  compare NEW OLD")
    for r in records:
        c = r.get("collect") or {}
        print(f"{r['seed']:>4} {r['strategy']:<11} {r['round']:>5} {r['labelled']:>8} "
              f"{mean(r['test_correct']):>8.4f} {len(r['test_correct']):>4} {c.get('kept', '-'):>5} "
              f"{(c.get('skipped') or {}).get('writer_busy', 0) if c else '-':>5} "
              f"{c.get('collect_ms_per_frame', float('nan')):>16.3f} {c.get('loop_ms_per_frame', float('nan')):>13.2f} "
              f"{r['seconds']:>8.0f}  {(r.get('compare') or {}).get('summary', '')}")
    by_key = {(r["seed"], r["strategy"], r["round"]): r["test_correct"] for r in records}
    rounds = sorted({r["round"] for r in records if r["round"] > 0})
    print("\nuncertainty minus random, paired on the fixed test images [95 % interval]")
    for round_no in rounds:
        seeds = sorted({s for s, st, rn in by_key if rn == round_no and st == "uncertainty"
                        and (s, "random", round_no) in by_key})
        for seed in seeds + ["pooled"]:
            chosen = seeds if seed == "pooled" else [seed]
            d = uncertainty_vs_random([(by_key[(s, "uncertainty", round_no)], by_key[(s, "random", round_no)])
                                       for s in chosen])
            if d is not None and (seed != "pooled" or len(seeds) > 1):
                print(f"  round {round_no} seed {seed}: {d['pp']:+.2f} pp [{d['low']:+.2f}, {d['high']:+.2f}] "
                      f"on {d['images']} images, {d['turned_right']} turned right / {d['turned_wrong']} wrong")


if __name__ == "__main__":
    main()
