"""Compares two `edgecls run --jsonl` outputs (host vs aarch64) frame by frame.

Usage: compare_jsonl.py HOST.jsonl AARCH64.jsonl [--tie-margin M]

Frames are matched by image file name (the folders differ between host and chroot) or,
without file names, by frame index. Prints ``FRAMES AGREEMENT% NEAR_TIES`` on stdout (one
line, for the summary table) and every difference on stderr. Exits 1 on any top-1 label
difference, a frame present on one side only, or an empty output; 0 otherwise.

``--tie-margin M`` (default 0: off) accepts one kind of label difference: a near tie,
where on BOTH sides the other side's label is in the top-k within M of the winner's
score. INT8 kernels round differently on x86_64 and aarch64 (XNNPACK and ONNX Runtime
requantize with different rounding), so the same input can flip a top-2 tie; such frames
are counted and printed, never hidden. Any other difference still fails.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path, PurePosixPath
from typing import Any


def read_records(path: Path) -> dict[str, dict[str, Any]]:
    """Records of one JSONL file keyed by image file name (or frame index)."""
    records: dict[str, dict[str, Any]] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SystemExit(f"{path}:{number}: not JSON ({exc})") from None
        if "label" not in record:
            raise SystemExit(f"{path}:{number}: no 'label' in {sorted(record)}")
        key = PurePosixPath(record["file"]).name if record.get("file") else str(record.get("frame", number))
        records[key] = record
    return records


def score_of(record: dict[str, Any], label: str) -> float | None:
    """The score of ``label`` in a record's top-k, or None when it is not there."""
    return next((float(s) for name, s in record.get("topk", []) if name == label), None)


def is_near_tie(h: dict[str, Any], a: dict[str, Any], margin: float) -> bool:
    """True when each side ranks the other side's label within ``margin`` of its winner."""
    h_other, a_other = score_of(h, a["label"]), score_of(a, h["label"])
    if h_other is None or a_other is None:
        return False
    return float(h["score"]) - h_other <= margin and float(a["score"]) - a_other <= margin


def compare(host: dict[str, dict[str, Any]], arm: dict[str, dict[str, Any]],
            margin: float = 0.0) -> tuple[int, int, list[str], list[str]]:
    """Returns (frames compared, frames agreeing, problems, accepted near ties)."""
    problems = [f"{key}: only on the host" for key in sorted(host.keys() - arm.keys())]
    problems += [f"{key}: only on aarch64" for key in sorted(arm.keys() - host.keys())]
    shared = sorted(host.keys() & arm.keys())
    agree = 0
    ties: list[str] = []
    for key in shared:
        h, a = host[key], arm[key]
        if h["label"] == a["label"]:
            agree += 1
            continue
        text = (f"{key}: host {h['label']!r} {h.get('score')} (its {a['label']!r} {score_of(h, a['label'])}) "
                f"vs aarch64 {a['label']!r} {a.get('score')} (its {h['label']!r} {score_of(a, h['label'])})")
        (ties if margin > 0 and is_near_tie(h, a, margin) else problems).append(text)
    return len(shared), agree, problems, ties


def max_score_gap(host: dict[str, dict[str, Any]], arm: dict[str, dict[str, Any]]) -> float:
    """Largest absolute difference of the top-1 score over frames with the same label."""
    gaps = [abs(float(host[k].get("score", 0)) - float(arm[k].get("score", 0)))
            for k in host.keys() & arm.keys() if host[k]["label"] == arm[k]["label"]]
    return max(gaps, default=0.0)


def main(argv: list[str]) -> int:
    """Compares the two files named in ``argv``; returns the exit code."""
    margin = 0.0
    if len(argv) == 4 and argv[2] == "--tie-margin":
        margin, argv = float(argv[3]), argv[:2]
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    host, arm = (read_records(Path(p)) for p in argv)
    frames, agree, problems, ties = compare(host, arm, margin)
    if frames == 0:
        problems.append("no frames to compare")
    for problem in problems:
        print(f"  difference: {problem}", file=sys.stderr)
    for tie in ties:
        print(f"  near tie (within {margin:g}, accepted): {tie}", file=sys.stderr)
    print(f"  max top-1 score gap (same label): {max_score_gap(host, arm):.4f}", file=sys.stderr)
    share = 100.0 * agree / frames if frames else 0.0
    print(f"{frames} {share:.1f}% {len(ties)}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
