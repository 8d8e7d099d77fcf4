"""Digests of edgecls' single preprocessing function over a folder of images.

Usage: prep_digest.py IMAGE_DIR OUT.jsonl
       prep_digest.py --compare HOST.jsonl AARCH64.jsonl

For every image and every (size, resize, interpolation) case below, writes one JSON line
``{"file", "case", "sha256"}`` of the float32 array ``prepare()`` returns. Run on the host
and inside the arm64 chroot, the two files must be identical: decoding and resizing are
then bit-identical on both CPUs, so any label difference can only come from the backends.
``--compare`` prints ``CASES AGREEMENT%`` and exits 1 on any difference.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

from edgecls.runtime import Preprocessing, prepare, read_image_bgr

CASES = [
    ((224, 224), Preprocessing(color="RGB", resize="stretch", interpolation="bilinear")),
    ((160, 160), Preprocessing(color="RGB", resize="stretch", interpolation="bilinear")),
    ((128, 96), Preprocessing(color="BGR", resize="center_crop", interpolation="bilinear")),
    ((112, 112), Preprocessing(color="RGB", resize="stretch", interpolation="area")),
    ((224, 224), Preprocessing(color="RGB", resize="stretch", interpolation="nearest",
                               scale=1 / 127.5, offset=-1.0)),
]


def digests(folder: Path) -> list[dict[str, str]]:
    """One record per image and case."""
    records = []
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        image = read_image_bgr(path)
        for size, pre in CASES:
            case = f"{size[0]}x{size[1]}-{pre.color}-{pre.resize}-{pre.interpolation}-{pre.scale:g}"
            digest = hashlib.sha256(prepare(image, size, pre).tobytes()).hexdigest()
            records.append({"file": path.name, "case": case, "sha256": digest})
    return records


def compare(host_path: Path, arm_path: Path) -> int:
    """Prints the share of identical digests; returns 1 on any difference."""
    def load(path: Path) -> dict[tuple[str, str], str]:
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
        return {(r["file"], r["case"]): r["sha256"] for r in rows}

    host, arm = load(host_path), load(arm_path)
    differ = sorted(k for k in host.keys() | arm.keys() if host.get(k) != arm.get(k))
    for file, case in differ:
        print(f"  difference: prepare() of {file} ({case}) is not bit-identical", file=sys.stderr)
    total = len(host.keys() | arm.keys())
    print(f"{total} {100.0 * (total - len(differ)) / total if total else 0.0:.1f}%")
    return 1 if differ or not total else 0


def main(argv: list[str]) -> int:
    """Writes the digests of ``argv[0]``'s images to ``argv[1]``, or compares two files."""
    if len(argv) == 3 and argv[0] == "--compare":
        return compare(Path(argv[1]), Path(argv[2]))
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    lines = [json.dumps(r, sort_keys=True) for r in digests(Path(argv[0]))]
    Path(argv[1]).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
