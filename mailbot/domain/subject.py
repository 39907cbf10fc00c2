"""Recognising a request by its subject: ``フレッツエスカ ○○支店``.

The one home of the subject's grammar: reply/forward prefixes as every mail
client writes them, the desk's case number in whatever brackets (its form is
:mod:`mailbot.domain.case_numbers`), the keyword
and the branch after it, and what a subject that nearly has the form looks
like. ``mailbot.service.mails`` builds its reply subjects with the same
patterns.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from mailbot.domain.case_numbers import parse_case_no, remove_case_tags
from mailbot.domain.japanese import normalize

__all__ = [
    "KEYWORD",
    "REPLY_PREFIX",
    "SubjectInfo",
    "parse_subject",
    "resembles_request",
    "squash",
    "strip_prefixes",
    "strip_reply_prefixes",
    "subject_core",
]

KEYWORD = "フレッツエスカ"
# One reply/forward marker as the clients write it, in either width: Re: RE: RE[2]: RE(3): Fw: FWD:
# 転送: 返信: 回答: (Outlook, Gmail, iPhone Mail, Japanese Outlook and Thunderbird).
REPLY_PREFIX = re.compile(
    r"^\s*(?:re|ｒｅ|fw|ｆｗ|fwd|ｆｗｄ|転送|返信|回答)\s*(?:[\[［(（]\s*\d+\s*[\]］)）])?\s*[:：]\s*",
    re.IGNORECASE,
)

# Every other marker at the start, after NFKC (so "：" is ":"): 【至急】, [..], (..).
_PREFIX = re.compile(
    r"""^\s*(?:
        【[^】]*】                                             # 【至急】
      | \[[^\]]*\]                                            # [社外秘]
      | \([^)]*\)
    )\s*""",
    re.VERBOSE,
)
# Where a branch token ends: whitespace, brackets, punctuation.
_TOKEN = re.compile(r"[^\s【】\[\]()「」『』<>,、。/・:;|]+")
# What a near-miss comparison leaves out: spaces, brackets, punctuation, long-vowel and middle dots.
_NOISE = re.compile(r"[\s【】\[\]()「」『』<>〈〉《》{},、。/・:;|_\-‐−–~〜!?*#'\"]+")
# A near-miss subject: フレッツ and one of these.
_NEAR_WORDS = ("エスカ", "申込", "取次")


@dataclass(frozen=True)
class SubjectInfo:
    """What a subject says: whether it is a request, the branch text, a case number."""

    is_request: bool
    branch_text: str | None
    case_no: str | None
    # The text after the keyword, for matching branch names as prefixes.
    rest: str


def strip_reply_prefixes(subject: str) -> str:
    """``subject`` without its leading reply/forward markers (any number, any width), otherwise as written."""
    text = subject
    while True:
        stripped = REPLY_PREFIX.sub("", text, count=1)
        if stripped == text:
            return text.strip()
        text = stripped


def subject_core(subject: str) -> str:
    """The branch's own subject without reply prefixes and without an earlier case tag.

    Only RE:/FW: markers and the case number (any bracket) are removed, so 【至急】
    and the keyword survive as the branch wrote them: the topic a reply is threaded under.
    """
    text = " ".join(subject.split())
    core = strip_reply_prefixes(remove_case_tags(strip_reply_prefixes(text)))
    return " ".join(core.split()) or subject


def strip_prefixes(subject: str) -> str:
    """The subject in comparison form without case numbers and without any leading marker (RE:, 【至急】 ...)."""
    text = remove_case_tags(normalize(subject))
    while True:
        # Both patterns are anchored at the start: each pass removes one prefix.
        stripped = _PREFIX.sub("", REPLY_PREFIX.sub("", text, count=1), count=1)
        if stripped == text:
            return text
        text = stripped


def parse_subject(subject: str) -> SubjectInfo:
    case_no = parse_case_no(subject)
    # A case number is never part of the branch: it goes before anything else is read.
    text = remove_case_tags(normalize(subject))
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
    # What is left of a reply marker after the keyword ("フレッツエスカ RE: 渋谷支店") is no branch either.
    rest = strip_reply_prefixes(rest).lstrip(" -:_】」』)]([「『【")
    token = _TOKEN.match(rest)
    branch_text = token.group(0) if token else None
    return SubjectInfo(True, branch_text, case_no, rest)


def squash(text: str) -> str:
    """Comparison form without spaces, brackets and punctuation: how a near-miss subject is compared."""
    return _NOISE.sub("", normalize(text)).casefold()


def resembles_request(subject: str, branch_names: Iterable[str] = (), *, with_document: bool = True) -> bool:
    """A subject that is not the form but looks meant as one.

    フレッツ with エスカ, 申込 or 取次 ("フレッツ エスカ", "フレッツ光申込"); or a
    known branch's name, spaces, brackets and width ignored, but only on a mail
    that carries a document (``with_document``): branches name themselves in
    all their mail ("渋谷支店 忘年会のお知らせ"), and such a mail is no request.
    """
    text = squash(strip_reply_prefixes(remove_case_tags(normalize(subject))))
    if not text:
        return False
    if "フレッツ" in text and any(word in text for word in _NEAR_WORDS):
        return True
    return with_document and any(name and name in text for name in (squash(n) for n in branch_names))
