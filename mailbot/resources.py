"""Where the templates and migrations are, installed or in a checkout."""

from __future__ import annotations

from pathlib import Path

__all__ = ["migrations_dir", "templates_dir"]

_PACKAGE = Path(__file__).resolve().parent


def _find(name: str) -> Path:
    # A wheel carries them in mailbot/_data; a checkout (editable install) keeps
    # them at the repository's top level so the desk edits one copy.
    for candidate in (_PACKAGE / "_data" / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"mailbot's {name}/ directory is missing from {_PACKAGE}")


def templates_dir() -> Path:
    return _find("templates")


def migrations_dir() -> Path:
    return _find("migrations")
