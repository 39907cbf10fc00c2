"""No code on any page: every page of the workbench, on the demo's data, reads in Japanese.

What a page shows of the data itself is left alone: addresses, Message-IDs,
file names, URLs, and mail bodies (shown as they were sent). Everything else
a clerk reads must be a label, never a snake_case code or a stray English word.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from mailbot.bootstrap import App, build_app
from mailbot.config import load_config
from mailbot.entrypoints.demo import DEMO_USERS, run_demo
from mailbot.entrypoints.web.app import create_app
from mailbot.service import views
from mailbot.service.views import QUICK_FILTERS
from tests.entrypoints.test_web import csrf

# Every page of the workbench that needs no id. A branch adding a page adds it here
# (pages of one case or one item are found from the demo's data below).
PAGES: tuple[str, ...] = (
    "/",
    *(f"/?view={key}" for key, _ in QUICK_FILTERS),
    "/?status=returned",
    "/?status=returned&closed=1",
    "/?status=accepted",
    "/?status=waiting_unis",
    "/?status=needs_review",
    "/?stage=closed",
    "/?stage=unis_confirmed",
    "/?stage=cancelled",
    "/?q=存在しない語",
    "/quarantine",
    "/quarantine?all=1",
    "/quarantine?view=out_of_scope",
    "/outbox",
    "/status",
    "/weekly",
    "/progress",
    "/worklist",
    "/login",
    "/cases/FE-2000-99999",  # an error page in the workbench's frame
)

SNAKE = re.compile(r"(?<![A-Za-z0-9])[a-z]+_[a-z_]+")
WORD = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{2,}(?![A-Za-z0-9])")
# Names a clerk reads as names: systems, companies, file types, the bot itself, "Message-ID", "契約No",
# and the prefixes of a mail subject ("RE: フレッツエスカ ...").
ALLOWED_WORDS = frozenset(
    {"UNIS", "NTT", "UBD", "BGM", "PDF", "ZIP", "CD", "CC", "FE", "KB", "ID", "Message", "No", "Excel", "Word"}
    | {"USEN", "NETWORKS", "mailbot", "RE", "Re", "FW", "Fw", "Fwd"}
    | {"CSV", "NO"}  # the progress list's file type; UNIS's own column name シリアルNO
)
DATA = re.compile(
    r"<[^<>\s]+@[^<>\s]+>"  # Message-IDs
    r"|[\w.+-]+@[\w-]+(?:\.[\w-]+)+"  # addresses
    r"|https?://\S+"  # URLs
    r"|(?<!\w)\.(?:csv|xlsx|xlsm)\b"  # a file type as the upload names it
    r"|[^\s/\\:*?\"<>|、。()()]+\.(?:pdf|xlsx|xls|csv|zip|eml|docx?|txt|png|jpe?g|tiff?)\b",  # file names
    re.IGNORECASE,
)


def visible_text(page: str) -> str:
    """The body's text as a clerk reads it, without the mail bodies and the data shown as data."""
    body = page[page.find("<body") :]
    body = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", body)
    body = re.sub(r'(?is)<pre class="body">.*?</pre>', " ", body)  # mails, shown as sent
    body = re.sub(r"(?is)<span data-user=[^>]*>.*?</span>", " ", body)  # the user's own name
    text = html.unescape(re.sub(r"<[^>]+>", " ", body))
    return DATA.sub(" ", text)


def codes_in(text: str) -> list[str]:
    snakes = set(SNAKE.findall(text))
    words = {w for w in WORD.findall(SNAKE.sub(" ", text)) if w not in ALLOWED_WORDS}
    return sorted(snakes | words)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[App, TestClient]]:
    directory = tmp_path_factory.mktemp("labels") / "demo"
    assert run_demo(directory) == 0
    app = build_app(load_config(directory / "config.toml"))
    client = TestClient(create_app(app, secret="test-secret"))
    name, _, password = DEMO_USERS[0]
    token = csrf(client.get("/login").text)
    answer = client.post("/login", data={"username": name, "password": password, "csrf_token": token, "next": "/"})
    assert answer.status_code == 200
    yield app, client
    app.close()


def pages_of_the_demos_data(app: App) -> list[str]:
    """A case page of every stage and verdict the demo has, and every quarantined item."""
    with app.sessions() as session:
        cases = views.case_rows(session)
        items = views.quarantine_rows(session, include_resolved=True)
    one_each = {(c["stage"], c["status"]): c["case_no"] for c in cases}
    return [f"/cases/{no}" for no in sorted(one_each.values())] + [f"/quarantine/{i['id']}" for i in items]


@pytest.mark.parametrize(
    "path",
    PAGES,
)
def test_a_page_shows_no_code_and_no_stray_english(demo: tuple[App, TestClient], path: str) -> None:
    _, client = demo
    answer = client.get(path)
    assert answer.status_code == (404 if path.startswith("/cases/") else 200), path
    assert codes_in(visible_text(answer.text)) == [], path


def test_every_case_and_quarantine_page_of_the_demo_shows_no_code(demo: tuple[App, TestClient]) -> None:
    app, client = demo
    paths = pages_of_the_demos_data(app)
    stages = {p for p in paths if p.startswith("/cases/")}
    assert len(stages) >= 5 and any(p.startswith("/quarantine/") for p in paths)
    found = {}
    for path in paths:
        answer = client.get(path)
        assert answer.status_code == 200, path
        if codes := codes_in(visible_text(answer.text)):
            found[path] = codes
    assert found == {}


def test_the_login_page_shows_no_code(demo: tuple[App, TestClient]) -> None:
    app, _ = demo
    fresh = TestClient(create_app(app, secret="test-secret"))
    assert codes_in(visible_text(fresh.get("/login").text)) == []


def test_the_scan_itself_finds_a_code_and_an_english_word() -> None:
    text = visible_text('<body><td>outside_domain</td><p>Not Found</p><pre class="body">show_me</pre></body>')
    assert codes_in(text) == ["Found", "Not", "outside_domain"]
    assert codes_in(visible_text("<body>申込書_さくら.pdf sales@example.com <a@b.c> UNISに顧客CD</body>")) == []


def test_the_confirmation_page_of_a_mailing_action_shows_no_code(demo: tuple[App, TestClient]) -> None:
    app, client = demo
    with app.sessions() as session:
        [case_no] = [c["case_no"] for c in views.case_rows(session) if c["case_no"].endswith("-00004")]
    page = client.get(f"/cases/{case_no}").text
    template = re.search(r'<select name="template">.*?<option value="([^"]+)"', page, re.S)
    assert template, "the answer form offers the templates"
    form = {"csrf_token": csrf(page), "template": template.group(1), "text": ""}
    answer = client.post(f"/cases/{case_no}/answer", data=form)
    assert answer.status_code == 200 and 'class="confirm"' in answer.text
    assert codes_in(visible_text(answer.text)) == []
