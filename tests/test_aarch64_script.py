"""Fast checks of scripts/check-aarch64.sh: its guards, dry run and label comparer.

No emulation runs here. The preconditions (root, binfmt_misc, network) are simulated with
the script's EDGECLS_AARCH64_* hooks and a local HTTP server; every test also checks that
a refused run leaves nothing behind. The full emulated check is opt-in:
``EDGECLS_AARCH64_FULL=1 pytest -m slow tests/test_aarch64_script.py`` (as root, >10 min).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from helpers.images import write_color_folder
from helpers.sshd import missing_tools
from helpers.tiny_models import TinyNet, make_onnx, tiny_metadata

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "check-aarch64.sh"
COMPARER = REPO / "scripts" / "aarch64" / "compare_jsonl.py"
SSH_CHECK = REPO / "scripts" / "aarch64" / "ssh-check.sh"
CLOSED_PORT_URL = "http://127.0.0.1:9/"  # the discard port: connection refused at once


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def registry(tmp_path: Path):
    """A local HTTP server standing in for PyPI and a Debian mirror; yields its base URL."""
    served = tmp_path / "served"
    (served / "debian" / "dists" / "bookworm").mkdir(parents=True)
    (served / "debian" / "dists" / "bookworm" / "Release").write_text("Suite: bookworm\n")
    (served / "simple" / "pip").mkdir(parents=True)
    (served / "simple" / "pip" / "index.html").write_text("<html></html>")
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(served)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def proc_filesystems(tmp_path: Path) -> Path:
    """A /proc/filesystems copy that offers binfmt_misc."""
    path = tmp_path / "filesystems"
    path.write_text("nodev\tsysfs\nnodev\tproc\nnodev\tbinfmt_misc\n\text4\n")
    return path


def run_script(tmp_path: Path, *args: str, **hooks: str) -> subprocess.CompletedProcess[str]:
    """Runs the script with its cache under ``tmp_path`` and the given EDGECLS_AARCH64_* hooks."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGECLS_AARCH64_")}
    env["EDGECLS_AARCH64_CACHE"] = str(tmp_path / "cache")
    env["EDGECLS_AARCH64_HOST_PYTHON"] = sys.executable
    env.update({f"EDGECLS_AARCH64_{k.upper()}": v for k, v in hooks.items()})
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True,
                          env=env, timeout=120)


def assert_refused(result: subprocess.CompletedProcess[str], tmp_path: Path, *phrases: str) -> None:
    """Exit code 2, a one-problem message with a hint, no traceback, nothing created."""
    assert result.returncode == 2, result.stderr
    for phrase in phrases:
        assert phrase in result.stderr
    assert "hint:" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "cache").exists()


def test_script_syntax_is_valid() -> None:
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)


def test_help_lists_the_options(tmp_path: Path) -> None:
    result = run_script(tmp_path, "--help")
    assert result.returncode == 0
    for option in ("--python", "--keep", "--model", "--dry-run", "--root-only", "--tie-margin",
                   "--run-openvino", "--no-ssh"):
        assert option in result.stdout


@pytest.mark.parametrize("args, phrase", [
    (["--bogus"], "unknown option '--bogus'"),
    (["--python", "3.12"], "unsupported Python '3.12'"),
    (["--python"], "--python needs a value"),
    (["--images", "0"], "--images needs a positive integer"),
    (["--tie-margin", "1.5"], "--tie-margin needs a number in [0, 1)"),
    (["--model", "/nonexistent/model.tflite"], "does not exist"),
])
def test_bad_usage_is_refused(tmp_path: Path, args: list[str], phrase: str) -> None:
    assert_refused(run_script(tmp_path, *args, uid="0"), tmp_path, phrase)


def test_refuses_without_root(tmp_path: Path) -> None:
    result = run_script(tmp_path, uid="1000")
    assert_refused(result, tmp_path, "not running as root (uid 1000)", "sudo")


def test_refuses_without_binfmt_support(tmp_path: Path) -> None:
    no_binfmt = tmp_path / "filesystems"
    no_binfmt.write_text("nodev\tsysfs\nnodev\tproc\n\text4\n")
    result = run_script(tmp_path, uid="0", proc_filesystems=str(no_binfmt))
    assert_refused(result, tmp_path, "no binfmt support", "binfmt_misc")


