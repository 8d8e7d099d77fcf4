"""`edgecls` commands for the bench stage."""

from __future__ import annotations

from edgecls.cli.app import app  # noqa: F401
