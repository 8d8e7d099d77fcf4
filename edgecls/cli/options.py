"""Typer options whose help text and default come from a config dataclass field (see
``edgecls.config.option``): one source for the library, the Python API and the CLI."""

from __future__ import annotations

from typing import Any

import typer

from edgecls.config import field_default, field_help

NO_PROGRESS_HELP = "Do not draw progress bars (they are drawn only on a terminal anyway)."


def config_option(cls: type, name: str, *flags: str, unset: bool = False, **kwargs: Any) -> Any:
    """``typer.Option`` for field ``name`` of ``cls``.

    A list default is shown comma-separated (the option takes text). With ``unset`` the
    option's own default is None ("not given": a config file or a resumed run may set the
    value) and the field's default is named at the end of the help instead.
    """
    default, text = field_default(cls, name), field_help(cls, name)
    if isinstance(default, list):
        default = ",".join(map(str, default))
    if unset:
        text += "" if default in (None, False) or "Default:" in text else f" Default: {default}."
        default = None
    return typer.Option(default, *flags, help=text, **kwargs)
