"""The CLI shell: help texts, user errors, missing optional packages."""

from __future__ import annotations

import subprocess
import sys

import pytest

import edgecls.cli as cli

COMMANDS = [["train"], ["evaluate"], ["export"], ["prune"], ["run"], ["bench"], ["report"],
            ["data", "check"], ["data", "digits"], ["models", "list"], ["targets", "list"],
            ["targets", "show"]]


def test_every_command_explains_itself():
    from typer.testing import CliRunner

    runner = CliRunner()
    top = runner.invoke(cli.app, ["--help"])
    assert top.exit_code == 0 and "INT8" in top.output
    for command in COMMANDS:
        result = runner.invoke(cli.app, [*command, "--help"])
        assert result.exit_code == 0, (command, result.output)
        assert "Usage" in result.output and len(result.output) > 300, command


def test_missing_optional_package_names_the_extra(monkeypatch, capsys):
    def needs_tensorflow():
        raise ModuleNotFoundError("No module named 'tensorflow'", name="tensorflow")

    monkeypatch.setattr(cli, "app", needs_tensorflow)
    monkeypatch.setattr(sys, "argv", ["edgecls", "report", "x.json"])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "tensorflow" in err and 'edgecls[train]' in err and "Traceback" not in err


def test_tensorflow_start_up_chatter_is_muted(tmp_path):
    result = subprocess.run([sys.executable, "-m", "edgecls", "evaluate", str(tmp_path / "missing")],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.startswith("error:"), result.stderr
    assert "I0000" not in result.stderr and "Traceback" not in result.stderr


def test_the_cli_starts_on_a_device_without_tensorflow():
    """A Pi with only a runtime extra: every command's help, and `run`/`bench`/`inspect`, must
    start with TensorFlow and Keras unimportable (a module-level Keras import in the training
    stack once broke `edgecls run` on devices)."""
    code = ("import sys\n"
            "for name in ('tensorflow', 'keras', 'tf_keras'):\n"
            "    sys.modules[name] = None  # import raises ModuleNotFoundError\n"
            "from typer.testing import CliRunner\n"
            "import edgecls.cli as cli\n"
            f"for command in {COMMANDS!r}:\n"
            "    result = CliRunner().invoke(cli.app, [*command, '--help'])\n"
            "    assert result.exit_code == 0, (command, result.output, result.exception)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
