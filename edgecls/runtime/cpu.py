"""CPU feature detection from /proc/cpuinfo (no extra dependencies).

Backends use it to apply settings that decide accuracy or speed on this CPU, e.g.
ONNX Runtime's ``session.x64quantprecision`` on x86 CPUs whose 8-bit kernels
saturate (AVX2 or SSE4.1 without VNNI: ``vpmaddubsw`` adds pairs of u8*s8 products
in 16 bits, 255*127*2 = 64770 > 32767).
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

_X86_MACHINES = ("x86_64", "amd64", "i386", "i686", "x86")
_VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "avx512vnni", "avxvnni", "amx_int8")


@dataclass(frozen=True)
class CpuInfo:
    """What edgecls needs to know about the CPU it runs on."""

    machine: str
    model_name: str
    flags: frozenset[str]
    cores: int

    @property
    def is_x86(self) -> bool:
        return self.machine.lower() in _X86_MACHINES

    @property
    def has_avx2(self) -> bool:
        return "avx2" in self.flags

    @property
    def has_vnni(self) -> bool:
        return any(flag in self.flags for flag in _VNNI_FLAGS)

    @property
    def u8s8_overflow_risk(self) -> bool:
        """x86 with AVX2/SSE4.1 but no VNNI: 8-bit GEMM kernels saturate in 16 bits."""
        simd = self.has_avx2 or "sse4_1" in self.flags
        return self.is_x86 and simd and not self.has_vnni

    def summary(self) -> str:
        """One line for logs and bench output, e.g. 'x86_64 AMD EPYC avx2 vnni'."""
        features = [f for f in ("neon", "asimd", "avx2", "avx512f") if f in self.flags]
        if self.is_x86:
            features.append("vnni" if self.has_vnni else "no-vnni")
        return " ".join([self.machine, self.model_name, *features]).strip()


def parse_cpuinfo(text: str, machine: str) -> CpuInfo:
    """Parses /proc/cpuinfo text (x86 'flags' or ARM 'Features' lines)."""
    flags: set[str] = set()
    names: dict[str, str] = {}
    cores = 0
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("flags", "features"):
            flags.update(value.split())
        elif key in ("model name", "hardware", "model") and key not in names:
            names[key] = value.strip()
        elif key == "processor":
            cores += 1
    # x86: "model name" (the "model" line is a number); ARM boards: "Model" or "Hardware".
    model_name = names.get("model name") or names.get("model") or names.get("hardware", "")
    return CpuInfo(machine=machine, model_name=model_name, flags=frozenset(flags), cores=cores)


@lru_cache(maxsize=1)
def cpu_info() -> CpuInfo:
    """The CPU this process runs on (empty flags where /proc/cpuinfo is absent)."""
    path = Path("/proc/cpuinfo")
    try:
        text = path.read_text(errors="replace")
    except OSError:
        text = ""
    return parse_cpuinfo(text, platform.machine())
