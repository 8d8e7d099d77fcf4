"""Apply a target profile (``targets/*.yaml``, see ``edgecls.runtime.targets``) to a bench.

The profile's backend options (threads, OpenVINO device, ONNX Runtime execution
providers and their options) fill every option the user did not give; the profile
itself is recorded with the machine so a report shows what was applied.
"""

from __future__ import annotations

from edgecls.bench.runner import BenchOptions
from edgecls.runtime.targets import load_target

_RECORDED = ("name", "format", "precision", "backend", "device", "threads", "execution_providers")


def apply_target(options: BenchOptions, threads_given: bool) -> None:
    """Fills unset options from ``options.target``'s profile.

    Raises:
        ConfigError: no profile of that name exists.
    """
    if not options.target:
        return
    target = load_target(options.target)
    backend = target.backend_options()
    if not threads_given and backend.threads is not None:
        options.threads = [backend.threads]
    options.device = options.device or backend.device
    options.providers = options.providers or backend.providers
    options.extra = {**backend.extra, **options.extra}
    options.target = target.name
    options.target_profile = {key: getattr(target, key) for key in _RECORDED}
