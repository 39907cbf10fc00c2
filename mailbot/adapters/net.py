"""Small network facts shared by the IMAP and SMTP adapters."""

from __future__ import annotations

import ipaddress
from typing import Literal

__all__ = ["TLS_MODES", "TlsMode", "is_loopback"]

# How a mail server session is secured: TLS from the first byte, upgraded by STARTTLS, or not at all (loopback only).
TlsMode = Literal["ssl", "starttls", "none"]
TLS_MODES: frozenset[str] = frozenset({"ssl", "starttls", "none"})

_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine, judged from the literal name only.

    Resolving here would make the cleartext decision depend on whatever DNS
    says at start-up.
    """
    name = host.strip().rstrip(".").lower()
    if name in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name.strip("[]")).is_loopback
    except ValueError:
        return False