def test_refuses_without_pypi(tmp_path: Path, proc_filesystems: Path) -> None:
    result = run_script(tmp_path, uid="0", proc_filesystems=str(proc_filesystems),
                        pypi_url=CLOSED_PORT_URL)
    assert_refused(result, tmp_path, "no network to the Python package registry", CLOSED_PORT_URL)


def test_refuses_without_debian_mirror(tmp_path: Path, proc_filesystems: Path, registry: str) -> None:
    result = run_script(tmp_path, "--mirror", "http://127.0.0.1:9/debian", uid="0",
                        proc_filesystems=str(proc_filesystems), pypi_url=f"{registry}/simple/pip/")
    assert_refused(result, tmp_path, "no network to the Debian mirror", "dists/bookworm/Release")


def test_mirror_is_checked_for_every_suite(tmp_path: Path, proc_filesystems: Path, registry: str) -> None:
    # the stand-in mirror serves bookworm only, so Python 3.13 (trixie) must be refused
    result = run_script(tmp_path, "--python", "all", "--mirror", f"{registry}/debian", uid="0",
                        proc_filesystems=str(proc_filesystems), pypi_url=f"{registry}/simple/pip/")
    assert_refused(result, tmp_path, "dists/trixie/Release")


def test_dry_run_changes_nothing(tmp_path: Path, proc_filesystems: Path, registry: str) -> None:
    result = run_script(tmp_path, "--dry-run", "--mirror", f"{registry}/debian", uid="0",
                        proc_filesystems=str(proc_filesystems), pypi_url=f"{registry}/simple/pip/")
    assert result.returncode == 0, result.stderr
    assert "nothing was changed" in result.stderr
    assert "Python 3.11" in result.stderr
    assert not (tmp_path / "cache").exists()


def write_jsonl(path: Path, folder: str, labels: list[str],
                topk: dict[int, list[list]] | None = None) -> Path:
    """An `edgecls run --jsonl` style file: one record per image of ``folder``."""
    records = []
    for i, label in enumerate(labels):
        top = (topk or {}).get(i, [[label, 0.9], ["other", 0.05]])
        records.append({"frame": i, "label": label, "score": top[0][1], "topk": top,
                        "file": f"{folder}/img_{i}.JPEG"})
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    return path


def compare(host: Path, arm: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(COMPARER), str(host), str(arm), *args],
                          capture_output=True, text=True, timeout=60)


def test_comparer_accepts_identical_labels_from_different_folders(tmp_path: Path) -> None:
    labels = ["tench", "church", "golf ball"]
    host = write_jsonl(tmp_path / "host.jsonl", "/work/x/images", labels)
    arm = write_jsonl(tmp_path / "arm.jsonl", "/opt/edgecls-check/images", labels)
    result = compare(host, arm)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "3 100.0% 0"


def test_comparer_fails_on_a_label_difference(tmp_path: Path) -> None:
    host = write_jsonl(tmp_path / "host.jsonl", "/a", ["tench", "church", "golf ball"])
    arm = write_jsonl(tmp_path / "arm.jsonl", "/b", ["tench", "parachute", "golf ball"])
    result = compare(host, arm, "--tie-margin", "0.05")
    assert result.returncode == 1
    assert result.stdout.strip() == "3 66.7% 0"
    assert "img_1.JPEG: host 'church' 0.9 (its 'parachute' None) vs aarch64 'parachute'" in result.stderr


def test_comparer_accepts_a_top2_near_tie_only_within_the_margin(tmp_path: Path) -> None:
    host = write_jsonl(tmp_path / "host.jsonl", "/a", ["parachute", "tench"],
                       {0: [["parachute", 0.234], ["chain saw", 0.223]]})
    arm = write_jsonl(tmp_path / "arm.jsonl", "/b", ["chain saw", "tench"],
                      {0: [["chain saw", 0.250], ["parachute", 0.227]]})
    accepted = compare(host, arm, "--tie-margin", "0.05")
    assert accepted.returncode == 0, accepted.stderr
    assert accepted.stdout.strip() == "2 50.0% 1"
    assert "near tie (within 0.05, accepted): img_0.JPEG" in accepted.stderr
    assert compare(host, arm, "--tie-margin", "0.015").returncode == 1  # arm's gap is 0.023
    assert compare(host, arm).returncode == 1  # no margin: any label difference fails


