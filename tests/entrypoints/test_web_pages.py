"""Every page of the workbench, on the demo's data, in a real Chromium at a phone's width and a laptop's.

:data:`PAGES` lists every page once (a new page is one line there). For each,
at 390×844 and at 1366×900: nothing is wider than the window (no horizontal
scroll), and no badge or case number is broken across lines (送信済/み,
FE-2026-/00002). With ``MAILBOT_SCREENSHOT_DIR`` set (``make screenshots``)
the test also saves ``<name>.png`` (1366×900) of every page and
``<name>-390.png`` of those marked ``phone``: the pictures of the README and
docs/desk-guide.ja.md.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mailbot.entrypoints.demo import DEMO_USERS, run_demo
from tests.fixtures.web import web_server

pytestmark = pytest.mark.services


@dataclass(frozen=True)
class Shown:
    """One page: its picture's name, its address and what it answers."""

    name: str  # the screenshot's file name (without .png)
    path: str  # "{fe}": the demo's case-number prefix ("FE-2026-"); "{quarantined}": its quarantined mail's ID
    status: int = 200
    phone: bool = False  # also pictured at 390 px (<name>-390.png)
    whole: bool = False  # pictured whole (the full page's length), not the window's first screen
    logged_in: bool = True
    # A page reached by a step from ``path`` (a button pressed, a file chosen), given the tab and the demo's folder.
    then: Callable[[Any, Path], None] | None = None


def _confirm_an_answer(tab: Any, directory: Path) -> None:
    """The confirmation page of an answer in the thread: the exact mail, nothing queued yet."""
    form = tab.locator("form[action$='/answer']")
    form.locator("select[name=template]").select_option(index=1)
    form.locator("button[data-action=answer]").click()
    tab.wait_for_selector("form.confirm")


def _upload_the_progress_list(tab: Any, directory: Path) -> None:
    """The progress list's report before anything is applied (the demo's own list, already imported)."""
    tab.set_input_files("input[type=file][name=file]", str(directory / "ntt_progress.csv"))
    tab.click("button[data-action=upload-progress]")
    tab.wait_for_selector("button[data-action=apply-progress]")


PAGES: tuple[Shown, ...] = (
    Shown("login", "/login", logged_in=False),
    Shown("board", "/", phone=True),
    # A case page per kind the demo has (its number in the demo: see mailbot/entrypoints/demo_data.py).
    Shown("case", "/cases/{fe}00004", phone=True, whole=True),  # returned, with the branch's question
    Shown("confirm", "/cases/{fe}00004", phone=True, then=_confirm_an_answer),  # the answer, before it is queued
    Shown("case-accepted", "/cases/{fe}00008"),
    Shown("case-confirmed", "/cases/{fe}00001"),  # UNIS確定, after the progress list
    Shown("case-cancelled", "/cases/{fe}00002"),
    Shown("case-ubd", "/cases/{fe}00015"),  # UBD's new customer (顧客CD from the branch)
    Shown("case-needs-check", "/cases/{fe}00017"),  # 要確認: the desk decides
    Shown("quarantine", "/quarantine"),
    Shown("quarantine-item", "/quarantine/{quarantined}"),
    Shown("out-of-scope", "/quarantine?view=out_of_scope"),
    Shown("outbox", "/outbox", phone=True),
    Shown("status", "/status"),
    Shown("weekly", "/weekly"),
    Shown("progress", "/progress"),
    Shown("progress-report", "/progress", then=_upload_the_progress_list),
    Shown("worklist", "/worklist", phone=True),
    Shown("not-found", "/cases/{fe}99999", status=404),
)

PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1366, "height": 900}

# A badge or a case number whose text's line boxes stand at more than one height is broken across lines.
_BROKEN = """() => [...document.querySelectorAll('.badge, .case-no, a[href^="/cases/"]')].filter(e => {
    const range = document.createRange();
    range.selectNodeContents(e);
    const tops = new Set([...range.getClientRects()].filter(r => r.width > 0).map(r => Math.round(r.top)));
    return tops.size > 1;
}).map(e => e.textContent.trim())"""


@dataclass(frozen=True)
class Site:
    base: str  # the workbench's address
    directory: Path  # the demo's folder (its config, its progress list)


@pytest.fixture(scope="module")
def demo_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The demo's data (`make demo`) on `mailbot web`."""
    directory = tmp_path_factory.mktemp("pages") / "demo"
    assert run_demo(directory) == 0
    with web_server(directory / "config.toml") as base:
        yield Site(base, directory)


def _browse(chromium: Any, site: Site, viewport: dict[str, int], only: str = "") -> Iterator[tuple[Shown, Any]]:
    """Each page of :data:`PAGES` (or the one named ``only``) opened in a window of ``viewport``, logged-out first."""
    name, _, password = DEMO_USERS[0]
    context = chromium.new_context(viewport=viewport, locale="ja-JP")
    tab = context.new_page()
    tab.set_default_timeout(15_000)
    try:
        places: dict[str, str] = {}
        for shown in sorted((p for p in PAGES if p.name == only or not only), key=lambda p: p.logged_in):
            if shown.logged_in and not places:
                tab.goto(f"{site.base}/login")
                tab.fill("input[name=username]", name)
                tab.fill("input[name=password]", password)
                tab.click("form[action='/login'] button[type=submit]")
                tab.wait_for_selector("table.cases")
                places = _places(tab, site.base)
            answer = tab.goto(site.base + shown.path.format(**places))
            assert answer is not None and answer.status == shown.status, (shown.name, answer and answer.status)
            if shown.then:
                shown.then(tab, site.directory)
            yield shown, tab
    finally:
        context.close()


