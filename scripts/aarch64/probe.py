"""Runs inside the arm64 chroot: proves the install is aarch64, imports, and has no TensorFlow.

Prints one line per fact; exits 1 when the machine is not aarch64, edgecls.runtime does not
import, or TensorFlow/Keras can be imported (the runtime must never need them).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import platform
import sys

BACKEND_MODULES = {"ai-edge-litert": "ai_edge_litert.interpreter", "onnxruntime": "onnxruntime",
                   "openvino": "openvino"}
FORBIDDEN = ("tensorflow", "keras", "tf_keras")


def installed(dist: str) -> str | None:
    """The installed version of a distribution, or None."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def check_forbidden() -> list[str]:
    """Names of forbidden frameworks that can be imported (should be none)."""
    found = []
    for name in FORBIDDEN:
        try:
            importlib.import_module(name)
        except ImportError:
            continue
        found.append(name)
    return found


def check_target_profiles() -> str:
    """Whether the installed package finds the device profiles (informational)."""
    from edgecls.errors import EdgeclsError
    from edgecls.runtime.targets import load_target

    try:
        load_target("raspberry-pi-4")
    except EdgeclsError as exc:
        return f"NOT found by the installed wheel ({exc.message}): `edgecls run --target NAME` fails"
    return "found"


def main() -> int:
    """Prints the facts; returns the exit code."""
    machine = platform.machine()
    print(f"machine {machine}, Python {platform.python_version()}, glibc {platform.libc_ver()[1]}")
    import edgecls.runtime  # noqa: F401  (must import with numpy + OpenCV + a backend only)

    versions = {d: installed(d) for d in ("edgecls", "numpy", "opencv-python-headless", *BACKEND_MODULES)}
    print("wheels: " + ", ".join(f"{d} {v}" for d, v in versions.items() if v))
    for dist, module in BACKEND_MODULES.items():
        if versions[dist]:
            importlib.import_module(module)
            print(f"import {module}: ok")
    print(f"target profiles: {check_target_profiles()}")
    leaked = [m for m in sys.modules if m.split(".")[0] in FORBIDDEN]
    found = check_forbidden()
    print("import tensorflow: " + ("FAILS as it must" if "tensorflow" not in found else "SUCCEEDS (bad)"))
    if machine != "aarch64" or found or leaked:
        print(f"error: machine={machine} importable={found} imported_by_runtime={leaked}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
