"""The README and docs/: the lifecycle table is the transition table itself, rendered (it cannot drift),
the README stays a front door that fits on a few screens, and no link between the pages is dead.

`python -m tests.test_readme` writes the lifecycle table into docs/lifecycle.md again."""

import argparse
import re
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailbot.domain.lifecycle import TRANSITIONS, Transition
from mailbot.entrypoints.cli.main import build_parser

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
LIFECYCLE_PAGE = DOCS / "lifecycle.md"
COMMANDS_PAGE = DOCS / "operations.md"
TABLE_HEADER = "| from | event | to | verdict | mails | by |"
README_MAX_LINES = 250


def _cell(row: Transition) -> list[str]:
    to = {"same": "(same)", "verdict": "(by verdict)"}.get(str(row.to), str(row.to))
    return [
        ", ".join(s.value for s in row.sources),
        f"`{row.event.value}`",
        to,
        row.verdict.value if row.verdict else "-",
        ", ".join(f"`{m}`" for m in row.mails) or "-",
        " / ".join(sorted(a.value for a in row.actors)),
    ]


def lifecycle_table() -> str:
    lines = [TABLE_HEADER, "| --- | --- | --- | --- | --- | --- |"]
    lines += ["| " + " | ".join(_cell(row)) + " |" for row in TRANSITIONS]
    return "\n".join(lines)


def rewrite_lifecycle_page(text: str) -> str:
    """The page with its table (the header line and every table line after it) replaced by today's."""
    lines = text.split("\n")
    start = lines.index(TABLE_HEADER)
    end = start
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    return "\n".join([*lines[:start], lifecycle_table(), *lines[end:]])


def test_the_lifecycle_page_shows_every_row_of_the_transition_table_as_it_is() -> None:
    assert lifecycle_table() in LIFECYCLE_PAGE.read_text(encoding="utf-8"), "regenerate: python -m tests.test_readme"


def test_regenerating_the_lifecycle_page_leaves_an_up_to_date_page_as_it_is() -> None:
    text = LIFECYCLE_PAGE.read_text(encoding="utf-8")
    assert rewrite_lifecycle_page(text) == text


def test_the_readme_fits_on_a_few_screens() -> None:
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines < README_MAX_LINES, f"README.md has {lines} lines; move detail into docs/"


def test_the_readme_links_every_page_of_docs() -> None:
    links = {target for _, target in _links(README)}
    missing = [page.name for page in sorted(DOCS.glob("*.md")) if f"docs/{page.name}" not in links]
    assert not missing, f"README.md does not link {missing}"


def test_the_readme_cites_the_sections_of_the_desks_manual_it_follows() -> None:
    text = README.read_text(encoding="utf-8")
    for section in ("§5", "§5③④⑤", "§6"):
        assert section in text, section


def _commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> Iterator[str]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, (*prefix, name))
            return
    yield " ".join(prefix)


def test_every_command_is_in_the_operators_list_of_commands() -> None:
    text = COMMANDS_PAGE.read_text(encoding="utf-8")
    section = text[text.index("## Commands\n") : text.index("\n## ", text.index("## Commands\n") + 1)]
    missing = [c for c in _commands(build_parser()) if not re.search(rf"mailbot {re.escape(c)}(\s|$)", section)]
    assert not missing, f"not in {COMMANDS_PAGE.name}'s Commands: {missing}"


# --- links ---------------------------------------------------------------------------------

_LINK = re.compile(r"(?<!\\)\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_FENCE = re.compile(r"^(```|~~~)")


def _outside_code(path: Path) -> list[str]:
    """The page's lines, with fenced code blocks blanked and inline code removed."""
    lines, fenced = [], False
    for line in path.read_text(encoding="utf-8").split("\n"):
        if _FENCE.match(line.lstrip()):
            fenced = not fenced
            lines.append("")
            continue
        lines.append("" if fenced else re.sub(r"`+[^`]*`+", "", line))
    return lines


def _links(path: Path) -> list[tuple[int, str]]:
    return [
        (number, match.group(1)) for number, line in enumerate(_outside_code(path), 1) for match in _LINK.finditer(line)
    ]


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped (letters of any script kept), spaces to -."""
    text = re.sub(r"`([^`]*)`", r"\1", heading.strip()).lower()
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    kept = "".join(c for c in text if c in " -_" or unicodedata.category(c)[0] in "LMN")
    return kept.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    seen: dict[str, int] = {}
    fenced = False
    for line in path.read_text(encoding="utf-8").split("\n"):
        if _FENCE.match(line.lstrip()):
            fenced = not fenced
        if fenced or not re.match(r"#{1,6} ", line):
            continue
        slug = _slug(line.lstrip("#"))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def _pages() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


@pytest.mark.parametrize("page", _pages(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_points_to_an_existing_file_and_heading(page: Path) -> None:
    dead = []
    for number, target in _links(page):
        if re.match(r"[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        linked = (page.parent / file_part).resolve() if file_part else page
        if not linked.exists():
            dead.append(f"{page.name}:{number}: {target} (no such file)")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            dead.append(f"{page.name}:{number}: {target} (no such heading in {linked.name})")
    assert not dead, "\n".join(dead)


def test_the_link_checker_knows_githubs_anchors() -> None:
    assert _slug(" Install on a VM with systemd") == "install-on-a-vm-with-systemd"
    assert _slug(" `mailbot status`") == "mailbot-status"
    assert _slug(" The UBD path (manual §1, 2017年7月)") == "the-ubd-path-manual-1-2017年7月"
    assert _slug(" 事務センター's worklist (`mailbot unis worklist`)") == "事務センターs-worklist-mailbot-unis-worklist"


if __name__ == "__main__":
    LIFECYCLE_PAGE.write_text(rewrite_lifecycle_page(LIFECYCLE_PAGE.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"wrote the lifecycle table into {LIFECYCLE_PAGE.relative_to(ROOT)}")
