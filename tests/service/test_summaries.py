"""Weekly summaries over a seeded week: counts, lists, the rendered mails, exactly once."""

from __future__ import annotations

import email
import email.policy
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mailbot.adapters.database.schema import JobRun, Outbox
from mailbot.bootstrap import build_app
from mailbot.config import load_config
from mailbot.domain.clock import JST
from mailbot.domain.schedule import Week, due_week, parse_weekly_spec
from mailbot.entrypoints.demo import demo_summary_text
from mailbot.service.summaries import (
    SendResult,
    build_week_report,
    render_summaries,
    send_week_summaries,
)
from tests.fixtures.bot import DESK, SHIBUYA_MGR, SHINJUKU_MGR, FakeClock, Harness, make_harness
from tests.mailfactory import build_mail

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
W48 = Week(2026, 48)


def jst(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=JST)


def request(
    branch: str,
    *,
    n: int,
    sender: str,
    cc: tuple[str, ...] = (),
    document: bool = True,
    code: str = "123456789",
) -> bytes:
    return build_mail(
        style="gmail",
        subject=f"フレッツエスカ {branch}",
        sender=sender,
        to=[DESK],
        cc=list(cc),
        body=f"取次をお願いします。\n顧客CD:{code}\n",
        attachments=[("回線単品申込書.pdf", PDF)] if document else [],
        message_id=f"<req{n}@usen.co.jp>",
    )


def arrive(h: Harness, at: datetime, raw: bytes) -> None:
    h.clock.now = at
    h.deliver(raw)
    h.poll()


def seed_week(h: Harness, week: Week) -> None:
    """A week (Mon to Sun, JST) at three branches, with edges on both sides.

    For week 48 of 2026: a return on Mon 11/16 never resubmitted; on 11/24 渋谷
    accepted and returned, 11/25 新宿 returned, 11/26 名古屋 (unknown branch),
    Sun 11/29 23:30 新宿 accepted; Mon 11/30 00:10 渋谷 returned (next week).
    """

    def at(days: int, hour: int, minute: int = 0) -> datetime:
        return week.start + timedelta(days=days, hours=hour, minutes=minute)

    h.clock.now = at(-7, 9)
    h.import_unis()
    # The week before: a return that was never resubmitted.
    arrive(h, at(-7, 10), request("渋谷支店", n=1, sender="old@usen.co.jp", cc=(SHIBUYA_MGR,), document=False))
    # The week.
    arrive(h, at(1, 10), request("渋谷支店", n=2, sender="taro@usen.co.jp", cc=(SHIBUYA_MGR,)))
    arrive(h, at(1, 11), request("渋谷支店", n=3, sender="jiro@usen.co.jp", cc=(SHIBUYA_MGR,), document=False))
    arrive(h, at(2, 9), request("新宿支店", n=4, sender="hana@usen.co.jp"))
    arrive(h, at(3, 9), request("名古屋支店", n=5, sender="nagoya@usen.co.jp"))
    arrive(h, at(6, 23, 30), request("新宿支店", n=6, sender="yuki@usen.co.jp", cc=(SHINJUKU_MGR,)))
    # The next week already: Monday 00:10 JST.
    arrive(h, at(7, 0, 10), request("渋谷支店", n=7, sender="late@usen.co.jp", document=False))


def seed_week_48(h: Harness) -> None:
    seed_week(h, W48)


def parse(raw: bytes) -> EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)


def summary_rows(h: Harness, kind: str) -> list[Outbox]:
    with h.app.sessions() as session:
        return list(session.scalars(select(Outbox).where(Outbox.kind == kind).order_by(Outbox.id)))


def send(h: Harness, week: Week = W48) -> SendResult:
    config = h.app.config
    return send_week_summaries(
        h.app.sessions, h.app.renderer, week=week, now=h.clock(), directory=config.branches, policy=config.policy
    )


@pytest.fixture
def week48(harness: Harness) -> Harness:
    seed_week_48(harness)
    harness.clock.now = jst(2026, 11, 30, 8, 30)
    return harness


def test_an_iso_week_runs_from_monday_to_monday_in_japan_time() -> None:
    assert W48.start == jst(2026, 11, 23)
    assert W48.end == jst(2026, 11, 30)
    assert Week.parse("2026-W48") == W48
    assert Week.containing(jst(2026, 11, 29, 23, 59)) == W48
    assert Week.containing(jst(2026, 11, 30, 0, 0)) == Week(2026, 49)
    assert Week.containing(jst(2021, 1, 3)).label == "2020-W53"
    assert Week.parse("2026-W53").end == jst(2027, 1, 4)
    with pytest.raises(ValueError, match="no week 53"):
        Week.parse("2025-W53")


