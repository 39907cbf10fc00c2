"""Every mail template renders, line by line as written (no line eaten by a tag)."""

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from jinja2 import Environment

from mailbot.adapters.templates import MAIL_KINDS, Renderer, TemplateProblem
from mailbot.domain.model import Defect
from mailbot.domain.policy import Policy
from mailbot.resources import templates_dir
from mailbot.service.health import ALERT_KINDS
from mailbot.service.mail_samples import sample_context
from mailbot.service.mails import mail_context
from mailbot.service.summaries import SUMMARY_KINDS
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
CASE_MAIL_KINDS = [k for k in MAIL_KINDS if not k.startswith(("weekly_", "ops_alert", "ops_login"))]


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


# --- issue 9: every template is checked at start-up ---------------------------------

ALL_KINDS = (*MAIL_KINDS, *SUMMARY_KINDS, *ALERT_KINDS)


def copied_templates(tmp_path: Path) -> Path:
    target = tmp_path / "templates"
    target.mkdir()
    for path in templates_dir().glob("*.j2"):
        (target / path.name).write_bytes(path.read_bytes())
    return target


def test_the_shipped_templates_pass_the_start_up_check_with_a_sample_of_every_kind() -> None:
    Renderer().check(ALL_KINDS, sample=sample_context)


def test_a_template_saved_in_cp932_is_one_line_naming_the_file_and_its_encoding(tmp_path: Path) -> None:
    path = copied_templates(tmp_path) / "receipt.j2"
    path.write_bytes(path.read_text(encoding="utf-8").encode("cp932"))
    with pytest.raises(TemplateProblem) as info:
        Renderer(path.parent).check(ALL_KINDS, sample=sample_context)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: not UTF-8") and "CP932" in message


def test_a_partial_saved_in_cp932_is_found_too(tmp_path: Path) -> None:
    path = copied_templates(tmp_path) / "_defects.j2"
    path.write_bytes(path.read_text(encoding="utf-8").encode("cp932"))
    with pytest.raises(TemplateProblem, match=r"_defects\.j2: not UTF-8"):
        Renderer(path.parent).check(("receipt",))


def test_a_syntax_error_names_the_file_and_its_line(tmp_path: Path) -> None:
    path = copied_templates(tmp_path) / "ops_waiting.j2"
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[4] = lines[4] + " {% if %}"
    path.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(TemplateProblem, match=rf"^{path}:5: syntax error: "):
        Renderer(path.parent).check(ALL_KINDS)


def test_a_misspelt_variable_fails_the_check_with_its_line_not_the_first_real_mail(tmp_path: Path) -> None:
    path = copied_templates(tmp_path) / "receipt.j2"
    text = path.read_text(encoding="utf-8")
    line = text.splitlines().index("受付番号: {{ case_no }}") + 1
    path.write_text(text.replace("受付番号: {{ case_no }}", "受付番号: {{ case_number }}"), encoding="utf-8")
    Renderer(path.parent).check(ALL_KINDS)  # parses fine: only rendering finds it
    with pytest.raises(TemplateProblem, match=rf"^{path}:{line}: 'case_number' is undefined"):
        Renderer(path.parent).check(ALL_KINDS, sample=sample_context)


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_a_deleted_template_of_any_kind_is_a_start_up_error(tmp_path: Path, kind: str) -> None:
    folder = copied_templates(tmp_path)
    (folder / f"{kind}.j2").unlink()
    with pytest.raises(TemplateProblem, match=rf"{kind}\.j2: template missing"):
        Renderer(folder).check(ALL_KINDS, sample=sample_context)


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_the_sample_context_renders_every_kind_without_leftover_markup(kind: str) -> None:
    text = Renderer().render(kind, sample_context(kind))
    assert text.subject and "{{" not in text.body and "\ufffd" not in text.body


def test_the_sample_context_has_every_defect_the_templates_explain() -> None:
    body = Renderer().render("defect_reply", sample_context("defect_reply")).body
    # _defects.j2's fallback prints the bare code: a sample defect it does not know would show here.
    assert "unis_customer_class" not in body and "顧客区分" in body


