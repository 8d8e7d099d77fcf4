"""`edgecls review`: the session, the ledger, undo and the server's guards, over real HTTP.

The page itself in a real browser: tests/test_review_browser.py.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from helpers.cli import run_cli
from helpers.images import write_color_folder
from helpers.review import call, review_server, write_inbox

from edgecls.data.scan import scan_dataset
from edgecls.review.ledger import read_ledger
from edgecls.review.session import ReviewSession

RED_SURE, RED_TORN, BLUE_UNSURE = [["red", 0.8], ["green", 0.1]], [["red", 0.45], ["green", 0.44]], \
    [["blue", 0.4], ["red", 0.3]]


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    return write_color_folder(tmp_path / "data", per_class=2)


@pytest.fixture
def inbox(tmp_path: Path) -> tuple[Path, list[str]]:
    folder = tmp_path / "inbox"
    return folder, write_inbox(folder, [("red", RED_SURE), ("red", RED_TORN), ("blue", BLUE_UNSURE)])


def test_frames_come_uncertainty_first_and_bad_files_are_listed_and_left_alone(
        dataset: Path, inbox: tuple[Path, list[str]]) -> None:
    folder, names = inbox
    (folder / "notes.txt").write_text("not a frame")
    jpeg = (folder / names[0]).read_bytes()
    (folder / "cut.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    (folder / "empty.png").write_bytes(b"")
    (folder / "hand-made.jpg").write_bytes(jpeg[:-2] + b"\xff\xd9")  # no sidecar: no suggestion, last
    before = sorted(p.name for p in folder.iterdir())
    with review_server(folder, dataset) as server:
        status, state = call(server, "GET", "/api/state")
    assert status == 200
    assert [f["name"] for f in state["frames"]] == [names[1], names[2], names[0], "hand-made.jpg"]
    assert state["frames"][0]["topk"] == RED_TORN and state["frames"][0]["host"] == "pi@cam1"
    assert state["refused"] == {"cut.jpg": "cut short (no JPEG end marker)", "empty.png": "empty",
                                "notes.txt": "not an image"}
    assert state["classes"] == ["blue", "green", "red"]
    assert sorted(p.name for p in folder.iterdir()) == sorted([*before, ".review.lock"])


def test_a_label_moves_the_frame_under_its_content_name_with_a_ledger_line_and_undo_puts_it_back(
        dataset: Path, inbox: tuple[Path, list[str]]) -> None:
    folder, names = inbox
    with review_server(folder, dataset, who="ana") as server:
        status, answer = call(server, "POST", "/api/label", {"name": names[1], "label": "red"})
        assert status == 200 and answer["counts"]["label"] == 1
        moved = dataset / "red" / names[1]
        assert moved.is_file() and not (folder / names[1]).exists()
        assert (folder / ".labelled" / Path(names[1]).with_suffix(".json").name).is_file()
        [line] = read_ledger(dataset)
        assert {k: line[k] for k in ("action", "who", "frame", "label", "suggested", "suggested_score", "file",
                                     "host")} == {"action": "label", "who": "ana", "frame": names[1], "label": "red",
                                                  "suggested": "red", "suggested_score": 0.45,
                                                  "file": f"red/{names[1]}", "host": "pi@cam1"}
        assert line["inbox"] == str(folder.resolve()) and line["when"].endswith("+00:00")

        status, answer = call(server, "POST", "/api/undo", {})
        assert status == 200 and answer["undone"] == "label" and answer["frame"]["name"] == names[1]
        assert (folder / names[1]).is_file() and (folder / names[1]).with_suffix(".json").is_file()
        assert not moved.exists()
        assert read_ledger(dataset)[1] | {"when": None} == {
            "id": read_ledger(dataset)[1]["id"], "action": "undo", "who": "ana", "when": None, "frame": names[1],
            "undoes": line["id"], "file": f"red/{names[1]}"}
        assert call(server, "GET", "/api/state")[1]["frames"][0]["name"] == names[1]
        status, answer = call(server, "POST", "/api/undo", {})
        assert status == 409 and answer["error"] == "nothing to undo in this session"


def test_skip_and_none_of_these_keep_or_set_the_frame_aside_and_undo_reverses_both(
        dataset: Path, inbox: tuple[Path, list[str]]) -> None:
    folder, names = inbox
    with review_server(folder, dataset) as server:
        assert call(server, "POST", "/api/skip", {"name": names[1]})[0] == 200
        assert call(server, "POST", "/api/none", {"name": names[2]})[0] == 200
        assert (folder / names[1]).is_file() and (folder / ".none" / names[2]).is_file()
        assert [f["name"] for f in call(server, "GET", "/api/state")[1]["frames"]] == [names[0], names[1]]
        assert call(server, "POST", "/api/undo", {})[1]["undone"] == "none"
        assert call(server, "POST", "/api/undo", {})[1]["undone"] == "skip"
        assert [f["name"] for f in call(server, "GET", "/api/state")[1]["frames"]] == [names[1], names[2], names[0]]
    assert (folder / names[2]).is_file() and [e["action"] for e in read_ledger(dataset)] == ["none", "undo"]


def test_labels_of_a_split_dataset_go_into_train_where_training_finds_them(
        tmp_path: Path, inbox: tuple[Path, list[str]]) -> None:
    folder, names = inbox
    data = tmp_path / "split"
    for subset in ("train", "val", "test"):
        write_color_folder(data / subset, per_class=2)
    with review_server(folder, data) as server:
        call(server, "POST", "/api/label", {"name": names[2], "label": "blue"})
    scan = scan_dataset(data)
    assert data / "train" / "blue" / names[2] in scan.files["train"]["blue"] and len(scan.files["val"]["blue"]) == 2


def test_new_classes_are_plain_folder_names_and_nothing_moves_on_a_refusal(
        dataset: Path, inbox: tuple[Path, list[str]]) -> None:
    folder, names = inbox
    with review_server(folder, dataset) as server:
        for bad in ("a/b", "..", ".hidden", "", "val", "x\\y"):
            status, answer = call(server, "POST", "/api/label", {"name": names[0], "label": bad, "new": True})
            assert status == 409, bad
            assert "cannot be a folder name" in answer["error"] or "read as a dataset split" in answer["error"]
        status, answer = call(server, "POST", "/api/label", {"name": names[0], "label": "purple"})
        assert status == 409 and answer["error"] == "the dataset has no class 'purple'"
        assert sorted(p.name for p in dataset.iterdir()) == ["blue", "green", "red"]
        status, answer = call(server, "POST", "/api/label", {"name": names[0], "label": "purple", "new": True})
        assert status == 200 and answer["classes"] == ["blue", "green", "purple", "red"]
    assert (dataset / "purple" / names[0]).is_file()


def test_a_frame_the_dataset_already_holds_is_refused_not_overwritten(
        dataset: Path, inbox: tuple[Path, list[str]]) -> None:
    folder, names = inbox
    shutil.copy(folder / names[0], dataset / "green" / names[0])
    with review_server(folder, dataset) as server:
        status, answer = call(server, "POST", "/api/label", {"name": names[0], "label": "red"})
    assert status == 409 and answer["error"] == f"the dataset already has this frame (in green/{names[0]})"
    assert (folder / names[0]).is_file() and not (dataset / "red" / names[0]).exists() and not read_ledger(dataset)


def test_only_this_session_on_its_loopback_address_may_drive_the_server(
        dataset: Path, inbox: tuple[Path, list[str]]) -> None:
    folder, names = inbox
    with review_server(folder, dataset) as server:
        host = {"Host": f"127.0.0.1:{server.port}"}
        assert call(server, "GET", "/api/state", token=False)[0] == 403
        assert call(server, "GET", "/api/state", headers={"Authorization": "Bearer wrong-token"})[0] == 403
        assert call(server, "GET", f"/api/state?token={server.token}", token=False)[0] == 403  # header only
        assert call(server, "GET", "/api/state", headers={"Host": "evil.example:80"})[0] == 421  # rebinding
        assert call(server, "GET", "/", token=False)[0] == 403
        status, page = call(server, "GET", f"/?token={server.token}", token=False, headers=host)
        assert status == 200 and b"/app.js" in page
        assert call(server, "GET", f"/frame?name={names[0]}&token={server.token}", token=False)[1][:2] == b"\xff\xd8"
        assert call(server, "GET", f"/frame?name=../data/red/red_0.png&token={server.token}", token=False)[0] == 404
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        assert call(server, "POST", "/api/label", {"name": names[0], "label": "red"}, headers=form)[0] == 415
    assert (folder / names[0]).is_file()


def test_a_second_review_on_the_same_inbox_is_refused_in_one_line(
        dataset: Path, inbox: tuple[Path, list[str]], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    folder, _ = inbox
    first = ReviewSession(folder, dataset, "ana")
    try:
        code, out = run_cli(monkeypatch, capsys, "review", str(folder), "--data", str(dataset), "--no-open")
    finally:
        first.close()
    assert code == 2
    assert out.splitlines()[0].startswith(f"error: another edgecls review is labelling {folder.resolve()}")
    assert "Traceback" not in out
    ReviewSession(folder, dataset, "ana").close()  # free again once the first one ended


def test_undo_of_a_ledger_line_from_an_earlier_session_puts_the_frame_back(
        dataset: Path, inbox: tuple[Path, list[str]], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    folder, names = inbox
    with review_server(folder, dataset) as server:
        label_id = call(server, "POST", "/api/label", {"name": names[0], "label": "green"})[1]["entry"]["id"]
        none_id = call(server, "POST", "/api/none", {"name": names[1]})[1]["entry"]["id"]
    args = ("review", str(folder), "--data", str(dataset), "--no-open", "--undo")
    code, out = run_cli(monkeypatch, capsys, *args, label_id)
    assert code == 0 and out.strip() == f"undone: label green (green/{names[0]}); {names[0]} is back in {folder}"
    assert (folder / names[0]).is_file() and (folder / names[0]).with_suffix(".json").is_file()
    assert not (dataset / "green" / names[0]).exists()
    assert run_cli(monkeypatch, capsys, *args, none_id)[0] == 0 and (folder / names[1]).is_file()
    code, out = run_cli(monkeypatch, capsys, *args, label_id)
    assert code == 2 and out.splitlines()[0] == f"error: ledger line {label_id} was undone already"
    code, out = run_cli(monkeypatch, capsys, *args, "nope")
    assert code == 2 and out.startswith("error: the ledger has no label or 'none of these' line 'nope'")
    assert [e["action"] for e in read_ledger(dataset)] == ["label", "none", "undo", "undo"]


@pytest.mark.parametrize("make", ["file", "empty", "loose images"])
def test_a_folder_that_is_not_a_dataset_is_one_line(
        make: str, tmp_path: Path, inbox: tuple[Path, list[str]], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    folder, names = inbox
    data = tmp_path / "not-a-dataset"
    if make == "file":
        data.write_text("x")
    else:
        data.mkdir()
        if make == "loose images":
            shutil.copy(folder / names[0], data / "a.jpg")
    code, out = run_cli(monkeypatch, capsys, "review", str(folder), "--data", str(data), "--no-open")
    assert code == 2 and out.startswith("error: ") and "hint: " in out and "Traceback" not in out
    assert len(list(folder.glob("*.jpg"))) == 3 and not (folder / ".review.lock").exists()


@pytest.mark.slow  # imports TensorFlow and trains a tiny CNN for one epoch (~20 s)
def test_train_uses_the_labelled_frames(tmp_path: Path, inbox: tuple[Path, list[str]]) -> None:
    from typer.testing import CliRunner

    from edgecls.cli import app
    from helpers.runs import TINY  # registers the tiny CNN family

    folder, names = inbox
    data = write_color_folder(tmp_path / "colors", per_class=6)
    with review_server(folder, data) as server:
        for name, label in zip(names, ("red", "red", "blue")):
            assert call(server, "POST", "/api/label", {"name": name, "label": label})[0] == 200
    run = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", "--data", str(data), "--model", TINY, "--img-size", "32",
                                      "--epochs", "1", "--batch-size", "8", "--out", str(run), "--no-progress"])
    assert result.exit_code == 0, result.output
    split = (run / "split.json").read_text()
    assert all(name in split for name in names)


def test_review_inbox_serves_until_closed_and_undo_label_puts_the_frame_back(
        dataset: Path, inbox: tuple[Path, list[str]], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    import edgecls

    folder, names = inbox
    with edgecls.review_inbox(folder, dataset, who="ana", open_browser=False, wait=False) as page:
        status, state = call(page.server, "GET", "/api/state")
        assert status == 200 and [f["name"] for f in state["frames"]] == page.frames == [names[1], names[2], names[0]]
        label_id = call(page.server, "POST", "/api/label", {"name": names[1], "label": "red"})[1]["entry"]["id"]
        page.session.none_of_these(names[0])  # the page's decisions, from code
        assert page.counts == {"label": 1, "none": 1, "skip": 0} and page.frames == [names[2]]
        assert page.url in page._repr_html_().replace("&amp;", "&")
        with pytest.raises(edgecls.ConfigError) as error:
            edgecls.review_inbox(folder, dataset, open_browser=False, wait=False)
        code, out = run_cli(monkeypatch, capsys, "review", str(folder), "--data", str(dataset), "--no-open")
        assert code == 2 and out.splitlines()[0] == f"error: {error.value.message}"
    assert page.closed and page.to_dict()["url"] is None and "closed" in page._repr_html_()
    assert page.summary().startswith("labelled 1, none of these 1, 1 left in the inbox")
    undone = edgecls.undo_label(folder, dataset, label_id)
    assert undone.summary() == f"undone: label red (red/{names[1]}); {names[1]} is back in {folder}"
    assert (folder / names[1]).is_file() and not (dataset / "red" / names[1]).exists()
    with pytest.raises(edgecls.EdgeclsError, match=f"ledger line {label_id} was undone already"):
        edgecls.undo_label(folder, dataset, label_id)


_BLOCKING_REVIEW = """
import json, signal, sys
import edgecls
before = signal.getsignal(signal.SIGTERM)
page = edgecls.review_inbox(sys.argv[1], sys.argv[2], who="ana", open_browser=False)
print(json.dumps({"closed": page.closed, "frames": len(page.frames),
                  "handler_restored": signal.getsignal(signal.SIGTERM) is before}))
