"""docs/architecture.md's "Extending it" lists, per kind of change, the files to touch: they exist and are few."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "architecture.md"
KINDS = ("A new check", "A new mail kind", "A new stage", "A new desk action", "A new mailbox kind")


def files_to_touch() -> dict[str, list[str]]:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("\n## Extending it\n", 1)[1].split("\n## ", 1)[0]
    lists: dict[str, list[str]] = {}
    for block in section.split("\n### ")[1:]:
        title, _, body = block.partition("\n")
        lists[title.strip()] = re.findall(r"^- `([^`]+)`", body, flags=re.M)
    return lists


def test_the_guide_names_the_files_for_every_kind_of_change() -> None:
    assert set(KINDS) <= set(files_to_touch())


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_of_change_touches_at_most_four_files_that_exist(kind: str) -> None:
    files = files_to_touch()[kind]
    assert 1 <= len(files) <= 4, files
    for name in files:
        assert (ROOT / name).exists(), f"{kind}: {name} does not exist"
