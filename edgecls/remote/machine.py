"""What a device measures with: its environment, prepared as for a bench, and the machine
description its bench records carry (CPU model, architecture, inference library versions).

``edgecls tune --host`` asks once per process, so a cached latency measured with another
runtime release or on another CPU is never reused.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

from edgecls.remote.device import PrepareOptions, prepare
from edgecls.remote.host import HostSpec
from edgecls.remote.ssh import RemoteError, SshOptions, SshTransport, last_line

# Runs with the device's edgecls: the same description its bench report records as ``machine``.
_DESCRIBE = "import json; from edgecls.bench.machine import describe_machine; print(json.dumps(describe_machine()))"


def device_machine(host: HostSpec, formats: set[str], ssh: SshOptions | None = None,
                   options: PrepareOptions | None = None) -> dict[str, Any]:
    """``describe_machine()`` as run on ``host``, in the environment a bench of ``formats``
    would use there (prepared, hence installed, first if needed).

    Raises:
        RemoteError: the host cannot be reached or prepared, or its answer is unusable.
    """
    options = options or PrepareOptions()
    transport = SshTransport(host, ssh or SshOptions())
    try:
        environment = prepare(transport, formats, options, options.timeout_s)
        proc = transport.run(f"{environment.python} -c {shlex.quote(_DESCRIBE)}", 120.0, check=False)
    finally:
        transport.close()
    try:
        machine = json.loads(proc.stdout.decode(errors="replace").strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise RemoteError(f"{host.text}: could not describe the device's runtime: "
                          f"{last_line(proc.stderr) or last_line(proc.stdout) or 'no output'}") from None
    if proc.returncode != 0 or not isinstance(machine, dict):
        raise RemoteError(f"{host.text}: could not describe the device's runtime: {last_line(proc.stderr)}")
    return machine
