"""Fuzz the three artifact formats: damaged copies of INT8 models exported by edgecls.

A small CNN (96x96, 5 classes, random weights without batch norm, so that scores differ
between images: corruption does not care what was learned) is exported to INT8 TFLite,
ONNX and OpenVINO by the real exporters (digests stamped) and cached. For each format,
``--mutants`` deterministic damaged copies are made: bit flips in the weights, bit flips
anywhere, random bytes, truncation and damaged metadata. Each one is loaded and run on 8 fixed images through
``edgecls.runtime.Classifier``, with verification (the default) and with
``verify=False``, and counted as:

- refused: a one-line edgecls error (``EdgeclsError``): the goal for every damaged file;
- ran, output changed: silent garbage (goal with verification: 0);
- ran, same output: the damage did not change these 8 results;
- traceback: any other exception (goal: 0); crashed: the process died (signal).

Mutants run in a worker process that is restarted after a crash. Then, per format (and
for the 3.6 MB Coral MobileNetV2 INT8 with a digest stamped in, when ../shared has it),
the time to verify the digest vs the time to load the model unverified, medians.

Usage: nice -n 5 .venv/bin/python benchmarks/fuzz_models.py [--mutants 150] [--seed 0]
       [--timing-only]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

CACHE = Path(tempfile.gettempdir()) / "edgecls_fuzz_models"
CORAL = Path(__file__).resolve().parents[1].parent / "shared" / "models" / "coral" / \
    "mobilenet_v2_1.0_224_quant.tflite"
FORMATS = {"tflite": "model_int8.tflite", "onnx": "model_int8.onnx", "openvino": "model_int8.xml"}
KINDS = ("weight bit flip", "bit flip anywhere", "random bytes", "truncation", "metadata")
OUTCOMES = ("refused", "ran, output changed", "ran, same output", "traceback", "crashed")
SIZE = 96


# -- models -------------------------------------------------------------------------
def build_models(folder: Path) -> dict[str, Path]:
    """INT8 artifacts of one random-weight CNN, written by the edgecls exporters."""
    paths = {fmt: folder / name for fmt, name in FORMATS.items()}
    if all(p.is_file() for p in paths.values()):
        return paths
    from edgecls.export.base import ExportSource, QuantizationConfig, get_exporter
    from edgecls.export.metadata import base_metadata

    folder.mkdir(parents=True, exist_ok=True)
    model = random_cnn()
    model.export(str(folder / "saved_model"), format="tf_saved_model", verbose=False)
    meta = base_metadata([f"class_{i}" for i in range(5)], (SIZE, SIZE), model.name)
    source = ExportSource(model, folder / "saved_model", meta, folder)
    calibration = fixed_frames(64, seed=2)[..., ::-1].astype(np.float32)  # RGB
    for fmt, path in paths.items():
        print(f"exporting {path.name} ...", flush=True)
        get_exporter(fmt).export(source, QuantizationConfig.for_int8(calibration), path)
    return paths


def random_cnn() -> object:
    """Four strided convolutions (about 100k weights) and a 5-way head, seeded; no batch
    norm, so that random weights still give scores that differ from image to image."""
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0)(inputs)
    for filters in (16, 32, 64, 128):
        x = keras.layers.Conv2D(filters, 3, strides=2, padding="same", activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(5, activation="softmax",
                                 kernel_initializer=keras.initializers.RandomNormal(0, 3.0))(x)
    return keras.Model(inputs, outputs, name="random_cnn")


def fixed_frames(count: int = 8, seed: int = 1) -> np.ndarray:
    """BGR frames at the model's size: a random color each, with noise and a gradient."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 1, SIZE, dtype=np.float32)[None, :, None]
    colors = rng.uniform(0, 255, (count, 1, 1, 3)).astype(np.float32)
    frames = colors * (0.5 + 0.5 * ramp) + rng.normal(0, 20, (count, SIZE, SIZE, 3))
    return np.clip(frames, 0, 255).astype(np.uint8)


# -- mutants ------------------------------------------------------------------------
def weight_regions(model: Path) -> tuple[Path, list[tuple[int, int]]]:
    """(file holding the weights, [(start, length)] of its weight tensors)."""
    if model.suffix == ".xml":
        weights = model.with_suffix(".bin")
        return weights, [(0, weights.stat().st_size)]
    data = model.read_bytes()
    if model.suffix == ".tflite":
        from ai_edge_litert import schema_py_generated as schema

        tables = schema.Model.GetRootAs(data, 0)
        chunks = [tables.Buffers(i).DataAsNumpy() for i in range(tables.BuffersLength())]
        blobs = [c.tobytes() for c in chunks if not isinstance(c, int) and c.size >= 64]
    else:
        import onnx

        proto = onnx.load_from_string(data)
        blobs = [t.raw_data for t in proto.graph.initializer if len(t.raw_data) >= 64]
    regions = [(data.find(blob), len(blob)) for blob in blobs]
    return model, [(start, length) for start, length in regions if start >= 0]