def test_the_week_report_counts_requests_outcomes_open_returns_per_branch(week48: Harness) -> None:
    with week48.app.sessions() as session:
        report = build_week_report(session, W48, now=week48.clock(), directory=week48.app.config.branches)

    shibuya = report.branch("渋谷支店")
    assert shibuya.received == 2
    assert [c.case_no for c in shibuya.accepted] == ["FE-2026-00002"]
    assert [c.case_no for c in shibuya.returned] == ["FE-2026-00003"]
    assert shibuya.defect_counts == [("attachment_missing", 1)]
    # Oldest first, aged as of the end of the week; the Monday 00:10 return belongs to week 49.
    assert [(c.case_no, c.age_days) for c in shibuya.open_returns] == [("FE-2026-00001", 13), ("FE-2026-00003", 5)]

    shinjuku = report.branch("新宿支店")
    assert (shinjuku.received, len(shinjuku.accepted), len(shinjuku.returned)) == (2, 1, 1)
    assert shinjuku.defect_counts == [("manager_cc_missing", 1)]

    assert not report.branch("大阪支店").has_activity
    assert report.branch("名古屋支店").received == 1
    assert report.totals == {
        "received": 5,
        "accepted_count": 2,
        "returned_count": 3,
        "open_count": 4,
        "waiting_count": 0,
    }


def test_each_active_branch_gets_its_summary_and_ops_gets_the_desk_wide_one(week48: Harness) -> None:
    result = send(week48)

    assert sorted(result.sent) == ["ops", "新宿支店", "渋谷支店"]
    assert ("大阪支店", "no activity") in result.skipped
    branch_mails = {tuple(r.to_addrs): parse(r.raw) for r in summary_rows(week48, "weekly_branch")}
    assert set(branch_mails) == {(SHIBUYA_MGR,), (SHINJUKU_MGR,)}

    shibuya = branch_mails[(SHIBUYA_MGR,)]
    assert shibuya["Subject"] == "【週次】フレッツエスカ依頼状況 渋谷支店 2026年11月23日(月)〜11月29日(日)"
    body = shibuya.get_content()
    assert "依頼件数      2件" in body
    assert "受付完了      1件" in body
    assert "不備返却      1件" in body
    assert "再送待ち      2件(2026-11-30 00:00 時点)" in body
    assert "・申込書類が添付されていません: 1件" in body
    assert "FE-2026-00001  123456789(株式会社さくら商事)  返却 2026-11-16 10:00(13日経過)" in body
    assert "FE-2026-00003" in body and "FE-2026-00007" not in body
    assert "USEN NETWORKS オペレーション課 納品デスク" in body

    (ops_row,) = summary_rows(week48, "weekly_ops")
    ops = parse(ops_row.raw).get_content()
    assert "渋谷支店: 2 / 1 / 1 / 2 / 0" in ops
    assert "新宿支店: 2 / 1 / 1 / 1 / 0" in ops
    assert "名古屋支店: 1 / 0 / 1 / 1 / 0" in ops
    assert "大阪支店" not in ops
    assert "合計: 5 / 2 / 3 / 4 / 0" in ops
    assert "支店長(依頼部署責任者)がCCに入っていません: 1件" in ops
    assert "件名の支店名が確認できません: 1件" in ops
    # The oldest open return heads the list.
    oldest = ops.split("■ 再送待ちの古い順")[1]
    assert oldest.strip().startswith("FE-2026-00001  渋谷支店")


def test_a_branch_with_summary_recipients_gets_it_there_instead_of_its_managers(harness: Harness) -> None:
    harness.clock.now = jst(2026, 11, 24, 9, 0)
    harness.import_unis()
    arrive(harness, jst(2026, 11, 24, 10, 0), request("大阪支店", n=1, sender="osaka@usen.co.jp"))
    harness.clock.now = jst(2026, 11, 30, 9, 0)

    send(harness)

    assert [r.to_addrs for r in summary_rows(harness, "weekly_branch")] == [["osaka-all@usen.co.jp"]]


