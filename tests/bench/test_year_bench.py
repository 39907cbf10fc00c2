"""The year of a desk's generated data speaks the bot's own language."""

from __future__ import annotations

from bench.year_bench import DEFECTS
from mailbot.domain.checks import CHECKS


def test_the_generated_returns_carry_defect_codes_the_checks_report() -> None:
    # Unknown codes were printed raw by the summaries and the board being timed.
    assert set(DEFECTS) <= {check.name for check in CHECKS}