"""


def _catches(pid: int, signum: int) -> bool:
    """Whether process ``pid`` has a handler for ``signum`` (Linux: SigCgt in /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (signum - 1) & 1)
    return False


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads handlers from /proc (Linux)")
def test_review_inbox_blocks_until_stopped_and_then_frees_the_inbox(
        dataset: Path, inbox: tuple[Path, list[str]]) -> None:
    """As a service manager stops the command: SIGTERM to the process ends the session, the
    handler is restored and the inbox is free. In a process of its own: a signal sent into the
    test process, after other tests ran LiteRT and OpenVINO there, killed it with SIGSEGV in
    its sleeping main thread (only with pytest's faulthandler plugin on; not reproduced in a
    plain process)."""
    import signal
    import subprocess
    import sys
    import time

    folder, _ = inbox
    child = subprocess.Popen([sys.executable, "-c", _BLOCKING_REVIEW, str(folder), str(dataset)],
                             stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not _catches(child.pid, signal.SIGTERM) and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    child.send_signal(signal.SIGTERM)
    out, _ = child.communicate(timeout=30)
    assert child.returncode == 0, out
    assert json.loads(out.splitlines()[-1]) == {"closed": True, "frames": 3, "handler_restored": True}
    ReviewSession(folder, dataset, "bo").close()  # the inbox is free again
