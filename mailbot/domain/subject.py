"""Recognising a request by its subject: ``フレッツエスカ ○○支店``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from mailbot.domain.japanese import normalize

__all__ = ["CASE_NO_PATTERN", "KEYWORD", "SubjectInfo", "parse_subject"]

KEYWORD = "フレッツエスカ"
CASE_NO_PATTERN = re.compile(r"FE-\d{4}-\d{5}")

# Reply/forward markers as mailers write them, after NFKC (so "：" is ":").
_PREFIX = re.compile(
    r"""^\s*(?:
        (?:re|fw|fwd|転送|返信|回答)\s*(?:\[\d+\]|\(\d+\))?\s*:   # Re: RE[2]: 転送:
      | 【[^】]*】                                             # 【至急】
      | \[[^\]]*\]                                            # [FE-2026-00001]
      | \([^)]*\)
    )\s*""",
    re.IGNORECASE | re.VERBOSE,
)
# Where a branch token ends: whitespace, brackets, punctuation.
_TOKEN = re.compile(r"[^\s【】\[\]()「」『』<>,、。/・:;|]+")


@dataclass(frozen=True)
class SubjectInfo:
    """What a subject says: whether it is a request, the branch text, a case number."""

    is_request: bool
    branch_text: str | None
    case_no: str | None
    # The text after the keyword, for matching branch names as prefixes.
    rest: str


def strip_prefixes(subject: str) -> str:
    text = normalize(subject)
    while True:
        # _PREFIX is anchored at the start: each pass removes one prefix.
        stripped = _PREFIX.sub("", text)
        if stripped == text:
            return text
        text = stripped


def parse_subject(subject: str) -> SubjectInfo:
    text = normalize(subject)
    case_match = CASE_NO_PATTERN.search(text.upper())
    case_no = case_match.group(0) if case_match else None
    body = strip_prefixes(text)
    index = body.find(KEYWORD)
    if index < 0:
        # A reply whose prefixes hid the keyword deeper in, e.g. "【再送】RE: フレッツエスカ".
        index = text.find(KEYWORD)
        if index < 0:
            return SubjectInfo(False, None, case_no, "")
        body = text
    # "【フレッツエスカ】渋谷支店" and "フレッツエスカ(渋谷支店)" put brackets around either part.
    rest = body[index + len(KEYWORD) :].lstrip(" -:_】」』)]([「『【")
    token = _TOKEN.match(rest)
    branch_text = token.group(0) if token else None
    return SubjectInfo(True, branch_text, case_no, rest)