def make_mutant(model: Path, kind: str, rng: np.random.Generator, folder: Path) -> Path:
    """A damaged copy of ``model`` (and its .bin) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for suffix in (model.suffix, ".bin"):
        if model.with_suffix(suffix).is_file():
            (folder / model.with_suffix(suffix).name).write_bytes(model.with_suffix(suffix).read_bytes())
    copy = folder / model.name
    if kind == "weight bit flip":
        target, regions = weight_regions(copy)
        sizes = np.array([length for _, length in regions], np.float64)
        start, length = regions[int(rng.choice(len(regions), p=sizes / sizes.sum()))]
        _flip(target, start + int(rng.integers(length)), int(rng.integers(8)))
    elif kind == "bit flip anywhere":
        target = copy.with_suffix(".bin") if copy.suffix == ".xml" and rng.random() < 0.5 else copy
        _flip(target, int(rng.integers(target.stat().st_size)), int(rng.integers(8)))
    elif kind == "random bytes":
        data = copy.read_bytes()
        count = int(rng.integers(1, 65))
        at = int(rng.integers(len(data) - count))
        chunk = rng.bytes(count)
        if chunk == data[at:at + count]:  # the same bytes by chance: make it a change
            chunk = bytes([chunk[0] ^ 0xFF]) + chunk[1:]
        copy.write_bytes(data[:at] + chunk + data[at + count:])
    elif kind == "truncation":
        target = copy.with_suffix(".bin") if copy.suffix == ".xml" and rng.random() < 0.5 else copy
        data = target.read_bytes()
        target.write_bytes(data[: int(rng.integers(len(data)))])
    else:  # metadata: one byte changed in the embedded JSON around the digest
        data = bytearray(copy.read_bytes())
        center = max(data.find(b"edgecls-blake3:"), data.find(b"edgecls-sha256:"))  # new or old scheme
        at = int(np.clip(center + rng.integers(-250, 250), 0, len(data) - 1))
        data[at] = (data[at] + int(rng.integers(1, 256))) % 256
        copy.write_bytes(bytes(data))
    return copy


def _flip(path: Path, offset: int, bit: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 1 << bit
    path.write_bytes(bytes(data))


def mutant_plan(count: int) -> list[str]:
    """The kinds of ``count`` mutants: a third weight flips, the rest spread evenly."""
    flips = count // 3
    others = [KINDS[1 + i % (len(KINDS) - 1)] for i in range(count - flips)]
    return [KINDS[0]] * flips + others


# -- the worker: runs mutants in-process, one JSON line each ------------------------
def worker(job_path: Path) -> None:
    from edgecls.errors import EdgeclsError
    from edgecls.runtime import Classifier

    job = json.loads(job_path.read_text())
    model, frames = Path(job["model"]), fixed_frames()
    reference = Classifier(model).probabilities_batch(list(frames))
    with open(job["results"], "a") as out:
        for index in range(job["start"], len(job["plan"])):
            kind = job["plan"][index]
            rng = np.random.default_rng([job["seed"], index, sum(map(ord, model.suffix))])
            with tempfile.TemporaryDirectory() as tmp:
                mutant = make_mutant(model, kind, rng, Path(tmp))
                row = {"index": index, "kind": kind}
                for verify in (True, False):
                    out.write(json.dumps({**row, "verify": verify, "started": True}) + "\n")
                    out.flush()
                    try:
                        scores = Classifier(mutant, verify=verify).probabilities_batch(list(frames))
                        same = scores.shape == reference.shape and np.array_equal(scores, reference)
                        outcome, detail = ("ran, same output" if same else "ran, output changed"), ""
                    except EdgeclsError as exc:
                        outcome, detail = "refused", str(exc)[:160]
                    except Exception:  # noqa: BLE001 - what the fuzz is looking for
                        outcome, detail = "traceback", traceback.format_exc(limit=3)[-400:]
                    out.write(json.dumps({**row, "verify": verify, "outcome": outcome,
                                          "detail": detail}) + "\n")
                    out.flush()


def fuzz_format(model: Path, count: int, seed: int, folder: Path) -> list[dict]:
    """Runs every mutant of one model; a crashed worker is restarted after its mutant."""
    plan = mutant_plan(count)
    results = folder / f"{model.stem}{model.suffix}.jsonl"
    results.unlink(missing_ok=True)
    start = 0
    while start < len(plan):
        job = folder / "job.json"
        job.write_text(json.dumps({"model": str(model), "plan": plan, "seed": seed,
                                   "start": start, "results": str(results)}))
        try:
            code = subprocess.run([sys.executable, __file__, "--worker", str(job)],
                                  check=False, capture_output=True, text=True, timeout=900).returncode
        except subprocess.TimeoutExpired:
            code = "timeout (hung)"
        rows = [json.loads(line) for line in results.read_text().splitlines()]
        if code == 0:
            break
        last = rows[-1]  # the row the worker started and never finished
        results.open("a").write(json.dumps({**last, "outcome": "crashed",
                                            "detail": f"exit {code}"}) + "\n")
        if last["verify"]:  # the no-verify run of that mutant is skipped too
            results.open("a").write(json.dumps({**last, "verify": False, "outcome": "crashed",
                                                "detail": "not run after the crash"}) + "\n")
        start = last["index"] + 1
    return [r for r in map(json.loads, results.read_text().splitlines()) if "outcome" in r]


# -- timing -------------------------------------------------------------------------
def verify_vs_load(model: Path, repeats: int = 7) -> tuple[float, float]:
    """Median milliseconds of ``verify_file`` and of loading the model unverified."""
    from edgecls.runtime import integrity, load_backend

    verify, load = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        integrity.verify_file(model)
        verify.append(time.perf_counter() - started)
        started = time.perf_counter()
        load_backend(model, verify=False)
        load.append(time.perf_counter() - started)
    return statistics.median(verify) * 1e3, statistics.median(load) * 1e3


def stamped_coral(folder: Path) -> Path | None:
    """The 3.6 MB Coral MobileNetV2 INT8 with an edgecls entry and digest, for timing."""
    if not CORAL.is_file():
        return None
    from edgecls.runtime import integrity
    from edgecls.runtime.metadata import ModelMetadata
    from edgecls.runtime.tflite_metadata import embed_tflite_metadata

    names = (CORAL.parent / "imagenet_labels.txt").read_text().splitlines()
    labels = (["background"] + [n.strip() for n in names if n.strip()])[:1001]
    meta = ModelMetadata(labels=labels, input_size=(224, 224), digest=integrity.DIGEST_PLACEHOLDER)
    out = folder / "coral_mobilenet_v2_int8.tflite"
    out.write_bytes(integrity.stamp_bytes(embed_tflite_metadata(CORAL.read_bytes(), meta)))
    return out


# -- report -------------------------------------------------------------------------
def print_counts(fmt: str, rows: list[dict]) -> None:
    for verify in (True, False):
        chosen = [r for r in rows if r["verify"] == verify]
        counts = {o: sum(r["outcome"] == o for r in chosen) for o in OUTCOMES}
        label = "verified" if verify else "--no-verify"
        print(f"{fmt:<9} {label:<12} {len(chosen):>4} " + " ".join(f"{counts[o]:>9}" for o in OUTCOMES))
    flips = [r for r in rows if r["verify"] and r["kind"] == KINDS[0]]
    garbage = sum(r["outcome"] == "ran, output changed" for r in flips)
    print(f"{'':<9} weight bit flips (verified): {len(flips)}, silent garbage: {garbage}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mutants", type=int, default=150, help="mutants per format")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timing-only", action="store_true", help="skip the fuzz")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker)
        return
    models = build_models(CACHE)
    work = Path(tempfile.mkdtemp(prefix="edgecls_fuzz_"))
    all_rows = {}
    if not args.timing_only:
        print(f"{'format':<9} {'mode':<12} {'n':>4} " + " ".join(f"{o[:9]:>9}" for o in OUTCOMES))
        for fmt, model in models.items():
            all_rows[fmt] = fuzz_format(model, args.mutants, args.seed, work)
            print_counts(fmt, all_rows[fmt])
    tracebacks = [r for rows in all_rows.values() for r in rows if r["outcome"] == "traceback"]
    for row in tracebacks[:5]:
        print(f"traceback ({row['kind']}, verify={row['verify']}): {row['detail']}")
    print("\nverify vs load (median of 7, ms):")
    timed = dict(models)
    coral = stamped_coral(work)
    if coral is not None:
        timed["tflite (Coral MobileNetV2)"] = coral
    for fmt, model in timed.items():
        size = sum(p.stat().st_size for p in (model, model.with_suffix(".bin")) if p.is_file())
        verify_ms, load_ms = verify_vs_load(model)
        print(f"{fmt:<26} {size / 1e6:6.2f} MB  verify {verify_ms:7.2f}  load {load_ms:8.2f}  "
              f"verify/load {verify_ms / load_ms:6.1%}")


if __name__ == "__main__":
    main()