@pytest.mark.parametrize("kind", ["weekly_ops", "weekly_branch", "ops_alert", "receipt"])
def test_a_variable_the_kinds_real_context_lacks_fails_the_check(tmp_path: Path, kind: str) -> None:
    # weekly_ops has no "original": the sample is the summaries' own context, not a superset.
    path = copied_templates(tmp_path) / f"{kind}.j2"
    path.write_text(path.read_text(encoding="utf-8").replace("{% endblock %}", "{{ nope.x }}{% endblock %}", 1))
    with pytest.raises(TemplateProblem, match="'nope' is undefined"):
        Renderer(path.parent).check(ALL_KINDS, sample=sample_context)
    if kind.startswith("weekly"):
        path.write_text(path.read_text(encoding="utf-8").replace("{{ nope.x }}", "{{ original.subject }}"))
        with pytest.raises(TemplateProblem, match="'original' is undefined"):
            Renderer(path.parent).check(ALL_KINDS, sample=sample_context)


def test_a_misspelt_variable_in_a_branch_the_sample_does_not_take_is_found_too(tmp_path: Path) -> None:
    path = copied_templates(tmp_path) / "ops_quarantined.j2"
    text = path.read_text(encoding="utf-8").replace(
        "{% endblock %}", "{% if false %}{{ case_numbr }}{% endif %}{% endblock %}", 1
    )
    path.write_text(text, encoding="utf-8")
    line = text[: text.index("case_numbr")].count("\n") + 1
    with pytest.raises(
        TemplateProblem, match=rf"^{path}:{line}: 'case_numbr' is undefined \(the ops_quarantined mail has: "
    ):
        Renderer(path.parent).check(ALL_KINDS, sample=sample_context)


# --- each template file is parsed once a process -------------------------------------


def _parses_counted(monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    """The file name of every template Jinja parses from now on."""
    parsed: list[str | None] = []
    parse = Environment._parse

    def counting(self: Environment, source: str, name: str | None, filename: str | None) -> Any:
        parsed.append(filename)
        return parse(self, source, name, filename)

    monkeypatch.setattr(Environment, "_parse", counting)
    return parsed


def test_each_template_is_parsed_once_however_many_checks_and_renderers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = copied_templates(tmp_path)
    receipt = folder / "receipt.j2"
    receipt.write_bytes(receipt.read_bytes().replace(b"\n", b"\r\n"))  # saved on Windows
    parsed = _parses_counted(monkeypatch)
    for _ in range(2):  # `mailbot check-config` checks twice; every command builds a Renderer or two
        renderer = Renderer(folder)
        renderer.check(ALL_KINDS, sample=sample_context)
        renderer.render("receipt", sample_context("receipt"))

    assert sorted(map(str, parsed)) == sorted(str(path) for path in folder.glob("*.j2"))


def test_after_forget_parsed_each_template_is_parsed_again_as_in_a_new_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mailbot.adapters.templates import forget_parsed

    folder = copied_templates(tmp_path)
    Renderer(folder).check(ALL_KINDS, sample=sample_context)
    parsed = _parses_counted(monkeypatch)
    forget_parsed()
    Renderer(folder).check(ALL_KINDS, sample=sample_context)

    assert sorted(map(str, parsed)) == sorted(str(path) for path in folder.glob("*.j2"))


def test_a_template_edited_after_the_check_is_read_again_by_the_next_renderer(tmp_path: Path) -> None:
    path = copied_templates(tmp_path) / "receipt.j2"
    Renderer(path.parent).check(ALL_KINDS, sample=sample_context)
    path.write_text(path.read_text(encoding="utf-8").replace("受付番号:", "受付番号(新):"), encoding="utf-8")

    renderer = Renderer(path.parent)
    renderer.check(ALL_KINDS, sample=sample_context)

    assert "受付番号(新): " in renderer.render("receipt", sample_context("receipt")).body
