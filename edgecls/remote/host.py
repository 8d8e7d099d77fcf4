"""Host specs as users write them for ssh: ``user@host[:port]``, ``host`` or an ssh config alias."""

from __future__ import annotations

import re
from dataclasses import dataclass

from edgecls.errors import ConfigError

# What ssh accepts as a user and a host name or alias; anything else (spaces, quotes, a
# leading "-" that ssh would read as an option) is refused before a command is built.
_USER = r"[A-Za-z0-9._][A-Za-z0-9._-]*"
_HOST = r"[A-Za-z0-9_][A-Za-z0-9._-]*"
_SPEC = re.compile(rf"^(?:(?P<user>{_USER})@)?(?:\[(?P<ipv6>[0-9A-Fa-f:.]+)\]|(?P<host>{_HOST}))"
                   r"(?::(?P<port>\d{1,5}))?$")


@dataclass(frozen=True)
class HostSpec:
    """One remote device.

    Attributes:
        text: the spec as given (the label in reports).
        host: host name, address or ``~/.ssh/config`` alias.
        user: login name, or None to let ssh decide (config ``User``, else the local user).
        port: TCP port, or None to let ssh decide (config ``Port``, else 22).
    """

    text: str
    host: str
    user: str | None = None
    port: int | None = None

    @property
    def destination(self) -> str:
        """The ``[user@]host`` argument of ssh."""
        return f"{self.user}@{self.host}" if self.user else self.host

    def ssh_port_args(self) -> list[str]:
        """``-p PORT`` when the spec names a port."""
        return ["-p", str(self.port)] if self.port else []


def parse_host(text: str) -> HostSpec:
    """Parses ``user@host[:port]``, ``host[:port]``, ``[ipv6]:port`` or an ssh config alias.

    Raises:
        ConfigError: the text is not something ssh would take as a destination.
    """
    spec = text.strip()
    match = _SPEC.match(spec)
    if not match:
        raise ConfigError(f"--host {text!r} is not a host spec",
                          "write user@host, user@host:port, or an alias from ~/.ssh/config")
    port = int(match["port"]) if match["port"] else None
    if port is not None and not 1 <= port <= 65535:
        raise ConfigError(f"--host {text!r}: port {port} is out of range", "ports are 1..65535")
    return HostSpec(text=spec, host=match["ipv6"] or match["host"], user=match["user"], port=port)


def parse_hosts(texts: list[str]) -> list[HostSpec]:
    """Parses several specs; the same spec twice is refused (its results would collide)."""
    hosts = [parse_host(text) for text in texts]
    seen: set[str] = set()
    for host in hosts:
        if host.text in seen:
            raise ConfigError(f"--host {host.text} is given twice", "name each device once")
        seen.add(host.text)
    return hosts
