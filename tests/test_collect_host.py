"""`edgecls collect --host`: frames pulled from real sshd "devices" (tests/sshd.py) into an inbox.

A device's frames are made by the real ``Collector`` (``run --collect``'s writer). One device
has a ``tar`` that cuts its output where a test says (a file in its home): the stream ends
mid-frame as when a connection drops.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
from helpers.cli import run_cli
from helpers.collect import feed, scene
from helpers.sshd import SshLab, free_port, missing_tools

from edgecls.live.collect import Collector, CollectRules
from edgecls.remote.inbox import LOG_NAME, content_name

UNSURE = (0.4, 0.35, 0.25)
pytestmark = pytest.mark.skipif(missing_tools() is not None, reason=str(missing_tools()))

CUTTING_TAR = """#!/bin/sh
# tar whose output stops after $HOME/cut bytes when that file exists (a dropped connection)
if [ -f "$HOME/cut" ]; then exec {tar} "$@" | head -c "$(cat "$HOME/cut")"; fi
exec {tar} "$@"
"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("ssh")
    lab = SshLab(root)
    bin_dir = root / "cutting-bin"
    bin_dir.mkdir()
    (bin_dir / "tar").write_text(CUTTING_TAR.format(tar=shutil.which("tar")))
    (bin_dir / "tar").chmod(0o755)
    try:
        try:
            lab.start("cam1")
            lab.start("cam2", env={"PATH": f"{bin_dir}:{os.environ['PATH']}"})
        except RuntimeError as exc:
            pytest.skip(f"sshd could not start here: {exc}")
        yield lab
    finally:
        lab.stop()