def test_summaries_are_sent_once_per_branch_and_week_even_after_a_restart(week48: Harness) -> None:
    first = send(week48)
    second_app = build_app(load_config(week48.config_path), clock=week48.clock)
    try:
        config = second_app.config
        again = send_week_summaries(
            second_app.sessions,
            second_app.renderer,
            week=W48,
            now=week48.clock(),
            directory=config.branches,
            policy=config.policy,
        )
    finally:
        second_app.close()

    assert sorted(first.sent) == ["ops", "新宿支店", "渋谷支店"]
    assert again.sent == []
    assert sorted(t for t, _ in again.already) == ["ops", "新宿支店", "渋谷支店"]
    assert len(summary_rows(week48, "weekly_branch")) == 2
    with week48.app.sessions() as session:
        keys = set(session.scalars(select(JobRun.key).where(JobRun.job == "weekly_summary")))
    assert keys == {"2026-W48:渋谷支店", "2026-W48:新宿支店", "2026-W48:ops"}


def test_the_job_for_a_week_is_due_once_the_following_weeks_scheduled_time_passes() -> None:
    spec = parse_weekly_spec("mon 08:30")
    assert due_week(jst(2026, 11, 30, 8, 29), spec, JST) is None
    assert due_week(jst(2026, 11, 30, 8, 30), spec, JST) == W48
    assert due_week(jst(2026, 12, 6, 23, 0), spec, JST) == W48  # catch-up within the week
    assert due_week(jst(2026, 12, 7, 8, 30), spec, JST) == Week(2026, 49)
    assert due_week(jst(2026, 12, 4, 18, 0), parse_weekly_spec("FRI 17:00"), JST) == W48


@pytest.mark.parametrize("text", ["monday 08:30", "mon 8.30", "mon 24:00", "xyz 08:30", ""])
def test_a_malformed_weekly_summary_setting_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_weekly_spec(text)


def test_a_week_with_no_activity_sends_nothing_at_all(harness: Harness) -> None:
    harness.clock.now = jst(2026, 11, 30, 9, 0)
    result = send(harness)
    assert result.sent == []
    with harness.app.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Outbox)) == 0


def test_the_demo_text_summarises_the_current_week(week48: Harness) -> None:
    week48.clock.now = jst(2026, 11, 29, 23, 45)
    text = demo_summary_text(week48.app)
    assert "今週の状況 2026-W48" in text
    assert "渋谷支店" in text and "名古屋支店" in text
    assert "申込書類が添付されていません" in text


def test_two_apps_on_one_database_cannot_both_send_a_weeks_summary(tmp_path: Path, db_url: str) -> None:
    clock = FakeClock()
    a = make_harness(tmp_path / "a", db_url, clock=clock)
    b_app = build_app(load_config(a.config_path), clock=clock)
    try:
        seed_week_48(a)
        clock.now = jst(2026, 11, 30, 9, 0) + timedelta(minutes=1)
        first = send(a)
        config = b_app.config
        second = send_week_summaries(
            b_app.sessions, b_app.renderer, week=W48, now=clock(), directory=config.branches, policy=config.policy
        )
    finally:
        b_app.close()
        a.app.close()
    assert len(first.sent) == 3
    assert second.sent == []


def test_a_past_week_is_told_as_it_was_even_after_the_case_moved_on(week48: Harness) -> None:
    # FE-2026-00003 (returned on Tuesday of week 48) is resubmitted on Monday of week 49,
    # before the summary runs: week 48 must still show it returned and open at the week's end.
    h = week48
    [reply] = [o for o in h.outbox("defect_reply") if o["case_no"] == "FE-2026-00003"]
    h.clock.now = jst(2026, 11, 30, 8, 0)
    h.deliver(
        build_mail(
            subject=reply["subject"],
            sender="jiro@usen.co.jp",
            to=[DESK],
            cc=[SHIBUYA_MGR],
            body="添付します。",
            attachments=[("回線単品申込書.pdf", PDF)],
            in_reply_to=reply["message_id"],
        )
    )
    h.poll()
    assert {c["case_no"]: c["status"] for c in h.cases()}["FE-2026-00003"] == "accepted"
    with h.app.sessions() as session:
        w48 = build_week_report(session, W48, now=jst(2026, 11, 30, 8, 30), directory=h.app.config.branches)
        w49 = build_week_report(session, Week(2026, 49), now=jst(2026, 11, 30, 8, 30))
    shibuya = w48.branch("渋谷支店")
    assert "FE-2026-00003" in [c.case_no for c in shibuya.returned]
    assert "FE-2026-00003" in [c.case_no for c in shibuya.open_returns]
    assert "FE-2026-00003" in [c.case_no for c in w49.branch("渋谷支店").accepted]
    assert "FE-2026-00003" not in [c.case_no for c in w49.branch("渋谷支店").open_returns]