def test_comparer_fails_on_a_missing_frame_or_empty_output(tmp_path: Path) -> None:
    host = write_jsonl(tmp_path / "host.jsonl", "/a", ["tench", "church"])
    arm = write_jsonl(tmp_path / "arm.jsonl", "/b", ["tench"])
    result = compare(host, arm)
    assert result.returncode == 1
    assert "img_1.JPEG: only on the host" in result.stderr
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert compare(empty, empty).returncode == 1


def test_prepare_digests_compare(tmp_path: Path, image_folder: Path) -> None:
    digest = REPO / "scripts" / "aarch64" / "prep_digest.py"
    images = image_folder / "circle_r"
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    for out in (first, second):
        subprocess.run([sys.executable, str(digest), str(images), str(out)], check=True, timeout=120)
    same = subprocess.run([sys.executable, str(digest), "--compare", str(first), str(second)],
                          capture_output=True, text=True, timeout=60)
    assert same.returncode == 0 and same.stdout.strip() == "100 100.0%"  # 20 images x 5 cases
    lines = second.read_text().splitlines()
    record = json.loads(lines[0])
    record["sha256"] = "0" * 64
    second.write_text("\n".join([json.dumps(record), *lines[1:]]) + "\n")
    differs = subprocess.run([sys.executable, str(digest), "--compare", str(first), str(second)],
                             capture_output=True, text=True, timeout=60)
    assert differs.returncode == 1
    assert "is not bit-identical" in differs.stderr


def ssh_check(tmp_path: Path, root: str, machine: str, model: Path, host_jsonl: Path,
              images: Path) -> subprocess.CompletedProcess[str]:
    """Runs the ssh step with this machine as the "device" (``root`` "/": no chroot)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "DEVICE_PYTHONPATH": str(REPO)}
    return subprocess.run(["bash", str(SSH_CHECK), root, sys.executable, str(images), str(tmp_path / "work"),
                           sys.executable, machine, str(model), str(host_jsonl), "--", str(model)],
                          capture_output=True, text=True, env=env, timeout=600)


def test_ssh_step_skips_a_root_sshd_cannot_chroot_into(tmp_path: Path) -> None:
    root = tmp_path / "open-root"
    root.mkdir(mode=0o777)
    root.chmod(0o777)
    result = ssh_check(tmp_path, str(root), "aarch64", tmp_path / "m.onnx", tmp_path / "h.jsonl", tmp_path)
    if missing_tools():
        assert result.returncode == 3 and "skipped: no ssh" in result.stdout
        return
    assert result.returncode == 3, result.stderr
    assert result.stdout.strip() == (f"ssh device|-|-|-|-|skipped: sshd refuses to chroot into {root}: a folder "
                                      "on its path is not root-owned or is group/world-writable")


@pytest.mark.slow  # three edgecls processes and two ssh sessions: about a minute when the machine is idle
@pytest.mark.skipif(missing_tools() is not None, reason=str(missing_tools()))
def test_ssh_step_benches_and_compares_labels_through_a_real_sshd(tmp_path: Path) -> None:
    images = write_color_folder(tmp_path / "colors", per_class=2) / "red"
    net = TinyNet()
    model = make_onnx(tmp_path / "tiny.onnx", net, tiny_metadata(net))
    host_jsonl = tmp_path / "host.jsonl"
    subprocess.run([sys.executable, "-m", "edgecls", "run", str(model), "--source", str(images), "--headless",
                    "--jsonl", str(host_jsonl)], check=True, capture_output=True, timeout=300,
                   env={**os.environ, "PYTHONPATH": str(REPO)})
    result = ssh_check(tmp_path, "/", platform.machine(), model, host_jsonl, images)
    assert result.returncode == 0, result.stdout + result.stderr[-2000:]
    rows = result.stdout.splitlines()
    assert rows == [f"bench --host|1 models|-|-|-|ok: 1 records, host passed, machine {platform.machine()}",
                    "run --remote tiny.onnx|-|2|100.0%|0|ok"]
    assert not (tmp_path / "work" / "ssh" / "sshd.pid").exists() or _sshd_stopped(tmp_path / "work" / "ssh")


def _sshd_stopped(folder: Path) -> bool:
    pid = int((folder / "sshd.pid").read_text())
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("EDGECLS_AARCH64_FULL") != "1" or os.geteuid() != 0,
                    reason="opt-in: EDGECLS_AARCH64_FULL=1 as root (emulated, over 10 minutes)")
def test_full_emulated_check() -> None:  # pragma: no cover - opt-in
    result = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=3600)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "RESULT: all aarch64 checks agree with the host" in result.stderr
