"""The one rule for an e-mail address written in the config: what is one, and what it stands for.

An address may be written bare ("taro@usen.co.jp"), in angle brackets
("<taro@usen.co.jp>") or with a display name ("事務 <jimu@usen.co.jp>"), as
the email package reads it; what counts is the address, lower-cased. Every
table of the config ([desk], [[branches]], [jimu_center], [ubd], [[flows]])
reads its addresses with :func:`parse_address`.
"""

from __future__ import annotations

import re
from email.utils import getaddresses

__all__ = ["ADDRESS_EXAMPLE", "is_domain_name", "parse_address"]

# How an error names what was expected, the same wherever the address was written.
ADDRESS_EXAMPLE = 'an e-mail address such as "taro@usen.co.jp"'

_DOMAIN_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
# Characters that cannot stand unquoted in the local part; a quoted one is never needed for the desk's mail.
_NOT_IN_LOCAL = frozenset('<>(),;:"[]\\@')


def parse_address(text: str) -> str | None:
    """The one address ``text`` names, lower-cased, or None when it names none or several."""
    try:
        pairs = getaddresses([text])
    except Exception:  # the stdlib parser can raise on hostile input
        return None
    addr = pairs[0][1].strip().lower() if len(pairs) == 1 else ""
    local, _, domain = addr.rpartition("@")
    if not local or not is_domain_name(domain) or any(c.isspace() or c in _NOT_IN_LOCAL for c in local):
        return None
    return addr


def is_domain_name(text: str) -> bool:
    """A host name: dot-separated labels of letters, digits and hyphens (IDN allowed)."""
    try:
        ascii_name = text.encode("idna").decode("ascii") if not text.isascii() else text
    except UnicodeError:
        return False
    labels = ascii_name.lower().rstrip(".").split(".")
    return len(ascii_name) <= 253 and len(labels) >= 1 and all(_DOMAIN_LABEL.fullmatch(x) for x in labels)
