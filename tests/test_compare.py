"""`edgecls compare NEW OLD` on constructed pairs: a real difference, noise, slices and bad input.

Pairs are built without training (tests/helpers/compare.py): a run whose model reads the
images' colour, and copies of its split with an untrained model (a real difference), or two
untrained models (noise).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from edgecls.data.split import Split
from edgecls.errors import DataError, ModelError
from edgecls.export.compare import compare_paths, load_comparison
from edgecls.stats import BETTER, NO_DIFFERENCE, WORSE
from helpers.cli import run_cli
from helpers.images import write_image_folder
from helpers.compare import SIZE, copy_run, drop_test_images, write_run
from helpers.runs import tiny_model

HELD_BACK = 4  # test images the old run's split did not have: "new since OLD"


@pytest.fixture(scope="module")
def pairs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The run of the colour model ("trained"), two untrained runs (their difference is noise), and an untrained
    older run whose split lacks ``HELD_BACK`` of the test images."""
    import keras

    root = tmp_path_factory.mktemp("compare")
    trained = write_run(root)
    keras.utils.set_random_seed(1)
    untrained = copy_run(trained, root / "untrained", tiny_model())
    older = copy_run(untrained, root / "older", keras.saving.load_model(untrained / "best.keras"))
    drop_test_images(older, HELD_BACK)
    keras.utils.set_random_seed(2)
    other = copy_run(trained, root / "other", tiny_model())
    return {"trained": trained, "untrained": untrained, "older": older, "other": other}


def test_a_real_gain_is_better_and_the_reverse_is_worse(pairs: dict[str, Path]) -> None:
    result = compare_paths(pairs["trained"], pairs["older"])
    assert result.verdict == BETTER, result.summary()
    assert result.overall.paired.high_pp < 0 and result.overall.new_accuracy > result.overall.old_accuracy
    assert result.new_images is not None and result.new_images.images == HELD_BACK
    assert result.old_test_images is not None
    assert result.old_test_images.images + HELD_BACK == result.overall.images
    assert set(result.per_class) == {"circle_b", "circle_r", "square_g"}
    assert sum(r.images for r in result.per_class.values()) == result.overall.images
    report = result.to_dict()
    low, high = report["overall"]["interval_pp"]
    assert 0 < low <= report["overall"]["difference_pp"] <= high
    reverse = compare_paths(pairs["untrained"], pairs["trained"])
    assert reverse.verdict == WORSE, reverse.summary()


def test_noise_is_no_resolved_difference(pairs: dict[str, Path]) -> None:
    result = compare_paths(pairs["other"], pairs["untrained"])  # two guessers
    counts = result.overall.paired.counts
    assert result.verdict == NO_DIFFERENCE, result.summary()
    low, high = -result.overall.paired.high_pp, -result.overall.paired.low_pp
    assert low < 0 < high  # an honest interval, not a zero-width one
    assert counts.right_to_wrong + counts.wrong_to_right > 0, result.summary()


def test_old_training_images_in_new_test_split_are_left_out(pairs: dict[str, Path], tmp_path: Path) -> None:
    import keras

    old = copy_run(pairs["trained"], tmp_path / "old", keras.saving.load_model(pairs["untrained"] / "best.keras"))
    split = Split.load(old / "split.json")
    moved = split.subsets["test"][:3]
    split.subsets["train"] += moved
    split.subsets["test"] = split.subsets["test"][3:]
    split.save(old / "split.json")
    result = compare_paths(pairs["trained"], old)
    assert result.excluded_trained_by_old == 3
    assert result.overall.images == len(Split.load(pairs["trained"] / "split.json").subsets["test"]) - 3