@pytest.fixture
def cli(lab: SshLab, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    """Runs `edgecls collect ARGS` in-process against the lab's hosts: (exit code, output)."""
    monkeypatch.setenv("EDGECLS_SSH_CONFIG", str(lab.config))
    return lambda *args: run_cli(monkeypatch, capsys, "collect", *args)


def device_frames(folder: Path, seeds: list[int]) -> list[Path]:
    """Frames kept on a device by the real collector, one per seed; their JPEGs, oldest first."""
    feed(Collector(folder, CollectRules(below=0.5), source="camera 0"), [(scene(s), UNSURE) for s in seeds])
    return sorted(folder.glob("*.jpg"))


def cut_inside(jpegs: list[Path], index: int) -> int:
    """Bytes of the device's tar stream up to the middle of the ``index``-th JPEG."""
    def member(path: Path) -> int:
        return 512 + -(-path.stat().st_size // 512) * 512
    before = sum(member(j) + member(j.with_suffix(".json")) for j in jpegs[:index])
    return before + 512 + jpegs[index].stat().st_size // 2


def test_collect_from_two_hosts_imports_intact_frames_once_and_removes_only_those(
        lab: SshLab, cli, tmp_path: Path) -> None:
    cam1, cam2 = (server.home / "frames" for server in lab.servers)
    first = device_frames(cam1, [1, 2, 3])
    second = device_frames(cam2, [4, 5, 6, 7])
    shutil.copy(first[0], second[0])  # the same picture on both devices: one inbox item
    (lab.servers[1].home / "cut").write_text(str(cut_inside(second, 2)))
    inbox, closed = tmp_path / "inbox", f"127.0.0.1:{free_port()}"
    names = [content_name(j.read_bytes()) for j in [*first, *second]]

    code, out = cli("--host", lab.servers[0].spec, "--host", "device-1", "--host", closed, "--into", str(inbox),
                    "--from", "frames")
    assert code == 1, out  # one host unreachable
    lines = dict(line.split(": passed: ") for line in out.splitlines() if ": passed: " in line)
    assert lines[lab.servers[0].spec].endswith("; removed 3 from the device")
    assert lines["device-1"].endswith(", 2 did not arrive intact (left on the device for the next pull); "
                                      "removed 2 from the device")
    counts = [re.match(r"(\d+) new frames?(?:, (\d) already in the inbox)?", text).groups()
              for text in lines.values()]  # which host brings the shared frame first varies
    assert sum(int(new) for new, _ in counts) == 4 and sum(int(dup or 0) for _, dup in counts) == 1
    assert f"{closed}: unreachable: ssh: connect to host" in out
    assert sorted(cam1.iterdir()) == []
    left = sorted(p.name for p in cam2.iterdir())
    assert left == sorted(f"{j.stem}.{ext}" for j in second[2:] for ext in ("jpg", "json"))
    assert sorted(p.stem for p in inbox.glob("*.jpg")) == sorted(names[:3] + names[4:5])
    sidecar = json.loads((inbox / f"{names[4]}.json").read_text())
    assert sidecar["topk"][0] == ["cat", 0.4] and sidecar["source"] == "camera 0"
    assert sidecar["collected"]["host"] == "device-1"
    assert sidecar["collected"]["device_file"].startswith("frames/")

    (lab.servers[1].home / "cut").unlink()  # the connection holds this time
    code, out = cli("--host", "device-1", "--into", str(inbox), "--from", "frames", "--keep-on-device")
    assert (code, out.strip()) == (0, "device-1: passed: 2 new frames")
    assert len(list(inbox.glob("*.jpg"))) == 6 and len(list(cam2.glob("*.jpg"))) == 2  # kept there
    log = [json.loads(line) for line in (inbox / LOG_NAME).read_text().splitlines()]
    assert len(log) == 6 and {entry["host"] for entry in log} == {lab.servers[0].spec, "device-1"}
    assert "2 already in the inbox" in cli("--host", "device-1", "--into", str(inbox), "--from", "frames")[1]
    assert list(cam2.glob("*")) == []  # intact duplicates are removed from the device too


def test_a_missing_device_folder_is_that_host_failing_with_a_hint(cli, tmp_path: Path) -> None:
    code, out = cli("--host", "device-0", "--into", str(tmp_path / "inbox"), "--from", "nowhere")
    assert code == 1 and "device-0: failed: no folder nowhere on the device" in out
    assert "hint: pass the folder given to `edgecls run --collect` there with --from" in out


def test_an_inbox_that_is_a_file_is_one_line_and_exit_code_2(cli, tmp_path: Path) -> None:
    (tmp_path / "inbox").write_text("not a folder")
    code, out = cli("--host", "device-0", "--into", str(tmp_path / "inbox"))
    assert (code, out.splitlines()[0]) == (2, f"error: --into {tmp_path / 'inbox'} is a file")
    assert (tmp_path / "inbox").read_text() == "not a folder"


def test_collect_through_the_api_gives_each_host_its_status_and_draws_progress_only_when_asked(
        lab: SshLab, cli, tmp_path: Path, monkeypatch, capsys) -> None:
    import edgecls

    device_frames(lab.servers[0].home / "api-frames", [21, 22])
    closed, inbox = f"127.0.0.1:{free_port()}", tmp_path / "inbox"
    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # rich draws as on a terminal
    result = edgecls.collect([lab.servers[0].spec, closed], into=inbox, device_dir="api-frames", progress=False)
    assert capsys.readouterr() == ("", "")
    assert not result.passed and [o.status for o in result.outcomes] == ["passed", "unreachable"]
    rows = result.to_dict()["hosts"]
    assert rows[0]["new"] == 2 and rows[0]["removed"] == 2 and "Connection refused" in rows[1]["reason"]
    html = result._repr_html_()
    assert "<tr class='failed'>" in html and "2 new frames; removed 2 from the device" in html

    code, drawn = cli("--host", lab.servers[0].spec, "--into", str(inbox), "--from", "api-frames")
    assert code == 0 and "0:00:0" in drawn  # the host's spinner line, with its elapsed time
    code, quiet = cli("--host", lab.servers[0].spec, "--into", str(inbox), "--from", "api-frames", "--no-progress")
    assert (code, quiet.strip()) == (0, f"{lab.servers[0].spec}: passed: no frames on the device")
    with pytest.raises(edgecls.ConfigError) as twice:
        edgecls.collect([closed, closed], into=inbox)
    assert twice.value.message in cli("--host", closed, "--host", closed, "--into", str(inbox))[1]
