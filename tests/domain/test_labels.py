"""Every code a page can show has its Japanese label next to it in the domain.

The codes are collected from where they are made (the triage table, the
decision's quarantine reasons, the desk's resolutions), so a new code without
a label fails here before a clerk reads it raw.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mailbot.domain.checks import CHECK_OF_CODE, CHECK_TOPICS, CHECKS
from mailbot.domain.lifecycle import EVENT_LABELS, REASON_LABELS, STAGES, VERDICT_LABELS, Event, reason_label
from mailbot.domain.model import Disposition
from mailbot.domain.schedule import Week
from mailbot.domain.triage import DISPOSITION_LABELS, RESOLUTION_LABELS, TRIAGE_RULES

SOURCE = Path(__file__).resolve().parents[2] / "mailbot"
SNAKE = re.compile(r"[a-z]+_[a-z_]+")


def _made_in_source(pattern: str) -> set[str]:
    """The string codes a pattern (one group) finds in the package's source."""
    found: set[str] = set()
    for path in SOURCE.rglob("*.py"):
        found.update(re.findall(pattern, path.read_text(encoding="utf-8")))
    return found


def test_every_triage_and_quarantine_reason_has_a_label() -> None:
    reasons = {name for name, _, _ in TRIAGE_RULES} | {"request", "new_request", "resubmission", "released"}
    reasons |= _made_in_source(r'quarantine\("(\w+)"')
    reasons |= _made_in_source(r'reason="(\w+)"')
    assert "outside_domain" in reasons and "too_large" in reasons  # the scan found what it looks for
    assert sorted(reasons - set(REASON_LABELS)) == []


@pytest.mark.parametrize("event", [e for e in Event if e.value not in REASON_LABELS])
def test_an_event_recorded_as_its_own_reason_reads_as_who_set_it_off(event: Event) -> None:
    assert reason_label(event.value, by_person=True) == "デスクの操作"
    assert reason_label(event.value, by_person=False) == "自動処理"


def test_a_reason_no_table_knows_is_never_shown_as_its_code() -> None:
    assert reason_label("some_new_reason") == "その他"
    assert reason_label(None) == ""
    assert reason_label("outside_domain") == "社外からのメール"


def test_every_label_table_covers_its_codes_in_japanese() -> None:
    assert set(EVENT_LABELS) == set(Event)
    assert {d.value for d in Disposition} == set(DISPOSITION_LABELS)
    assert _made_in_source(r'row\.resolution, row\.resolved_by, row\.resolved_at = "(\w+)"') == set(RESOLUTION_LABELS)
    assert {c.name for c in CHECKS} == set(CHECK_TOPICS)
    assert set(CHECK_OF_CODE.values()) <= set(CHECK_TOPICS)
    labels = [
        *REASON_LABELS.values(),
        *EVENT_LABELS.values(),
        *DISPOSITION_LABELS.values(),
        *RESOLUTION_LABELS.values(),
        *CHECK_TOPICS.values(),
        *VERDICT_LABELS.values(),
        *(s.label for s in STAGES.values()),
    ]
    assert [label for label in labels if SNAKE.search(label)] == []


@pytest.mark.parametrize(
    ("week", "label"),
    [
        (Week(2026, 50), "12月7日〜13日"),
        (Week(2026, 48), "11月23日〜29日"),
        (Week(2026, 53), "12月28日〜1月3日"),
    ],
)
def test_a_week_reads_as_its_days_not_its_iso_number(week: Week, label: str) -> None:
    assert week.label_ja == label