def test_cli_prints_the_verdict_and_writes_the_report(pairs: dict[str, Path], tmp_path: Path,
                                                      monkeypatch, capsys) -> None:
    out = tmp_path / "cmp.json"
    code, text = run_cli(monkeypatch, capsys, "compare", str(pairs["trained"]), str(pairs["older"]),
                         "--json", str(out))
    assert code == 0, text
    assert "new since OLD" in text and "OLD's test images" in text and "better: NEW" in text
    report = load_comparison(out)
    assert report["verdict"] == BETTER and report["new_images"]["images"] == HELD_BACK
    assert report["new"]["kind"] == "run" and len(report["old"]["sha256"]) == 64


def test_a_class_only_new_knows_is_reported_apart(pairs: dict[str, Path], tmp_path: Path) -> None:
    from edgecls.data.split import prepare_split

    data = write_image_folder(tmp_path / "images", {"circle_b": 10, "circle_r": 10, "square_g": 10,
                                                    "square_y": 10}, size=SIZE)
    new = tmp_path / "new"
    prepare_split(data, new)
    tiny_model(classes=4).save(new / "best.keras")
    result = compare_paths(new, pairs["trained"])
    assert result.classes == ["circle_b", "circle_r", "square_g"]
    assert list(result.new_only_classes) == ["square_y"]
    assert result.new_only_classes["square_y"]["images"] >= 1
    assert result.new_images is not None  # the new folder's files are not in OLD's split
    with pytest.raises(ModelError, match="does not know class.*square_y"):
        compare_paths(pairs["trained"], new)  # NEW would forget a class OLD knows


def test_bad_input_is_one_line_exit_2(pairs: dict[str, Path], tmp_path: Path, monkeypatch, capsys) -> None:
    junk = tmp_path / "run" / "export" / "model.tflite"
    junk.parent.mkdir(parents=True)
    for name in ("split.json", "labels.txt"):
        shutil.copy(pairs["trained"] / name, tmp_path / "run" / name)
    junk.write_bytes(b"not a model at all")
    no_test = tmp_path / "no_test"
    shutil.copytree(pairs["trained"], no_test, ignore=shutil.ignore_patterns("saved_model"))
    split = Split.load(no_test / "split.json")
    split.subsets["test"] = []
    split.save(no_test / "split.json")
    from edgecls.data.split import prepare_split

    four = tmp_path / "four"  # a run of four classes: the three-class model cannot replace it
    prepare_split(write_image_folder(tmp_path / "four_images", {"circle_b": 4, "circle_r": 4, "square_g": 4,
                                                                "square_y": 4}, size=SIZE), four)
    tiny_model(classes=4).save(four / "best.keras")
    cases = [((str(junk), str(pairs["trained"])), "model.tflite"),
             ((str(pairs["trained"]), str(four)), "does not know class(es) square_y"),
             ((str(tmp_path / "notes.txt"), str(pairs["trained"])), "is not a run directory or a model file"),
             ((str(no_test), str(pairs["trained"])), "has no test split")]
    (tmp_path / "notes.txt").write_text("hello")
    for args, message in cases:
        code, text = run_cli(monkeypatch, capsys, "compare", *args)
        assert code == 2 and message in text and "Traceback" not in text, text
    with pytest.raises(DataError):
        compare_paths(no_test, pairs["trained"])


def test_an_exported_artifact_is_compared_through_the_runtime(pairs: dict[str, Path], tmp_path: Path) -> None:
    from edgecls.export.pipeline import ExportConfig, export_run

    run = tmp_path / "run"
    shutil.copytree(pairs["trained"], run, ignore=shutil.ignore_patterns("saved_model", "export"))
    export_run(run, ExportConfig(out=run / "export", formats=["onnx"], precisions=["fp32"]))
    artifact = next((run / "export").glob("*.onnx"))
    result = compare_paths(artifact, pairs["untrained"])
    assert result.new.kind == "artifact" and result.verdict == BETTER
    same = compare_paths(artifact, pairs["trained"])
    assert same.overall.paired.counts.right_to_wrong + same.overall.paired.counts.wrong_to_right == 0
    assert json.loads(json.dumps(same.to_dict()))["verdict"] == NO_DIFFERENCE


