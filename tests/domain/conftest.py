"""Prints the fuzz test's figures (how many examples reached the checks) at the end of a run."""

from __future__ import annotations

import sys

import pytest


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    fuzz = sys.modules.get("tests.domain.test_fuzz")
    figures = getattr(fuzz, "FIGURES", None)
    if not figures:
        return
    terminalreporter.section("fuzz figures")
    for key in ("examples", "unparseable", "reached the checks", "properties asserted"):
        terminalreporter.write_line(f"{key}: {figures[key]}")
    reasons = sorted((k for k in figures if k.startswith("reason ")), key=lambda k: -figures[k])
    terminalreporter.write_line("decisions: " + ", ".join(f"{k[7:]} {figures[k]}" for k in reasons))
