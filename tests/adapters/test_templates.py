"""Every mail template renders, line by line as written (no line eaten by a tag)."""

from datetime import UTC, datetime

import pytest

from mailbot.adapters.templates import MAIL_KINDS, Renderer
from mailbot.domain.model import Defect
from mailbot.domain.policy import Policy
from mailbot.service.mails import mail_context
from tests.domain.builders import request

POLICY = Policy(desk_address="f-desk@mxb.usen.co.jp", internal_domains=("usen.co.jp",))


def context() -> dict:
    return mail_context(
        case_no="FE-2026-00001",
        branch="渋谷支店",
        customer_code="123456789",
        customer_name="株式会社さくら商事",
        defects=(Defect("manager_cc_missing", {"branch": "渋谷支店"}),),
        message=request(),
        received_at=datetime(2026, 11, 24, 1, 0, tzinfo=UTC),
        policy=POLICY,
        facts={"reason": "outside_domain", "to": "a@usen.co.jp", "subject": "x", "error": "550"},
    )


# Alerts and weekly summaries have contexts of their own (tests/service/test_health.py, test_summaries.py).
CASE_MAIL_KINDS = [k for k in MAIL_KINDS if not k.startswith(("weekly_", "ops_alert"))]


@pytest.mark.parametrize("kind", CASE_MAIL_KINDS)
def test_every_template_renders_japanese_without_leftover_markup(kind: str) -> None:
    text = Renderer().render(kind, context())
    assert text.subject and "\n" not in text.subject
    for rendered in (text.subject, text.body):
        assert "{{" not in rendered and "{%" not in rendered and "\ufffd" not in rendered


@pytest.mark.parametrize("kind", ["receipt", "ops_accepted"])
def test_the_customer_line_ends_before_the_next_line_starts(kind: str) -> None:
    body = Renderer().render(kind, context()).body
    assert "顧客CD: 123456789(株式会社さくら商事)\n" in body


def test_the_defect_reply_names_the_case_the_defect_and_what_to_do() -> None:
    body = Renderer().render("defect_reply", context()).body
    assert "受付番号: FE-2026-00001" in body
    assert "支店長(依頼部署責任者)がCCに入っていません" in body
    assert "本メールのCCに渋谷支店の支店長を入れてあります" in body
    assert "11月24日(火)10:00" in body  # JST, as a branch reads a date
