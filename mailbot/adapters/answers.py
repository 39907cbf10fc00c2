"""The desk's answer templates: ``templates/answers/*.txt``, one common answer a file.

A file's first line is its title (what the case page's list offers), the rest
is the text put in the answer mail. The desk edits, adds or removes files;
they are read when asked for, so a change shows on the next page.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["ANSWERS_DIR", "AnswerTemplate", "load_answers"]

# Beside the mail templates: <templates>/answers/.
ANSWERS_DIR = "answers"


@dataclass(frozen=True)
class AnswerTemplate:
    name: str  # the file's name without .txt: what a form or the CLI names it by
    title: str
    text: str


def load_answers(templates: Path) -> tuple[AnswerTemplate, ...]:
    """Every answer template under ``templates/answers``, by file name; none when the folder is absent.

    A file that is not UTF-8 or has no text after its title is left out rather
    than offered half-read.
    """
    folder = templates / ANSWERS_DIR
    if not folder.is_dir():
        return ()
    found: list[AnswerTemplate] = []
    for path in sorted(folder.glob("*.txt")):
        try:
            lines = path.read_text(encoding="utf-8-sig").replace("\r\n", "\n").split("\n")
        except (OSError, UnicodeDecodeError):
            continue
        title, text = lines[0].strip(), "\n".join(lines[1:]).strip("\n")
        if title and text.strip():
            found.append(AnswerTemplate(path.stem, title, text))
    return tuple(found)
