"""``--collect`` on a synthetic frame stream with known scores: each strategy, the duplicate
filter, the rate caps (across a restart), the storage budget, interrupted and refused writes."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers.collect import Clock, feed, kept_frames, scene, shot

from edgecls.errors import ConfigError
from edgecls.live.collect import Collector, CollectRules
from edgecls.live.collect_store import StoreLimits

CONFIDENT, UNSURE, TORN = (0.9, 0.06, 0.04), (0.4, 0.35, 0.25), (0.48, 0.46, 0.06)


def _distinct(scores: list[tuple[float, ...]]) -> list[tuple[np.ndarray, tuple[float, ...]]]:
    """A stream of different scenes (never near-duplicates) with the given scores."""
    return [(scene(i), s) for i, s in enumerate(scores)]


def test_low_confidence_keeps_frames_under_the_threshold_with_their_sidecars(tmp_path: Path) -> None:
    model = tmp_path / "m.onnx"
    model.write_bytes(b"model bytes")
    collector = Collector(tmp_path / "c", CollectRules(below=0.5), model=model, source="camera 0")
    summary = feed(collector, _distinct([CONFIDENT, UNSURE, CONFIDENT, TORN]))
    assert kept_frames(tmp_path / "c") == [1, 3]
    assert summary["kept"] == 2 and summary["reasons"] == {"low_confidence": 2}
    sidecar = json.loads(sorted((tmp_path / "c").glob("*.json"))[0].read_text())
    assert sidecar["reasons"] == ["low_confidence"] and "0.400 under 0.5" in sidecar["why"]
    assert sidecar["topk"][0] == ["cat", 0.4] and sidecar["source"] == "camera 0" and sidecar["frame"] == 1
    assert sidecar["model"] == {"file": "m.onnx", "sha256": hashlib.sha256(b"model bytes").hexdigest()}
    image = cv2.imread(str(tmp_path / "c" / sidecar["image"]))
    assert image.shape == (48, 64, 3)
    assert np.abs(image.astype(int) - scene(1)).mean() < 12 < 40 < np.abs(image.astype(int) - scene(0)).mean()


def test_no_strategy_given_means_low_confidence_under_one_half(tmp_path: Path) -> None:
    summary = feed(Collector(tmp_path, CollectRules()), _distinct([CONFIDENT, (0.55, 0.4, 0.05), UNSURE]))
    assert kept_frames(tmp_path) == [2] and summary["reasons"] == {"low_confidence": 1}


def test_small_margin_keeps_frames_torn_between_two_classes(tmp_path: Path) -> None:
    summary = feed(Collector(tmp_path, CollectRules(margin=0.03)), _distinct([CONFIDENT, TORN, UNSURE]))
    assert kept_frames(tmp_path) == [1] and summary["reasons"] == {"small_margin": 1}


def test_flicker_keeps_a_label_change_in_a_still_scene_not_at_a_scene_cut(tmp_path: Path) -> None:
    still, dog = scene(100), (0.1, 0.85, 0.05)
    stream = [(shot(still, 0), CONFIDENT), (shot(still, 1), CONFIDENT), (shot(still, 2), dog),  # flicker
              (scene(7), CONFIDENT),  # a cut to another scene: a new label is no flicker
              (shot(scene(8), 0), dog), (shot(scene(8), 1), dog)]
    summary = feed(Collector(tmp_path, CollectRules(flicker=True)), stream)
    assert kept_frames(tmp_path) == [2] and summary["reasons"] == {"flicker": 1}
    assert "from cat to dog" in json.loads(next(tmp_path.glob("*.json")).read_text())["why"]


def test_class_filter_alone_and_combined(tmp_path: Path) -> None:
    dog, unsure_dog = (0.05, 0.9, 0.05), (0.3, 0.4, 0.3)
    alone = feed(Collector(tmp_path / "a", CollectRules(classes=["dog"])), _distinct([CONFIDENT, dog, unsure_dog]))
    assert kept_frames(tmp_path / "a") == [1, 2] and alone["reasons"] == {"class": 2}
    both = feed(Collector(tmp_path / "b", CollectRules(below=0.5, classes=["dog"])),
                _distinct([UNSURE, dog, unsure_dog]))
    assert kept_frames(tmp_path / "b") == [2] and both["reasons"] == {"low_confidence": 1}
    with pytest.raises(ConfigError, match="no class 'wolf'"):
        CollectRules(classes=["dog", "wolf"]).check_classes(["cat", "dog"])


def test_random_sample_keeps_its_fraction_even_of_a_still_scene(tmp_path: Path) -> None:
    still = scene(3)
    summary = feed(Collector(tmp_path, CollectRules(random=0.1), seed=1), [(still, CONFIDENT)] * 1000)
    assert 60 <= summary["kept"] <= 140 and summary["reasons"] == {"random": summary["kept"]}
    assert "duplicate" not in summary["skipped"]


def test_random_frames_escape_the_duplicate_filter_other_reasons_do_not(tmp_path: Path) -> None:
    """An unsure still scene: low confidence keeps it once, the random sample its fraction."""
    summary = feed(Collector(tmp_path, CollectRules(below=0.5, random=0.1), seed=2), [(scene(4), UNSURE)] * 500)
    sampled = summary["reasons"]["random"]
    assert 25 <= sampled <= 75 and summary["kept"] - sampled <= 1
    assert summary["skipped"]["duplicate"] == 500 - summary["kept"]


def test_a_writer_behind_drops_frames_instead_of_slowing_the_loop(tmp_path: Path) -> None:
    big = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    collector = Collector(tmp_path, CollectRules(random=1.0))
    started = time.perf_counter()
    summary = feed(collector, [(big, CONFIDENT)] * 100, wait=False)
    assert summary["kept"] + summary["skipped"]["writer_busy"] == 100 and summary["skipped"]["writer_busy"] > 0
    assert (time.perf_counter() - started) / 100 < 0.02  # far under a noise JPEG's encode and write
    assert len(list(tmp_path.glob("*.jpg"))) == summary["kept"]


def test_near_duplicates_of_a_still_scene_are_kept_once(tmp_path: Path) -> None:
    first, second = scene(1), scene(2)
    stream = [(shot(first, i), UNSURE) for i in range(6)] + [(shot(second, i), UNSURE) for i in range(4)]
    summary = feed(Collector(tmp_path, CollectRules(below=0.5)), stream)
    assert kept_frames(tmp_path) == [0, 6] and summary["skipped"] == {"duplicate": 8}
    again = feed(Collector(tmp_path, CollectRules(below=0.5)), [(shot(second, 9), UNSURE)])
    assert again["kept"] == 0 and again["skipped"] == {"duplicate": 1}  # hashes come back from the sidecars


def test_rate_caps_are_counted_from_the_folder_across_a_restart(tmp_path: Path) -> None:
    clock, limits = Clock(), StoreLimits(per_minute=3, per_hour=5)
    first = feed(Collector(tmp_path, CollectRules(below=0.5), limits, clock=clock), _distinct([UNSURE] * 5))
    assert first["kept"] == 3 and first["skipped"] == {"cap_per_minute": 2}
    clock.now += 10  # a restart within the same minute still sees the three frames
    restarted = feed(Collector(tmp_path, CollectRules(below=0.5), limits, clock=clock), _distinct([UNSURE] * 2))
    assert restarted["kept"] == 0 and restarted["skipped"] == {"cap_per_minute": 2}
    clock.now += 120  # a new minute, but the hour allows only two more
    later = feed(Collector(tmp_path, CollectRules(below=0.5), limits, clock=clock),
                 [(scene(50 + i), UNSURE) for i in range(4)], clock, step_s=30)
    assert later["kept"] == 2 and later["skipped"] == {"cap_per_hour": 2}
    assert later["frames_in_folder"] == 5


def test_storage_budget_stop_keeps_what_is_there_and_says_so_once(tmp_path: Path, caplog) -> None:
    item_bytes = _item_bytes(tmp_path / "probe")
    limits = StoreLimits(max_bytes=int(item_bytes * 3.5))
    with caplog.at_level(logging.WARNING):
        summary = feed(Collector(tmp_path / "c", CollectRules(below=0.5), limits), _distinct([UNSURE] * 10))
    assert summary["kept"] == 3 and summary["stopped"] and summary["frames_in_folder"] == 3
    assert summary["skipped"]["storage_full"] == 7, summary
    full = [r for r in caplog.records if "--collect-max-mb" in r.getMessage()]
    assert len(full) == 1 and "no more frames are kept" in full[0].getMessage()
    caplog.clear()
    held = sum(p.stat().st_size for p in (tmp_path / "c").iterdir())
    with caplog.at_level(logging.WARNING):  # a restart on the full folder says so at once, writes nothing
        again = feed(Collector(tmp_path / "c", CollectRules(below=0.5), StoreLimits(max_bytes=held)),
                     _distinct([UNSURE] * 3))
    assert again["kept"] == 0 and again["skipped"] == {"storage_full": 3}
    assert len(caplog.records) == 1 and "already holds" in caplog.records[0].getMessage()


def test_storage_budget_evict_oldest_keeps_the_newest_frames(tmp_path: Path, caplog) -> None:
    item_bytes = _item_bytes(tmp_path / "probe")
    limits = StoreLimits(max_bytes=int(item_bytes * 3.5), when_full="evict-oldest")
    with caplog.at_level(logging.WARNING):
        summary = feed(Collector(tmp_path / "c", CollectRules(below=0.5), limits), _distinct([UNSURE] * 8))
    assert kept_frames(tmp_path / "c") == [5, 6, 7] and summary["evicted"] == 5 and summary["kept"] == 8
    assert sum(p.stat().st_size for p in (tmp_path / "c").iterdir()) <= limits.max_bytes
    assert len([r for r in caplog.records if "removing the oldest" in r.getMessage()]) == 1


def test_a_nearly_full_disk_stops_collecting_before_it_fills(tmp_path: Path, caplog) -> None:
    """Asks the real disk to keep more free than it has: nothing is written, one line."""
    reserve = shutil.disk_usage(tmp_path).free + 10**9
    with caplog.at_level(logging.WARNING):
        summary = feed(Collector(tmp_path, CollectRules(below=0.5), StoreLimits(min_free_bytes=reserve)),
                       _distinct([UNSURE] * 4))
    assert summary["kept"] == 0 and summary["stopped"] and summary["skipped"] == {"storage_full": 4}
    assert len(caplog.records) == 1 and "is nearly full" in caplog.records[0].getMessage()
    assert not list(tmp_path.iterdir())


def _item_bytes(folder: Path) -> int:
    """The size of one item of the synthetic stream (JPEG + sidecar)."""
    feed(Collector(folder, CollectRules(below=0.5)), _distinct([UNSURE]))
    return sum(p.stat().st_size for p in folder.iterdir())


def test_a_restart_removes_interrupted_writes_and_leaves_other_files_alone(tmp_path: Path) -> None:
    feed(Collector(tmp_path, CollectRules(below=0.5)), _distinct([UNSURE]))
    (tmp_path / ".20260101T000000.000000Z-f0000001.jpg.123.tmp").write_bytes(b"\xff\xd8half")
    (tmp_path / "20260101T000000.000000Z-f0000002.jpg").write_bytes(b"\xff\xd8no sidecar")
    (tmp_path / "notes.txt").write_text("mine")
    collector = Collector(tmp_path, CollectRules(below=0.5))
    collector.close()
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".jpg", ".json", ".txt"]
    assert collector.summary()["frames_in_folder"] == 1


@pytest.mark.parametrize(("bad", "message"), [
    ({"below": 1.5}, "--collect-below must be between 0 and 1"),
    ({"random": -0.1}, "--collect-random must be between 0 and 1"),
])
def test_bad_rules_are_one_line_errors(bad: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        CollectRules(**bad)


def test_bad_limits_and_folders_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is not one of stop, evict-oldest"):
        StoreLimits(when_full="panic")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        Collector(tmp_path / "file", CollectRules())
    with pytest.raises(ConfigError, match="cannot write to --collect folder"):
        Collector(tmp_path / "file" / "sub", CollectRules())


def test_a_refused_write_stops_collecting_with_one_line_and_loses_nothing(tmp_path: Path) -> None:
    """The OS refuses a write mid-run (here a file-size limit: EFBIG, as ENOSPC from a full
    disk): one warning, frames kept before stay whole, no partial file, the run goes on."""
    code = textwrap.dedent(f"""
        import logging, resource, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from helpers.collect import feed, scene, kept_frames
        import numpy as np
        from edgecls.live.collect import Collector, CollectRules
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
        collector = Collector({str(tmp_path)!r}, CollectRules(below=0.5))
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))
        noise = np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)
        unsure = (0.4, 0.35, 0.25)
        stream = [(scene(1), unsure), (scene(2), unsure), (noise, unsure), (scene(3), unsure), (scene(4), unsure)]
        summary = feed(collector, stream)
        print(summary["kept"], summary["stopped"], kept_frames(collector.store.folder))
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["2", "True", "[0,", "1]"]
    warnings = [line for line in result.stderr.splitlines() if line.startswith("WARNING")]
    assert len(warnings) == 1 and "cannot write to" in warnings[0] and "File too large" in warnings[0]
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".jpg", ".jpg", ".json", ".json"]
    assert all(cv2.imread(str(p)) is not None for p in tmp_path.glob("*.jpg"))
