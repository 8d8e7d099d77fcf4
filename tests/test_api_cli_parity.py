"""The CLI is a thin layer over the Python API: each option of ``train``, ``evaluate``,
``export``, ``prune``, ``bench``, ``report``, ``data check``, ``data digits``, ``explain``,
``run``, ``deploy``, ``collect``, ``inspect``, ``targets``, ``models``, ``compare``, ``review``
and ``tune`` (every command: a test walks the app) is a parameter
of the API function (or functions, or a field of the config it fills) of the same name,
with the same default, and an option backed by a config field shows that field's help text
(one source: ``edgecls.config.option``)."""

from __future__ import annotations

import dataclasses
import inspect

import pytest
import typer.main

from edgecls.api.benching import benchmark, report
from edgecls.api.catalog import list_models, list_targets, show_target
from edgecls.api.comparing import compare_runs
from edgecls.api.data import check_data, write_digits
from edgecls.api.devices import collect, deploy
from edgecls.api.exporting import export_run_dir
from edgecls.api.pruning import prune_run_dir
from edgecls.api.explaining import explain_images
from edgecls.api.inspecting import inspect_model
from edgecls.api.reviewing import review_inbox, undo_label
from edgecls.api.live import run_live
from edgecls.api.run import Run, evaluate_run_dir
from edgecls.api.tuning import tune_model
from edgecls.bench.runner import BenchOptions
from edgecls.cli import app
from edgecls.config import field_default, field_help
from edgecls.export.pipeline import ExportConfig
from edgecls.explain.occlusion import OcclusionOptions
from edgecls.explain.rise import RiseOptions
from edgecls.optimize.prune import PruneConfig
from edgecls.optimize.structured import StructuredConfig
from edgecls.train.config import TrainConfig
from edgecls.tune.options import TuneOptions

# command path -> (API function, or the functions it maps onto together, the config
# dataclasses whose fields it also takes)
PAIRS = {
    ("train",): (Run.train, (TrainConfig,)),
    ("export",): (export_run_dir, (ExportConfig,)),
    ("bench",): (benchmark, (BenchOptions,)),
    ("report",): (report, ()),
    ("data", "check"): (check_data, ()),
    ("data", "digits"): (write_digits, ()),
    ("prune",): (prune_run_dir, (PruneConfig, StructuredConfig)),
    ("evaluate",): (evaluate_run_dir, ()),
    ("explain",): (explain_images, (RiseOptions, OcclusionOptions)),
    ("compare",): (compare_runs, ()),
    ("inspect",): (inspect_model, ()),
    ("models", "list"): (list_models, ()),
    ("review",): ((review_inbox, undo_label), ()),
    ("targets", "list"): (list_targets, ()),
    ("targets", "show"): (show_target, ()),
    ("run",): (run_live, ()),
    ("deploy",): (deploy, ()),
    ("collect",): (collect, ()),
    ("tune",): (tune_model, (TuneOptions,)),
}
# The CLI's --no-progress is the API's progress=False (its default True draws bars only on
# a terminal or in a notebook).
CLI_TO_API = {"no_progress": "progress"}
# review's wait=False returns the running page at once, for a notebook; the command waits.
API_ONLY = {"wait"}
# Options that only choose how the command prints what the API returns (inspect --json:
# the result's to_dict()).
RENDERING_ONLY = {("inspect",): {"as_json"}}
# Defaults that differ on purpose: bench on the command line writes ./bench.json, the
# API returns the result and writes a file only when asked.
OWN_DEFAULTS = {("bench",): {"json_path"}}


def _command(path: tuple[str, ...]):
    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]
    return command


def _leaf_commands(command, path: tuple[str, ...] = ()):
    """Every command path of the app that runs something (groups excluded)."""
    subcommands = getattr(command, "commands", None)
    if not subcommands:
        yield path
    for name, sub in (subcommands or {}).items():
        yield from _leaf_commands(sub, (*path, name))


def test_every_command_has_its_api_function() -> None:
    """A new command without an API twin (or a renamed one) fails here, not in review."""
    commands = set(_leaf_commands(typer.main.get_command(app)))
    assert commands - set(PAIRS) == set(), "commands the API does not mirror"
    assert set(PAIRS) - commands == set(), "paired commands the CLI no longer has"


def _api_params(functions) -> dict[str, inspect.Parameter]:
    """Parameter name -> parameter, over one function or a tuple of them (one default each)."""
    params: dict[str, inspect.Parameter] = {}
    for function in functions if isinstance(functions, tuple) else (functions,):
        for name, p in inspect.signature(function).parameters.items():
            if name not in ("cls", "self") and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
                assert params.get(name, p).default == p.default, f"{name}: two defaults"
                params[name] = p
    return params


def _fields(configs) -> dict[str, tuple[type, dataclasses.Field]]:
    """Field name -> (its config, the field), over ``configs``."""
    return {f.name: (config, f) for config in configs for f in dataclasses.fields(config)}


@pytest.mark.parametrize("path", list(PAIRS), ids=" ".join)
def test_every_option_is_an_api_parameter_or_config_field(path: tuple[str, ...]) -> None:
    function, configs = PAIRS[path]
    api, fields = _api_params(function), _fields(configs)
    cli = {CLI_TO_API.get(p.name, p.name) for p in _command(path).params} - RENDERING_ONLY.get(path, set())
    extra = cli - set(api) - set(fields)
    assert not extra, f"CLI options the API does not take: {extra}"
    assert not set(api) - cli - API_ONLY, f"API parameters the CLI does not offer: {set(api) - cli - API_ONLY}"


@pytest.mark.parametrize("path", list(PAIRS), ids=" ".join)
def test_defaults_and_help_have_one_source(path: tuple[str, ...]) -> None:
    function, configs = PAIRS[path]
    api, fields = _api_params(function), _fields(configs)
    for param in _command(path).params:
        name = CLI_TO_API.get(param.name, param.name)
        if name in fields and "help" in fields[name][1].metadata:
            _check_config_option(fields[name][0], name, param)
        elif name in fields and param.default is not None:
            default = field_default(fields[name][0], name)
            assert param.default == default, f"--{name}: CLI default {param.default!r}, config {default!r}"
        elif name == "progress":
            assert param.default is False and api[name].default is True, "--no-progress is progress=False"
        elif name in api and name not in OWN_DEFAULTS.get(path, set()):
            expected = api[name].default
            if expected is not inspect.Parameter.empty:
                assert param.default == expected, f"--{name}: CLI default {param.default!r}, API {expected!r}"
        if name in api and name in fields:
            assert api[name].default is None, f"{name}: the API's None means the config's default"


def _check_config_option(config, name: str, param) -> None:
    default, text = field_default(config, name), field_help(config, name)
    assert param.help.startswith(text), f"--{name}: help is not the field's"
    if param.default is None and default not in (None, False) and not isinstance(default, list):
        assert "Default:" in param.help, f"--{name}: an unset option names the field's default"
    elif param.default is not None:
        shown = ",".join(map(str, default)) if isinstance(default, list) else default
        assert param.default == shown, f"--{name}: CLI default {param.default!r}, config {shown!r}"


def test_the_max_drop_default_and_help_come_from_export_config(monkeypatch) -> None:
    """The case the issue names: --max-drop restated 1.0 by hand."""
    option = next(p for p in _command(("export",)).params if p.name == "max_drop")
    assert option.default == ExportConfig(out=None).max_drop
    assert option.help == field_help(ExportConfig, "max_drop")
