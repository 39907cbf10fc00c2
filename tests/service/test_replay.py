"""Replay: today's checks and config over stored cases, listing and applying what changes."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from mailbot.bootstrap import App, build_app
from mailbot.config import load_config
from mailbot.service.replay import ReplayChange, replay_cases
from tests.fixtures.bot import SHIBUYA_MGR, Harness, make_harness
from tests.service.test_summaries import arrive, jst, request

TWO_DOCUMENTS = """
[[documents]]
name = "回線単品申込書"
keywords = ["回線単品申込書", "申込書"]

[[documents]]
name = "重要事項説明書"
keywords = ["重要事項説明書", "重説"]
"""

SINCE = jst(2026, 11, 1)


def replay(app: App, now: datetime, *, apply: bool) -> list[ReplayChange]:
    return replay_cases(
        app.sessions,
        app.renderer,
        directory=app.config.branches,
        policy=app.config.policy,
        since=SINCE,
        now=now,
        apply=apply,
    )


def seed(h: Harness) -> None:
    h.clock.now = jst(2026, 11, 24, 9, 0)
    h.import_unis()
    arrive(h, jst(2026, 11, 24, 10, 0), request("渋谷支店", n=1, sender="taro@usen.co.jp", cc=(SHIBUYA_MGR,)))
    arrive(h, jst(2026, 11, 24, 11, 0), request("新宿支店", n=2, sender="hana@usen.co.jp"))


def with_new_rule(h: Harness, tmp_path: Path, db_url: str) -> Harness:
    """The same database, now with a second required document in the config."""
    return make_harness(tmp_path, db_url, TWO_DOCUMENTS, clock=h.clock)


def test_nothing_changes_when_the_config_did_not(harness: Harness) -> None:
    seed(harness)
    assert replay(harness.app, harness.clock(), apply=False) == []


def test_a_new_required_document_is_found_missing_in_a_dry_run_that_records_nothing(
    harness: Harness, tmp_path: Path, db_url: str
) -> None:
    seed(harness)
    changed = with_new_rule(harness, tmp_path, db_url)
    try:
        outbox_before = len(changed.outbox())
        changes = replay(changed.app, changed.clock(), apply=False)

        assert [(c.case_no, c.old_status, c.new_status) for c in changes] == [
            ("FE-2026-00001", "accepted", "returned"),
            ("FE-2026-00002", "returned", "returned"),
        ]
        assert [d.code for d in changes[0].new_defects] == ["attachment_missing"]
        detail = dict(changes[0].new_defects[0].detail)
        assert detail == {"document": "重要事項説明書", "received": "回線単品申込書.pdf"}
        assert [d.code for d in changes[1].old_defects] == ["manager_cc_missing"]
        assert [d.code for d in changes[1].new_defects] == ["manager_cc_missing", "attachment_missing"]
        assert "would change accepted → returned" in changes[0].describe()
        assert [c["status"] for c in changed.cases()] == ["accepted", "returned"]
        assert len(changed.outbox()) == outbox_before
    finally:
        changed.app.close()


def test_applying_a_replay_updates_the_case_and_queues_the_intakes_mails_once(
    harness: Harness, tmp_path: Path, db_url: str
) -> None:
    seed(harness)
    changed = with_new_rule(harness, tmp_path, db_url)
    try:
        changed.clock.now = jst(2026, 11, 25, 9, 0)
        changes = replay(changed.app, changed.clock(), apply=True)
        changed.app.intake.deliver_outbox()

        by_case = {c.case_no: c for c in changes}
        assert by_case["FE-2026-00002"].applied
        assert by_case["FE-2026-00002"].mails == ("defect_reply", "ops_returned")
        case = changed.cases()[1]
        assert (case["status"], case["defects"], case["return_count"]) == (
            "returned", ["manager_cc_missing", "attachment_missing"], 2,
        )  # fmt: skip
        (reply,) = [m for m in changed.sent_mail("defect_reply") if "FE-2026-00002" in m["Subject"]
                    and "重要事項説明書" in m.get_content()]  # fmt: skip
        assert reply["To"] == "hana@usen.co.jp"
        assert reply["In-Reply-To"] == "<req2@usen.co.jp>"

        again = build_app(load_config(changed.config_path), clock=changed.clock)
        try:
            assert [c.case_no for c in replay(again, changed.clock(), apply=True)] == ["FE-2026-00001"]
        finally:
            again.close()
    finally:
        changed.app.close()


def test_replay_never_takes_back_an_acceptance_by_itself_it_names_the_command_for_a_person(
    harness: Harness, tmp_path: Path, db_url: str
) -> None:
    seed(harness)
    changed = with_new_rule(harness, tmp_path, db_url)
    try:
        [first, _] = replay(changed.app, changed.clock(), apply=True)
        assert first.case_no == "FE-2026-00001" and not first.applied
        assert first.left_alone == "needs_person"
        assert "mailbot cases return" in first.describe()
        assert changed.cases()[0]["status"] == "accepted"
        assert not [m for m in changed.outbox() if m["case_no"] == "FE-2026-00001" and m["kind"] == "defect_reply"]
    finally:
        changed.app.close()


def test_replay_leaves_a_case_a_person_decided_alone(harness: Harness, tmp_path: Path, db_url: str) -> None:
    seed(harness)
    harness.app.desk.accept("FE-2026-00002", by="山田", note="副支店長がCCに入っていたため受付")
    changed = with_new_rule(harness, tmp_path, db_url)
    try:
        mails_before = len(changed.outbox())
        changes = {c.case_no: c for c in replay(changed.app, changed.clock(), apply=True)}
        assert changes["FE-2026-00002"].left_alone == "person" and not changes["FE-2026-00002"].applied
        case = changed.cases()[1]
        assert (case["status"], case["decided_by"]) == ("accepted", "山田")
        assert len(changed.outbox()) == mails_before
    finally:
        changed.app.close()


def test_unis_data_that_moved_on_since_the_decision_is_not_reported_as_a_change(harness: Harness) -> None:
    from tests.fixtures.bot import CUSTOMER

    seed(harness)
    # The brokerage line was confirmed (確定) after acceptance: today's UNIS no longer shows it as 受注.
    harness.import_unis(
        [f"{CUSTOMER},株式会社さくら商事,1,有効,C0001,001,Z200214,NTTフレッツ光取次,確定,2026/12/10,渋谷支店"]
    )
    assert {c["case_no"]: c["status"] for c in harness.cases()}["FE-2026-00001"] == "accepted"
    assert replay(harness.app, harness.clock(), apply=False) == []