def test_a_week_across_new_year_names_both_years() -> None:
    from mailbot.service.summaries import WeekReport

    report = WeekReport(Week(2026, 53), jst(2027, 1, 4), {})
    assert report.week_context()["period"] == "2026年12月28日(月)〜2027年1月3日(日)"


def test_a_note_on_a_case_does_not_count_it_again_and_a_closed_return_waits_for_nothing(harness: Harness) -> None:
    seed_week_48(harness)
    harness.clock.now = jst(2026, 11, 27, 9, 0)
    harness.app.desk.note("FE-2026-00001", "支店に確認済み", by="山田")  # returned the week before
    harness.app.desk.close("FE-2026-00003", by="山田", reason="取り下げ")  # returned this week
    with harness.app.sessions() as session:
        report = build_week_report(session, W48, now=jst(2026, 11, 30, 8, 30), directory=harness.app.config.branches)
    shibuya = report.branch("渋谷支店")
    assert [c.case_no for c in shibuya.returned] == ["FE-2026-00003"]  # the note is no second return
    assert [(c.case_no, c.age_days) for c in shibuya.open_returns] == [("FE-2026-00001", 13)]


# -- open returns older than [summary] list_open_returns_days are counted, not listed -------------------------
def summary_bodies(h: Harness, days: int | None, week: Week = W48) -> dict[str, str]:
    config = h.app.config
    rendered = render_summaries(
        h.app.sessions,
        h.app.renderer,
        week=week,
        now=h.clock(),
        directory=config.branches,
        policy=config.policy,
        open_returns_days=days,
    )
    return {mail.target: body for mail, _, body in rendered}


def branch_and_ops_bodies(h: Harness, days: int | None) -> tuple[str, str]:
    bodies = summary_bodies(h, days)
    return bodies["渋谷支店"], bodies["ops"]


def test_a_branch_summary_lists_its_recent_open_returns_and_counts_the_older_ones_in_one_line(
    week48: Harness,
) -> None:
    # 渋谷: FE-2026-00001 returned 11/16 10:00 (13 days before the week's end), FE-2026-00003 on 11/24.
    shibuya, ops = branch_and_ops_bodies(week48, 10)

    assert "再送待ち      2件(2026-11-30 00:00 時点)" in shibuya  # the count is still every open return
    listing = shibuya.split("■ 再送をお待ちしている依頼(返却の古い順)")[1].split("■")[0]
    assert "※このほか、返却から10日を超えている依頼が1件あります(件数のみの記載です)。" in listing
    assert "個々の内容の確認が必要な場合は、納品デスクまでお問い合わせください。" in listing
    assert "FE-2026-00001" not in listing
    assert "FE-2026-00003" in listing
    # The desk sees what the branches were not shown, and where to list it.
    heading = "■ 返却から10日を超えている再送待ち(支店あての週次には件数のみ記載、または送付なし)"
    assert f"{heading}\n  渋谷支店: 1件\n" in ops
    assert "mailbot cases list --status returned --stage received --branch 支店名 --all" in ops
    assert "新宿支店: 1件" not in ops  # 新宿's open return is two days old
    assert "FE-2026-00001  渋谷支店" in ops.split("■ 再送待ちの古い順")[1]  # the desk's oldest ten are unchanged


@pytest.mark.parametrize(("days", "listed"), [(13, False), (14, True)])
def test_an_open_return_is_listed_while_it_is_no_more_than_the_days_old(
    week48: Harness, days: int, listed: bool
) -> None:
    # FE-2026-00001 was returned 13 days and 14 hours before the week's end.
    shibuya, _ = branch_and_ops_bodies(week48, days)
    listing = shibuya.split("■ 再送をお待ちしている依頼(返却の古い順)")[1].split("■")[0]
    assert ("FE-2026-00001" in listing) is listed
    assert ("件数のみの記載です" in listing) is not listed


def test_a_branch_whose_only_open_returns_are_old_still_gets_the_section_with_its_count(week48: Harness) -> None:
    shibuya, ops = branch_and_ops_bodies(week48, 1)
    listing = shibuya.split("■ 再送をお待ちしている依頼(返却の古い順)")[1].split("■")[0]
    assert "※返却から1日を超えている依頼が2件あります(件数のみの記載です)。" in listing
    assert "FE-2026-" not in listing and "再送してください" not in listing, "nothing listed to resubmit"
    assert "渋谷支店: 2件" in ops and "新宿支店: 1件" in ops


