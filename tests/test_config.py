from pathlib import Path

import pytest

from mailbot.config import ConfigError, load_config

GOOD = """\
[desk]
address = "f-desk@mxb.usen.co.jp"
ops_recipients = ["ops@usen.co.jp"]
internal_domains = ["usen.co.jp"]

[database]
url = "sqlite:///data/mailbot.sqlite3"

[mailbox]
kind = "maildir"
path = "Maildir"

[delivery]
kind = "directory"
path = "outbox"

[[branches]]
name = "渋谷支店"
aliases = ["渋谷"]
region = "首都圏"
managers = ["Shibuya-Mgr@usen.co.jp"]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_good_config_loads_with_paths_relative_to_the_file(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD))
    assert config.policy.desk_address == "f-desk@mxb.usen.co.jp"
    assert config.database_url == f"sqlite:///{tmp_path.resolve()}/data/mailbot.sqlite3"
    assert config.mailbox["path"] == str(tmp_path.resolve() / "Maildir")
    assert config.branches.get("渋谷") is not None
    assert config.branches.branches[0].managers == ("shibuya-mgr@usen.co.jp",)
    assert config.policy.unis_max_wait_hours == 36
    assert config.schedule.timezone == "Asia/Tokyo"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.replace('address = "f-desk@mxb.usen.co.jp"\n', ""), r"\[desk\] address: missing"),
        (lambda t: t.replace('"f-desk@mxb.usen.co.jp"', "42"), r"\[desk\] address: expected"),
        (lambda t: t.replace('"f-desk@mxb.usen.co.jp"', '"not-an-address"'), "expected an e-mail address"),
        (lambda t: t.replace("ops_recipients", "ops_recipient"), r"unknown key \(did you mean ops_recipients\?\)"),
        (lambda t: t.replace('kind = "maildir"', 'kind = "pop3"'), r"\[mailbox\] kind: expected"),
        (lambda t: t.replace('region = "首都圏"', 'region = "九州"'), r"\[\[branches\]\] #1 region"),
        (lambda t: t + "[unis]\nmax_wait_hours = -1\n", r"\[unis\] max_wait_hours: must be more than 0"),
        (lambda t: t + '[[branches]]\nname = "道玄坂支店"\naliases = ["渋谷"]\n', "used by both"),
        (lambda t: t.replace("[database]", "[database\n"), "not valid TOML"),
        (lambda t: t + '[log]\nlevel = "verbose"\n', r"\[log\] level: expected DEBUG, INFO"),
        (lambda t: t.replace("sqlite:///data/mailbot.sqlite3", "mysql://x"), r"\[database\] url: expected a sqlite"),
        (lambda t: t + "[unsi]\nmax_wait_hours = 3\n", r"unknown table \[unsi\] \(did you mean unis\?\)"),
        (
            lambda t: t.replace("internal_domains", "internal_domain"),
            r"internal_domains: missing.*'internal_domain' a typo",
        ),
    ],
)
def test_a_wrong_or_missing_key_is_named_with_the_file(tmp_path: Path, change, message: str) -> None:
    path = write(tmp_path, change(GOOD))
    with pytest.raises(ConfigError, match=message) as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_a_missing_file_says_how_to_give_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="MAILBOT_CONFIG"):
        load_config(tmp_path / "nope.toml")


def test_an_imap_password_comes_from_the_environment_and_its_absence_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    imap = GOOD.replace(
        'kind = "maildir"\npath = "Maildir"',
        'kind = "imap"\nhost = "imap.example.jp"\nusername = "f-desk"\npassword_env = "MAILBOT_TEST_IMAP_PW"',
    )
    monkeypatch.delenv("MAILBOT_TEST_IMAP_PW", raising=False)
    with pytest.raises(ConfigError, match="MAILBOT_TEST_IMAP_PW is not set"):
        load_config(write(tmp_path, imap))
    monkeypatch.setenv("MAILBOT_TEST_IMAP_PW", "secret")
    assert load_config(write(tmp_path, imap)).mailbox_kind == "imap"


def test_the_example_config_in_the_repository_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    example = Path(__file__).resolve().parents[1] / "config.example.toml"
    monkeypatch.setenv("MAILBOT_IMAP_PASSWORD", "x")
    monkeypatch.setenv("MAILBOT_SMTP_PASSWORD", "x")
    config = load_config(example)
    assert config.branches.branches