# deploy over an older model: the judgement deploy makes before it changes the device


def _record_of(model: Path) -> dict:
    """The device's deployed.json after ``model`` was deployed (first deploy)."""
    from edgecls.remote.replacement import judge_replacement

    first = judge_replacement(model, None)
    assert not first.replaces and first.verdict is None
    return first.record(model)


def test_deploy_refuses_a_worse_model_unless_forced(pairs: dict[str, Path]) -> None:
    from edgecls.errors import EdgeclsError
    from edgecls.remote.replacement import judge_replacement

    good, bad = pairs["trained"] / "best.keras", pairs["untrained"] / "best.keras"
    record = _record_of(good)
    assert record["run"] == str(pairs["trained"].resolve()) and record["replaced"] is None
    with pytest.raises(EdgeclsError, match="refused: best.keras is worse.*--force") as refused:
        judge_replacement(bad, record)
    assert "worse: NEW" in refused.value.message
    forced = judge_replacement(bad, record, force=True)
    new_record = forced.record(bad)
    assert new_record["replaced"]["sha256"] == record["sha256"] and new_record["sha256"] != record["sha256"]
    assert new_record["comparison"]["verdict"] == WORSE and new_record["comparison"]["forced"]
    better = judge_replacement(good, new_record)  # and back: the trained model replaces the guesser
    assert better.verdict == BETTER and better.record(good)["replaced"]["run"] == str(pairs["untrained"].resolve())


def test_deploy_reads_a_saved_comparison_of_the_same_models_only(pairs: dict[str, Path], tmp_path: Path,
                                                                 monkeypatch, capsys) -> None:
    from edgecls.errors import EdgeclsError
    from edgecls.remote.replacement import judge_replacement

    good, bad = pairs["trained"] / "best.keras", pairs["untrained"] / "best.keras"
    report = tmp_path / "worse.json"
    code, text = run_cli(monkeypatch, capsys, "compare", str(pairs["untrained"]), str(pairs["trained"]),
                         "--json", str(report))
    assert code == 0, text
    moved = {**_record_of(good), "source": str(tmp_path / "gone.onnx"), "run": None}  # nothing left here
    with pytest.raises(EdgeclsError, match="refused"):
        judge_replacement(bad, moved, comparison=report)  # the saved report decides
    unjudged = judge_replacement(bad, moved)
    assert unjudged.verdict is None and unjudged.summary.startswith("not compared")
    with pytest.raises(EdgeclsError, match="of other models"):
        judge_replacement(pairs["other"] / "best.keras", moved, comparison=report)


def test_compare_runs_through_the_api_is_the_cli_report_and_renders(pairs: dict[str, Path], tmp_path: Path,
                                                                      monkeypatch, capsys) -> None:
    import edgecls

    result = edgecls.compare_runs(pairs["trained"], pairs["older"], json_path=tmp_path / "api.json")
    assert result.verdict == BETTER and result.summary().startswith("better: NEW")
    assert result.to_dict() == load_comparison(tmp_path / "api.json") == json.loads(json.dumps(result.to_dict()))
    assert [row[0] for row in result.rows()[:3]] == ["all held-out", "new since OLD", "OLD's test images"]
    assert result.rows()[1][1] == str(HELD_BACK) and set(result.per_class) == {"circle_b", "circle_r", "square_g"}
    page = result._repr_html_()
    assert "<table" in page and "new since OLD" in page and "better: NEW" in page
    with pytest.raises(ModelError) as error:
        edgecls.compare_runs(tmp_path / "missing", pairs["trained"], json_path=tmp_path / "never.json")
    code, text = run_cli(monkeypatch, capsys, "compare", str(tmp_path / "missing"), str(pairs["trained"]))
    assert code == 2 and text.splitlines()[0] == f"error: {error.value.message}"
    assert not (tmp_path / "never.json").exists()
