"""Apply a target profile (``targets/*.yaml``, see ``edgecls.runtime.targets``) to a bench.

The profile's backend options (threads, OpenVINO device, ONNX Runtime execution
providers and their options) fill every option the user did not give (``edgecls.runtime.
targets.apply``); the profile itself is recorded with the machine so a report shows what
was applied.
"""

from __future__ import annotations

from edgecls.bench.runner import BenchOptions
from edgecls.runtime.targets import apply, load_target

_RECORDED = ("name", "format", "precision", "backend", "device", "threads", "execution_providers")


def apply_target(options: BenchOptions, threads_given: bool) -> None:
    """Fills unset options from ``options.target``'s profile.

    Raises:
        ConfigError: no profile of that name exists.
    """
    if not options.target:
        return
    target = load_target(options.target)
    chosen = apply(target, threads=options.threads if threads_given else None, device=options.device or None,
                   providers=options.providers or None,
                   provider_options=options.extra.get("provider_options"))
    if chosen["threads"] is not None:
        options.threads = chosen["threads"] if threads_given else [chosen["threads"]]
    options.device, options.providers = chosen["device"], chosen["providers"]
    if chosen["provider_options"]:
        options.extra = {**options.extra, "provider_options": chosen["provider_options"]}
    options.target = target.name
    options.target_profile = {key: getattr(target, key) for key in _RECORDED}
