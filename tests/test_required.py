"""A missing corpus or openssl skips locally and fails in CI (MAILBOT_REQUIRE_SERVICES=1)."""

from pathlib import Path

import pytest

from tests import required


def test_a_missing_corpus_fails_when_services_are_required(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(required, "CORPUS", tmp_path / "no-corpus")
    monkeypatch.setenv("MAILBOT_REQUIRE_SERVICES", "1")
    with pytest.raises(pytest.fail.Exception, match="corpus"):
        required.need_corpus()


def test_a_missing_corpus_only_skips_on_a_developers_machine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(required, "CORPUS", tmp_path / "no-corpus")
    monkeypatch.delenv("MAILBOT_REQUIRE_SERVICES", raising=False)
    with pytest.raises(pytest.skip.Exception):
        required.need_corpus()


def test_a_missing_openssl_fails_when_services_are_required(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("MAILBOT_REQUIRE_SERVICES", "1")
    with pytest.raises(pytest.fail.Exception, match="openssl"):
        required.need_openssl()
