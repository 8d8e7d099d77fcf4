"""Compares two `edgecls run --jsonl` outputs (host vs aarch64) frame by frame.

Usage: compare_jsonl.py HOST.jsonl AARCH64.jsonl

Frames are matched by image file name (the folders differ between host and chroot) or,
without file names, by frame index. Prints ``FRAMES AGREEMENT%`` on stdout (one line,
for the summary table) and every difference on stderr. Exits 1 on any top-1 label
difference, a frame present on one side only, or an empty output; 0 otherwise.
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


def compare(host: dict[str, dict[str, Any]], arm: dict[str, dict[str, Any]]) -> tuple[int, int, list[str]]:
    """Returns (frames compared, frames agreeing, problems)."""
    problems = [f"{key}: only on the host" for key in sorted(host.keys() - arm.keys())]
    problems += [f"{key}: only on aarch64" for key in sorted(arm.keys() - host.keys())]
    shared = sorted(host.keys() & arm.keys())
    agree = 0
    for key in shared:
        h, a = host[key], arm[key]
        if h["label"] == a["label"]:
            agree += 1
        else:
            problems.append(f"{key}: host {h['label']!r} ({h.get('score')}) vs aarch64 {a['label']!r} ({a.get('score')})")
    return len(shared), agree, problems


def max_score_gap(host: dict[str, dict[str, Any]], arm: dict[str, dict[str, Any]]) -> float:
    """Largest absolute difference of the top-1 score over frames with the same label."""
    gaps = [abs(float(host[k].get("score", 0)) - float(arm[k].get("score", 0)))
            for k in host.keys() & arm.keys() if host[k]["label"] == arm[k]["label"]]
    return max(gaps, default=0.0)


def main(argv: list[str]) -> int:
    """Compares the two files named in ``argv``; returns the exit code."""
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    host, arm = (read_records(Path(p)) for p in argv)
    frames, agree, problems = compare(host, arm)
    if frames == 0:
        problems.append("no frames to compare")
    for problem in problems:
        print(f"  difference: {problem}", file=sys.stderr)
    print(f"  max top-1 score gap (same label): {max_score_gap(host, arm):.4f}", file=sys.stderr)
    share = 100.0 * agree / frames if frames else 0.0
    print(f"{frames} {share:.1f}%")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
