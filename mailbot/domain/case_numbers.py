"""The desk's case number, FE-2026-00015: how one is made, found in a subject, read and removed.

The one home of its form: the database adapter makes them with
:func:`format_case_no`, the subject grammar reads them with :func:`parse_case_no`
and the reply subjects drop an earlier one with :func:`remove_case_tags`.
"""

from __future__ import annotations

import re

from mailbot.domain.japanese import normalize

__all__ = ["CASE_NO_PATTERN", "CASE_TAG", "PREFIX", "format_case_no", "parse_case_no", "remove_case_tags"]

PREFIX = "FE"
# As the desk's own numbers are stored: FE-2026-00015.
CASE_NO_PATTERN = re.compile(rf"{PREFIX}-\d{{4}}-\d{{5}}")

# Hyphens a case number may be typed or converted with, in either width.
_HYPHEN = "[-‐‑−–－ー]"
_CASE_NO_ANY_WIDTH = rf"[FＦ][EＥ]\s*{_HYPHEN}\s*[0-9０-９]{{4}}\s*{_HYPHEN}\s*[0-9０-９]{{5}}"
# A case number in any bracket (or none): [FE-2026-00015], ［ＦＥ－…］, 【FE-…】, (FE-…), 「FE-…」, <FE-…>.
CASE_TAG = re.compile(
    rf"[\[［(（【「『<＜〈《]?\s*{_CASE_NO_ANY_WIDTH}\s*[\]］)）】」』>＞〉》]?",
    re.IGNORECASE,
)


def format_case_no(year: int, seq: int) -> str:
    """The number of the ``seq``-th case of ``year``: FE-2026-00015."""
    return f"{PREFIX}-{year}-{seq:05d}"


def parse_case_no(text: str) -> str | None:
    """The first case number in ``text``, in any bracket, width or hyphen, in its stored form; None if there is none."""
    match = CASE_TAG.search(text)
    if match is None:
        return None
    digits = re.sub(r"\D", "", normalize(match.group(0)))
    return f"{PREFIX}-{digits[:4]}-{digits[4:]}"


def remove_case_tags(text: str) -> str:
    """``text`` without the desk's case numbers, whatever brackets surround them."""
    return " ".join(CASE_TAG.sub(" ", text).split())
