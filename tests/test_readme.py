"""The README's lifecycle table is the transition table itself, rendered: it cannot drift."""

from pathlib import Path

from mailbot.domain.lifecycle import TRANSITIONS, Transition

README = Path(__file__).resolve().parent.parent / "README.md"


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
    lines = ["| from | event | to | verdict | mails | by |", "| --- | --- | --- | --- | --- | --- |"]
    lines += ["| " + " | ".join(_cell(row)) + " |" for row in TRANSITIONS]
    return "\n".join(lines)


def test_the_readme_shows_every_row_of_the_transition_table_as_it_is() -> None:
    assert lifecycle_table() in README.read_text(encoding="utf-8"), "regenerate: python -m tests.test_readme"


if __name__ == "__main__":
    print(lifecycle_table())