def _places(tab: Any, base: str) -> dict[str, str]:
    """The demo's case-number prefix (its year) and its quarantined mail's ID, read from the pages."""
    first = tab.locator("a.case-no").first.inner_text()
    prefix = re.fullmatch(r"(FE-\d{4}-)\d{5}", first)
    assert prefix, first
    tab.goto(f"{base}/quarantine")
    link = tab.locator("tr[data-quarantine] a").first.get_attribute("href")
    return {"fe": prefix.group(1), "quarantined": link.rsplit("/", 1)[1]}


def _problems(tab: Any) -> list[str]:
    problems = []
    width, window = tab.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    if width > window:
        problems.append(f"{width}px wide in a {window}px window")
    if broken := tab.evaluate(_BROKEN):
        problems.append(f"broken across lines: {broken[:5]}")
    return problems


@pytest.mark.parametrize("viewport", [PHONE, LAPTOP], ids=["390x844", "1366x900"])
def test_no_page_is_wider_than_the_window_and_no_badge_or_case_number_breaks(
    demo_site: Site, chromium: Any, viewport: dict[str, int]
) -> None:
    problems = {shown.name: found for shown, tab in _browse(chromium, demo_site, viewport) if (found := _problems(tab))}
    assert problems == {}


def test_a_3000_character_word_wraps_instead_of_widening_the_page(demo_site: Site, chromium: Any) -> None:
    for _, tab in _browse(chromium, demo_site, PHONE, only="case"):
        # A pasted word as long as a note may be, in the mail body, a table cell and a summary line.
        tab.evaluate(
            """word => {
                document.querySelector('pre.body').textContent = word;
                document.querySelector('table.events td[data-label]').textContent = word;
                document.querySelector('dl.summary dd').textContent = word;
            }""",
            "x" * 3000,
        )
        assert _problems(tab) == []


def test_the_note_counter_says_how_many_characters_are_left_as_the_clerk_types(demo_site: Site, chromium: Any) -> None:
    for _, tab in _browse(chromium, demo_site, PHONE, only="case"):
        form = tab.locator("form[action$='/note']")
        counter = form.locator("small.counter")
        assert counter.inner_text() == "残り 2,000 文字"
        form.locator("input[name=note]").fill("電話で確認しました")
        assert counter.inner_text() == "残り 1,991 文字"
        # The field takes no more than the cap: a longer paste is cut at 2,000 characters.
        form.locator("input[name=note]").fill("あ" * 2500)
        assert len(form.locator("input[name=note]").input_value()) <= 2000
        assert counter.inner_text() == "残り 0 文字"


def test_the_p_number_field_explains_its_format_in_japanese_before_submitting(demo_site: Site, chromium: Any) -> None:
    for _, tab in _browse(chromium, demo_site, LAPTOP, only="case-accepted"):
        form = tab.locator("form[action$='/enter']")
        assert form.locator("small.hint").inner_text() == "P+13桁の数字(例: P1234567890123)"
        field = form.locator("input[name=p_number]")
        field.fill("P123")
        message = field.evaluate("e => { e.reportValidity(); return e.validationMessage; }")
        assert message == "形式が違います。P+13桁の数字(例: P1234567890123)で入力してください。"
        field.fill("")
        assert field.evaluate("e => { e.reportValidity(); return e.validationMessage; }") == "入力してください。"
        field.fill("P1234567890123")
        assert field.evaluate("e => e.checkValidity()")
        assert form.locator("button[data-action=enter]").is_visible()


def test_screenshots_of_every_page(demo_site: Site, chromium: Any) -> None:
    """Saved only with MAILBOT_SCREENSHOT_DIR (`make screenshots`); otherwise every page still opens."""
    shots = os.environ.get("MAILBOT_SCREENSHOT_DIR")
    for viewport, suffix in ((LAPTOP, ""), (PHONE, "-390")):
        for shown, tab in _browse(chromium, demo_site, viewport):
            assert tab.locator("main").is_visible()
            if shots and (viewport is LAPTOP or shown.phone):
                whole = shown.whole and viewport is LAPTOP
                tab.screenshot(path=str(Path(shots) / f"{shown.name}{suffix}.png"), full_page=whole)


def test_the_readme_and_the_desk_guide_show_every_page() -> None:
    """Each page's picture is in the README's gallery, and in the desk guide's with its phone picture."""
    root = Path(__file__).resolve().parents[2]
    readme = (root / "README.md").read_text(encoding="utf-8")
    guide = (root / "docs" / "desk-guide.ja.md").read_text(encoding="utf-8")
    pictures = [shown.name for shown in PAGES]
    phones = [f"{shown.name}-390" for shown in PAGES if shown.phone]
    assert [n for n in pictures if f"docs/screenshots/{n}.png" not in readme] == []
    assert [n for n in pictures + phones if f"screenshots/{n}.png" not in guide] == []
    assert [n for n in pictures + phones if not (root / "docs" / "screenshots" / f"{n}.png").is_file()] == []
