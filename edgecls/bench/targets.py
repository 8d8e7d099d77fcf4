"""Apply a target profile's backend options (threads, device, providers) to a bench.

Target profiles (``targets/*.yaml``) belong to the runtime; bench records the target
name with every result and takes the profile's backend options for any option the
user did not give. Without a profile loader or a profile of that name, only the name
is recorded (a bench on another machine may carry any label).
"""

from __future__ import annotations

import importlib
from typing import Any

from edgecls.bench.runner import BenchOptions

_LOADERS = (("edgecls.runtime.targets", "load_target"), ("edgecls.targets", "load_target"))


def apply_target(options: BenchOptions, threads_given: bool) -> dict[str, Any] | None:
    """Fills unset options from the target profile; returns the profile's fields or None."""
    if not options.target:
        return None
    profile = _load_profile(options.target)
    if profile is None:
        return None
    fields = profile if isinstance(profile, dict) else vars(profile)
    threads = fields.get("threads")
    if not threads_given and isinstance(threads, int):
        options.threads = [threads]
    if options.device is None and isinstance(fields.get("device"), str):
        options.device = fields["device"]
    if options.providers is None and isinstance(fields.get("providers"), list):
        options.providers = list(fields["providers"])
    return fields


def _load_profile(name: str) -> Any:
    for module_name, function in _LOADERS:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        loader = getattr(module, function, None)
        if loader is None:
            continue
        try:
            return loader(name)
        except Exception:  # an unknown name is only a label here; see module docstring
            return None
    return None
