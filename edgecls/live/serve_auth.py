"""Who may watch the ``--serve`` stream: a token or HTTP basic auth.

On a loopback address nothing is required unless asked for. On any other address the
stream always needs credentials: the user's token or basic-auth pair, else a token
generated for the run; only an explicit ``open_access`` (``--no-auth``) serves it to
anyone who can reach the port.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import re
import secrets
from dataclasses import dataclass, replace

from edgecls.errors import ConfigError

_TOKEN_PATTERN = re.compile(r"[A-Za-z0-9._~-]{8,256}")  # URL-safe: works unquoted in ?token=


@dataclass(frozen=True)
class StreamAuth:
    """Credentials a request must carry.

    Attributes:
        token: accepted as ``?token=...`` or ``Authorization: Bearer ...``.
        basic: ``(user, password)`` for ``Authorization: Basic ...``.
        open_access: the user explicitly allowed an unauthenticated non-loopback bind.
        generated: the token was generated for this run (the user should be told it).
    """

    token: str | None = None
    basic: tuple[str, str] | None = None
    open_access: bool = False
    generated: bool = False

    @classmethod
    def from_options(cls, token: str | None = None, basic_auth: str | None = None,
                     no_auth: bool = False) -> StreamAuth:
        """Validates the command-line options (``--token``, ``--basic-auth USER:PASSWORD``, ``--no-auth``)."""
        if no_auth and (token or basic_auth):
            raise ConfigError("--no-auth contradicts --token / --basic-auth", "give one or the other")
        if token is not None and not _TOKEN_PATTERN.fullmatch(token):
            raise ConfigError("the stream token must be 8 to 256 characters of A-Z a-z 0-9 . _ ~ -",
                              "or leave --token out: a token is generated and printed")
        basic = None
        if basic_auth is not None:
            user, sep, password = basic_auth.partition(":")
            if not sep or not user or not password:
                raise ConfigError("--basic-auth must be USER:PASSWORD", "e.g. --basic-auth viewer:s3cret-words")
            basic = (user, password)
        return cls(token=token, basic=basic, open_access=no_auth)

    @property
    def required(self) -> bool:
        return bool(self.token or self.basic)

    def for_address(self, address: str) -> StreamAuth:
        """This policy for a server bound to ``address``: a generated token off loopback
        when no credentials were given and open access was not asked for."""
        if self.required or self.open_access or is_loopback(address):
            return self
        return replace(self, token=secrets.token_urlsafe(18), generated=True)

    def allows(self, authorization: str | None, query_tokens: list[str]) -> bool:
        """True when the request's ``Authorization`` header or ``?token=`` matches."""
        if not self.required:
            return True
        if self.token and any(_same(candidate, self.token) for candidate in query_tokens):
            return True
        scheme, _, value = (authorization or "").strip().partition(" ")
        scheme, value = scheme.lower(), value.strip()
        if self.token and scheme == "bearer":
            return _same(value, self.token)
        if self.basic and scheme == "basic":
            return _basic_matches(value, self.basic)
        return False

    def challenge(self) -> str:
        """The ``WWW-Authenticate`` value of a 401 answer."""
        return 'Basic realm="edgecls", charset="UTF-8"' if self.basic else 'Bearer realm="edgecls"'


def is_loopback(address: str) -> bool:
    """True for 127.0.0.0/8 and ::1 (an IPv4-mapped loopback too); False for names and 0.0.0.0."""
    try:
        ip = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return bool(ip.is_loopback or (mapped is not None and mapped.is_loopback))


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode("utf-8"))


def _basic_matches(value: str, expected: tuple[str, str]) -> bool:
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return False
    user, _, password = decoded.partition(":")
    return _same(user, expected[0]) & _same(password, expected[1])
