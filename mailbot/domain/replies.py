"""What a reply itself says, without the history it quotes.

Mailers quote differently: Gmail and Apple Mail prefix lines with ``>`` after
an "On ... wrote:" line; Outlook writes a header block (``From:`` /
``差出人:`` ... ``Subject:`` / ``件名:``) after a rule or an
"-----Original Message-----" line and quotes nothing with ``>``. The first
such marker ends the reply's own text.
"""

from __future__ import annotations

import re

from mailbot.domain.japanese import normalize

__all__ = ["own_text"]

_HISTORY_START = re.compile(
    r"""^\s*(?:
        -{2,}\s*(?:original\s+message|元のメッセージ|転送メッセージ|forwarded\s+message)\s*-{2,}
      | _{10,}
      | (?:from|差出人|送信者)\s*:\s*\S.*
      | on\s.+wrote\s*:
      | .+(?:wrote|書きました)\s*:
      | .*\d.*<[^<>\s]+@[^<>\s]+>\s*:          # Gmail ja: 2026年12月2日(水) 3:00 名前 <a@b>:
    )\s*$""",
    re.IGNORECASE | re.VERBOSE,
)


def own_text(body: str) -> str:
    """The part of ``body`` the sender wrote now: up to the quoted history, without ``>`` lines."""
    kept: list[str] = []
    for line in body.splitlines():
        folded = normalize(line)
        if _HISTORY_START.match(folded):
            break
        # normalize() already trimmed the line: an indented "  >" starts with ">".
        if folded.startswith(">"):
            continue
        kept.append(line)
    return "\n".join(kept).strip()
