"""Wiring the app: what building it does to the process."""

from __future__ import annotations

import gc

import pytest

from tests.fixtures.bot import Harness, rebuild


def test_start_up_is_frozen_out_of_the_collectors_sight_once_a_process(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The harness built an app in this process already: start-up is frozen.
    assert gc.get_freeze_count() > 0
    freezes: list[None] = []
    monkeypatch.setattr(gc, "freeze", lambda: freezes.append(None))
    rebuild(harness)
    assert freezes == [], "a second app's objects stay collectable"
