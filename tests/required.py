"""What a test needs from outside the repository, and what happens when it is missing.

Locally a missing ``../shared`` corpus or openssl skips the tests that need
it. Under ``MAILBOT_REQUIRE_SERVICES=1`` (CI) it fails them instead, so a CI
machine without the corpus cannot pass by running less.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The public corpus lives beside the repository, not in it (it is shared by every checkout).
CORPUS = ROOT.parent / "shared" / "corpus" / "public"


def required() -> bool:
    return os.environ.get("MAILBOT_REQUIRE_SERVICES") == "1"


def missing(reason: str) -> None:
    """Skip, or fail under MAILBOT_REQUIRE_SERVICES=1."""
    if required():
        pytest.fail(f"{reason} (MAILBOT_REQUIRE_SERVICES=1 makes this a failure)", pytrace=False)
    pytest.skip(reason)


def corpus_files() -> list[Path]:
    """The corpus mails, oldest name first; empty when the corpus is absent."""
    if not CORPUS.is_dir():
        return []
    return sorted(p for p in CORPUS.iterdir() if p.is_file() and p.name != "SOURCES.md")


def need_corpus() -> list[Path]:
    files = corpus_files()
    if not files:
        missing(f"the public corpus {CORPUS} is not present")
    return files


def need_openssl() -> str:
    found = shutil.which("openssl")
    if found is None:
        missing("openssl is not installed")
    assert found is not None
    return found
