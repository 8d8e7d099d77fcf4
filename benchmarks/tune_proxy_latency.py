"""Is `tune`'s untrained latency proxy a fair stand-in for the trained artifact?

`edgecls tune` decides whether a candidate meets the budget on an INT8 artifact built from
untrained weights (`steps.untrained_artifact`). For every unpruned model that
`benchmarks/tune_flowers.py` trained into WORK (WORK/NAME/figures.json), this builds the
proxy of the same signature, lists both artifacts' ops and size, and benches both in
interleaved rounds (load drifts between benches; interleaving spreads it over both alike).
Pruned models are left out: their channels are chosen by the trained weights, so the proxy
of a pruned signature is not the same network.

    .venv/bin/python benchmarks/tune_proxy_latency.py WORK [--rounds 5]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work", type=Path, help="the --work folder of benchmarks/tune_flowers.py")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    artifacts = _pairs(args.work)
    for name, path in artifacts.items():
        print(f"{name:24} {path.stat().st_size / 1e6:5.2f} MB  ops {_ops(path)}")
    p50s = _interleaved(artifacts, args.rounds)
    print(f"\nmedian p50 (min-max) over {args.rounds} interleaved benches")
    for name, values in p50s.items():
        print(f"{name:24} {np.median(values):6.2f} ms ({min(values):.2f}-{max(values):.2f})")
    (args.work / "proxy_latency.json").write_text(json.dumps(p50s, indent=1), encoding="utf-8")


def _pairs(work: Path) -> dict[str, Path]:
    """``NAME proxy`` and ``NAME trained`` artifacts for every unpruned model in ``work``."""
    from edgecls.data.split import Split
    from edgecls.tune import steps
    from edgecls.tune.space import Signature

    out = work / "proxies"
    out.mkdir(exist_ok=True)
    pairs: dict[str, Path] = {}
    for figures_file in sorted(work.glob("*/figures.json")):
        figures = json.loads(figures_file.read_text(encoding="utf-8"))
        if figures["mac"]:
            continue
        name = figures_file.parent.name
        proxy = out / f"{name}.tflite"
        if not proxy.is_file():
            classes = len(Split.load(figures_file.parent / "run" / "split.json").labels)
            built = steps.untrained_artifact(Signature(figures["family"], figures["size"]), classes,
                                             Path(tempfile.mkdtemp(dir=out)))
            proxy.write_bytes(built.read_bytes())
        pairs[f"{name} proxy"], pairs[f"{name} trained"] = proxy, Path(figures["artifact"])
    return pairs


def _ops(path: Path) -> dict[str, int]:
    """How many operators of each kind the artifact's graph holds."""
    from tensorflow.lite.tools import flatbuffer_utils

    from edgecls.export.tflite_quant import op_name

    model = flatbuffer_utils.read_model(str(path))
    kinds = (op_name(model, op) for graph in model.subgraphs for op in graph.operators)
    return dict(sorted(collections.Counter(kinds).items()))


def _interleaved(artifacts: dict[str, Path], rounds: int) -> dict[str, list[float]]:
    from edgecls.tune import steps

    p50s: dict[str, list[float]] = {name: [] for name in artifacts}
    for _ in range(rounds):
        for name, path in artifacts.items():
            p50s[name].append(steps.bench_here(path, None)["latency"]["p50_ms"])
    return p50s


if __name__ == "__main__":
    main()