def test_without_a_limit_every_open_return_is_listed_and_no_count_line_is_written(week48: Harness) -> None:
    shibuya, ops = branch_and_ops_bodies(week48, None)
    assert "FE-2026-00001" in shibuya and "件数のみの記載" not in shibuya
    assert "日を超えている再送待ち" not in ops


def test_a_branch_whose_week_holds_only_returns_too_old_to_list_gets_no_mail_and_the_desk_counts_them(
    week48: Harness,
) -> None:
    # Week 50: nothing new anywhere; 渋谷 has three open returns and 新宿 one, all older than a day.
    week48.clock.now = jst(2026, 12, 14, 8, 30)
    bodies = summary_bodies(week48, 1, Week(2026, 50))
    assert set(bodies) == {"ops"}, "the same count every Monday for ever would tell the branch nothing new"
    assert "渋谷支店: 3件" in bodies["ops"] and "新宿支店: 1件" in bodies["ops"]
    # Without the limit the open returns are listed, so the branches hear of them every week.
    assert {"渋谷支店", "新宿支店", "ops"} <= set(summary_bodies(week48, None, Week(2026, 50)))


def test_a_branch_summary_ends_with_the_desks_contact_line_like_every_mail_to_a_branch(desk: Harness) -> None:
    seed_week_48(desk)
    desk.clock.now = jst(2026, 11, 30, 8, 30)
    shibuya = summary_bodies(desk, None)["渋谷支店"]
    assert "ご不明な点は 納品デスク(内線 2345) までお問い合わせください。" in shibuya
    assert desk.app.config.policy.desk_address not in shibuya, "the bot's own mailbox is no contact"


def test_a_return_naming_several_values_of_one_kind_counts_once_for_that_defect() -> None:
    from mailbot.service.summaries import BranchWeek, CaseLine

    values = [{"code": "unis_line_values", "detail": {"field": f}} for f in ("明細処理区分", "ランニング")]
    line = CaseLine(
        case_no="FE-2026-00001",
        branch="渋谷支店",
        customer_code="123456789",
        customer_name="株式会社さくら商事",
        status="returned",
        defects=[*values, {"code": "manager_cc_missing", "detail": {}}],
        since=jst(2026, 11, 24, 10, 0),
        age_days=0,
        return_count=1,
    )
    week = BranchWeek("渋谷支店", received=1, returned=[line])
    assert line.defect_codes == ["unis_line_values", "manager_cc_missing"]
    assert dict(week.defect_counts) == {"unis_line_values": 1, "manager_cc_missing": 1}


def test_a_release_answered_to_ops_only_is_not_asked_of_the_branch_and_the_desk_mail_names_it(
    harness: Harness,
) -> None:
    harness.import_unis()
    arrive(harness, jst(2026, 11, 24, 10), request("渋谷支店", n=1, sender="hana@usen.co.jp"))  # no manager in CC
    arrive(harness, jst(2026, 11, 24, 11), request("渋谷支店", n=2, sender="sales@partner.example.com", document=False))
    [item] = [m for m in harness.messages() if m["disposition"] == "quarantined"]
    harness.clock.now = jst(2026, 11, 24, 12)
    [row_id] = [r["id"] for r in quarantine_rows(harness)]
    result = harness.app.desk.release(row_id, by="山田", reason="取引先経由の正式な依頼")
    assert result.case_no == "FE-2026-00002" and item["reason"] == "outside_domain"
    assert [c["status"] for c in harness.cases()] == ["returned", "returned"]
    # The return of the released mail went to ops only: the outsider gets nothing, the branch never heard of it.
    assert [o["case_no"] for o in harness.outbox("defect_reply")] == ["FE-2026-00001"]
    harness.clock.now = jst(2026, 11, 30, 8, 30)
    bodies = summary_bodies(harness, None)
    shibuya, ops = bodies["渋谷支店"], bodies["ops"]
    waiting = shibuya[shibuya.index("■ 再送をお待ちしている依頼") :]
    assert "FE-2026-00001" in waiting and "FE-2026-00002" not in shibuya
    assert "再送待ち      1件" in shibuya
    unsent = ops[ops.index("■ 返却メールが支店に届いていない返却") :]
    assert "FE-2026-00002" in unsent.splitlines()[1]


def quarantine_rows(h: Harness) -> list[dict[str, object]]:
    from mailbot.service import views

    with h.app.sessions() as session:
        return views.quarantine_rows(session)
