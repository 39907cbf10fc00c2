"""The after-acceptance config: defaults, the desk's mapping, and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailbot.config import ConfigError, load_config
from mailbot.config_after import DEFAULT_PROGRESS_STATUS
from mailbot.domain.lifecycle import PROGRESS_STAGES, Stage

BASE = """
[desk]
address = "f-desk@mxb.usen.co.jp"
internal_domains = ["usen.co.jp"]

[mailbox]
kind = "maildir"
path = "Maildir"

[delivery]
kind = "directory"
path = "outbox"
"""


def write(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "after-config.toml"
    path.write_text(BASE + extra, encoding="utf-8")
    return path


def test_the_defaults_are_the_issues_column_names_and_statuses(tmp_path: Path) -> None:
    after = load_config(write(tmp_path, "")).after
    assert after.progress.columns["p_number"] == "P番号" and after.progress.columns["customer_code"] == "顧客CD"
    assert after.progress.status["工事日確定"] is Stage.CONSTRUCTION_SCHEDULED
    assert (after.notify_completed, after.cancel_days, after.jimu_recipients, after.flows) == (True, 7, (), ())


def test_each_stage_ntts_progress_list_can_report_has_a_default_status_word() -> None:
    assert set(DEFAULT_PROGRESS_STATUS.values()) == set(PROGRESS_STAGES)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('[progress.status]\n"開通" = "opened"\n', r"\[progress.status\] 開通: expected one of entered"),
        ('[progress.columns]\np_numbr = "P番号"\n', r"\[progress.columns\] p_numbr: unknown column"),
        ("[reminders]\ncancel_days = -1\n", r"\[reminders\] cancel_days: must be 0 or more"),
        ('[jimu_center]\nrecipients = ["not-an-address"]\n', r"\[jimu_center\] recipients: expected an e-mail"),
        ('[notices]\ncompleted = "yes"\n', r"\[notices\] completed: expected true or false"),
        ('[[flows]]\nname = "a"\n[[flows]]\nname = "a"\n', r"\[\[flows\]\] #2 name: flow 'a' is configured twice"),
    ],
)
def test_a_wrong_after_acceptance_setting_names_its_table_and_key(tmp_path: Path, extra: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, extra))


def test_the_example_config_ships_the_five_flows_of_the_manual(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILBOT_IMAP_PASSWORD", "x")
    monkeypatch.setenv("MAILBOT_SMTP_PASSWORD", "x")
    config = load_config(Path(__file__).resolve().parents[1] / "config.example.toml")
    names = [f.name for f in config.policy.flows]
    assert len(names) == 5 and all(any(n.startswith(m) for n in names) for m in "①②③④⑤")
    assert config.after.jimu_recipients


@pytest.mark.parametrize("written", ["jimu@usen.co.jp", "<jimu@usen.co.jp>", "事務 <Jimu@usen.co.jp>"])
def test_an_address_reads_the_same_in_desk_and_in_jimu_center(tmp_path: Path, written: str) -> None:
    config = load_config(write(tmp_path, f'[jimu_center]\nrecipients = ["{written}"]\n'))
    desk = load_config(_desk_with(tmp_path, written))
    assert config.after.jimu_recipients == ("jimu@usen.co.jp",)
    assert desk.policy.desk_address == "jimu@usen.co.jp"


@pytest.mark.parametrize("junk", ["jimu", "taro yamada@usen.co.jp", "a@usen.co.jp, b@usen.co.jp"])
def test_an_address_refused_in_desk_is_refused_in_jimu_center_with_the_same_words(tmp_path: Path, junk: str) -> None:
    with pytest.raises(ConfigError, match=r"\[jimu_center\] recipients: expected an e-mail address such as") as jimu:
        load_config(write(tmp_path, f'[jimu_center]\nrecipients = ["{junk}"]\n'))
    with pytest.raises(ConfigError, match=r"\[desk\] address: expected an e-mail address such as") as desk:
        load_config(_desk_with(tmp_path, junk))
    assert str(jimu.value).partition(": expected")[2] == str(desk.value).partition(": expected")[2]


def _desk_with(tmp_path: Path, address: str) -> Path:
    """The base config with ``address`` as [desk] address."""
    path = tmp_path / "desk-config.toml"
    path.write_text(BASE.replace('"f-desk@mxb.usen.co.jp"', f'"{address}"'), encoding="utf-8")
    return path
