"""Running the real command line in-process."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest


def run_cli(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    """Runs the real CLI entry point in-process; returns (exit code, stdout + stderr)."""
    from edgecls.cli import main

    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.setattr(sys, "argv", ["edgecls", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    captured = capsys.readouterr()
    return int(exit_info.value.code or 0), captured.out + captured.err


def edgecls(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``python -m edgecls ARGS`` run in this process, for tests where a fresh process is
    not the point: the same entry point, exit code and separate stdout/stderr as
    ``subprocess.run([sys.executable, "-m", "edgecls", *args], capture_output=True, text=True)``.
    ``env`` adds variables for the call only."""
    from edgecls.cli import main

    out, err = io.StringIO(), io.StringIO()
    saved_env, saved_argv, saved_cwd = dict(os.environ), sys.argv, os.getcwd()
    code: int | str | None = 0
    try:
        os.environ.update(env or {})
        sys.argv = ["edgecls", *args]
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main()
            except SystemExit as exit_info:
                code = exit_info.code
    finally:
        os.chdir(saved_cwd)
        sys.argv = saved_argv
        os.environ.clear()
        os.environ.update(saved_env)
    if isinstance(code, str):  # as the interpreter does on exit
        err.write(code + "\n")
    returncode = code if isinstance(code, int) else (0 if code is None else 1)
    return subprocess.CompletedProcess(["edgecls", *args], returncode, out.getvalue(), err.getvalue())
