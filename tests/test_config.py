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


def test_under_mailbot_state_dir_the_state_paths_are_relative_to_it_and_the_templates_to_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The container: the config read-only in /config, the state in the volume.
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "templates").mkdir()
    state = tmp_path / "state"
    monkeypatch.setenv("MAILBOT_STATE_DIR", str(state))
    text = GOOD + '[templates]\npath = "templates"\n[storage]\nraw = "directory"\npath = "raw"\n'
    text += '[unis]\nwatch_dir = "unis"\n[progress]\nwatch_dir = "progress"\n'
    config = load_config(write(tmp_path / "config", text))
    assert config.database_url == f"sqlite:///{state.resolve()}/data/mailbot.sqlite3"
    assert config.mailbox["path"] == str(state.resolve() / "Maildir")
    assert config.delivery["path"] == str(state.resolve() / "outbox")
    assert config.storage.path == state.resolve() / "raw"
    assert config.unis_watch_dir == state.resolve() / "unis"
    assert config.after.progress.watch_dir == state.resolve() / "progress"
    assert config.templates_path == (tmp_path / "config" / "templates").resolve()


def test_an_absolute_path_stays_where_it_is_under_mailbot_state_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAILBOT_STATE_DIR", str(tmp_path / "state"))
    config = load_config(write(tmp_path, GOOD.replace('path = "Maildir"', f'path = "{tmp_path}/mail"')))
    assert config.mailbox["path"] == str(tmp_path.resolve() / "mail")


def test_the_workbench_listens_where_mailbot_web_host_says_unless_the_file_names_a_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert load_config(write(tmp_path, GOOD)).web.host == "127.0.0.1"
    monkeypatch.setenv("MAILBOT_WEB_HOST", "0.0.0.0")  # the container image's
    assert load_config(write(tmp_path, GOOD)).web.host == "0.0.0.0"
    assert load_config(write(tmp_path, GOOD + '[web]\nhost = "127.0.0.1"\n')).web.host == "127.0.0.1"


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
        (
            lambda t: t + '[[branches]]\nname = "道玄坂支店"\naliases = ["渋谷"]\nmanagers = ["d@usen.co.jp"]\n',
            "used by both",
        ),
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
    assert config.web.base_url.startswith("https://") and config.web.secret_env == "MAILBOT_WEB_SECRET"


# --- issue 9: values that silently changed decisions are refused by key -----------


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ('"<shibuya-mgr@usen.co.jp>"', "shibuya-mgr@usen.co.jp"),
        ('"渋谷支店長 <Shibuya-Mgr@usen.co.jp>"', "shibuya-mgr@usen.co.jp"),
        ('"\\"Mgr, Shibuya\\" <shibuya-mgr@usen.co.jp>"', "shibuya-mgr@usen.co.jp"),
    ],
)
def test_a_manager_in_angle_brackets_or_with_a_display_name_is_read_as_its_address(
    tmp_path: Path, written: str, expected: str
) -> None:
    config = load_config(write(tmp_path, GOOD.replace('"Shibuya-Mgr@usen.co.jp"', written)))
    assert config.branches.branches[0].managers == (expected,)


@pytest.mark.parametrize(
    "junk",
    ["shibuya-mgr", "a@usen.co.jp, b@usen.co.jp", "<>", "taro yamada@usen.co.jp", "x@", "@usen.co.jp", "x@-bad-.jp"],
)
def test_junk_in_an_address_is_refused_naming_the_key(tmp_path: Path, junk: str) -> None:
    with pytest.raises(ConfigError, match=r"\[\[branches\]\] #1 managers: expected an e-mail address"):
        load_config(write(tmp_path, GOOD.replace("Shibuya-Mgr@usen.co.jp", junk)))


def test_a_branch_without_managers_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"#1 managers: 渋谷支店 needs at least one manager"):
        load_config(write(tmp_path, GOOD.replace('managers = ["Shibuya-Mgr@usen.co.jp"]\n', "")))
    with pytest.raises(ConfigError, match=r"#1 managers: 渋谷支店 needs at least one manager"):
        load_config(write(tmp_path, GOOD.replace('["Shibuya-Mgr@usen.co.jp"]', '[""]')))


@pytest.mark.parametrize("name", ['""', '"   "'])
def test_a_branch_with_an_empty_name_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigError, match=r"\[\[branches\]\] #1 name: must not be empty"):
        load_config(write(tmp_path, GOOD.replace('name = "渋谷支店"', f"name = {name}")))


@pytest.mark.parametrize(
    ("domain", "hint"),
    [
        ("taro@usen.co.jp", 'write the domain alone: "usen.co.jp"'),
        ("@usen.co.jp", 'write the domain alone: "usen.co.jp"'),
        ("*.usen.co.jp", 'no wildcards: "usen.co.jp"'),
        ("usen co jp", ""),
        ("", "must name at least one domain"),
    ],
)
def test_internal_domains_must_be_domain_names(tmp_path: Path, domain: str, hint: str) -> None:
    with pytest.raises(ConfigError, match=r"\[desk\] internal_domains: ") as info:
        load_config(write(tmp_path, GOOD.replace('["usen.co.jp"]', f'["{domain}"]')))
    assert hint in str(info.value)


def test_internal_domains_accept_subdomains_and_japanese_domain_names(tmp_path: Path) -> None:
    config = load_config(
        write(tmp_path, GOOD.replace('["usen.co.jp"]', '["usen.co.jp", "MXB.Usen.co.jp.", "日本.jp"]'))
    )
    assert config.policy.internal_domains == ("usen.co.jp", "mxb.usen.co.jp", "日本.jp")


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ("[unis]\nmax_wait_hours = nan\n", r"\[unis\] max_wait_hours: expected a finite number"),
        ("[unis]\nmax_wait_hours = inf\n", r"\[unis\] max_wait_hours: expected a finite number"),
        ("[unis]\nmax_wait_hours = 0\n", r"\[unis\] max_wait_hours: must be more than 0"),
        ("[schedule]\npoll_seconds = 99999999999999\n", r"\[schedule\] poll_seconds: must be from 5 to 86400"),
        ("[schedule]\npoll_seconds = 0\n", r"\[schedule\] poll_seconds: must be at least 5"),
        ("[schedule]\noutbox_retry_seconds = -5\n", r"\[schedule\] outbox_retry_seconds: must be from 1"),
        ("[schedule]\nrecheck_minutes = 0\n", r"\[schedule\] recheck_minutes: must be from 1"),
        ("[limits]\nmax_attachments = 0\n", r"\[limits\] max_attachments: must be from 1"),
        ("[limits]\nmax_total_attachment_bytes = -1\n", r"\[limits\] max_total_attachment_bytes: must be from 1"),
        ("[limits]\nmax_zip_ratio = 0\n", r"\[limits\] max_zip_ratio: must be from 1"),
        ("[customer_code]\ndigits = 0\n", r"\[customer_code\] digits: must be from 1 to 30"),
    ],
)
def test_numbers_must_be_finite_and_in_range(tmp_path: Path, extra: str, key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        load_config(write(tmp_path, GOOD + extra))


def test_a_zero_reply_cap_or_a_nan_timeout_is_refused(tmp_path: Path) -> None:
    capped = GOOD.replace(
        'internal_domains = ["usen.co.jp"]', 'internal_domains = ["usen.co.jp"]\nmax_replies_per_sender_per_hour = 0'
    )
    with pytest.raises(ConfigError, match=r"\[desk\] max_replies_per_sender_per_hour: must be from 1"):
        load_config(write(tmp_path, capped))
    smtp = GOOD.replace(
        'kind = "directory"\npath = "outbox"', 'kind = "smtp"\nhost = "relay.usen.co.jp"\ntimeout_seconds = nan'
    )
    with pytest.raises(ConfigError, match=r"\[delivery\] timeout_seconds: expected a finite number"):
        load_config(write(tmp_path, smtp))


# --- issue 12: where raw mail is kept, and for how long ----------------------------


def test_raw_mail_is_in_the_database_and_kept_for_ever_unless_the_config_says_otherwise(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD))
    assert (config.storage.raw, config.storage.path) == ("database", None)
    assert (config.retention.raw_days, config.retention.attachments_days, config.retention.active) == (
        None,
        None,
        False,
    )
    text = GOOD + '[storage]\nraw = "directory"\npath = "raw"\n[retention]\nraw_days = 365\nattachments_days = 90\n'
    config = load_config(write(tmp_path, text))
    assert (config.storage.raw, config.storage.path) == ("directory", tmp_path.resolve() / "raw")
    assert (config.retention.raw_days, config.retention.attachments_days) == (365, 90)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('[storage]\nraw = "files"\n', r'\[storage\] raw: expected "database" or "directory", got \'files\''),
        ('[storage]\nraw = "directory"\n', r'\[storage\] path: missing; raw = "directory" needs the directory'),
        ('[storage]\nraw = "directory"\npath = "config.toml"\n', r"\[storage\] path: expected a directory"),
        ("[storage]\nraw_path = 1\n", r"\[storage\] raw_path: unknown key"),
        ("[retention]\nraw_days = 0\n", r"\[retention\] raw_days: must be from 1 to 36500 days, got 0"),
        ("[retention]\nraw_days = 30.5\n", r"\[retention\] raw_days: expected a whole number"),
        ("[retention]\nattachments_days = -1\n", r"\[retention\] attachments_days: must be from 1"),
        (
            "[retention]\nraw_days = 30\nattachments_days = 90\n",
            r"\[retention\] attachments_days: must not be more than raw_days \(30\)",
        ),
        ("[retention]\nraw_day = 30\n", r"\[retention\] raw_day: unknown key \(did you mean raw_days\?\)"),
        (
            "[summary]\nlist_open_returns_days = 0\n",
            r"\[summary\] list_open_returns_days: must be from 1 to 36500 days",
        ),
        ('[summary]\nlist_open_returns_days = "90"\n', r"\[summary\] list_open_returns_days: expected a whole number"),
        ("[summary]\nlist_open_returns_day = 90\n", r"\[summary\] list_open_returns_day: unknown key \(did you mean"),
    ],
)
def test_a_wrong_storage_retention_or_summary_key_is_one_line_naming_it(
    tmp_path: Path, extra: str, message: str
) -> None:
    path = write(tmp_path, GOOD + extra)
    with pytest.raises(ConfigError, match=message) as info:
        load_config(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


# --- the weekly summary: how far back a branch's open returns are listed -------------


def test_a_branch_summary_lists_open_returns_of_90_days_unless_the_config_says_otherwise(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, GOOD)).summary.list_open_returns_days == 90
    config = load_config(write(tmp_path, GOOD + "[summary]\nlist_open_returns_days = 30\n"))
    assert config.summary.list_open_returns_days == 30


def test_unis_columns_rename_the_exports_headers_and_refuse_an_unknown_key(tmp_path: Path) -> None:
    from tests.test_config_after import write

    config = load_config(write(tmp_path, '[unis.columns]\norder_date = "受注日"\n'))
    assert dict(config.unis_columns) == {"order_date": "受注日"}
    with pytest.raises(ConfigError, match=r"\[unis.columns\] order_day: unknown column; expected one of customer_code"):
        load_config(write(tmp_path, '[unis.columns]\norder_day = "受注日"\n'))
    with pytest.raises(ConfigError, match=r"\[unis.columns\] remark: expected the column's header text"):
        load_config(write(tmp_path, "[unis.columns]\nremark = 3\n"))


# --- issue 20: OAuth2 and credential commands for [mailbox] and [delivery] --------------

IMAP = 'kind = "imap"\nhost = "outlook.office365.com"\nusername = "f-desk@usen.co.jp"\n'
SMTP = 'kind = "smtp"\nhost = "smtp.office365.com"\nport = 587\ntls = "starttls"\n'
MICROSOFT = (
    'oauth2 = { provider = "microsoft", tenant = "usen.onmicrosoft.com", '
    'client_id = "11111111-2222-3333-4444-555555555555", client_secret_env = "MAILBOT_TEST_CLIENT_SECRET" }\n'
)


def with_mailbox(table: str) -> str:
    return GOOD.replace('kind = "maildir"\npath = "Maildir"\n', table)


def with_delivery(table: str) -> str:
    return GOOD.replace('kind = "directory"\npath = "outbox"\n', table)


def test_a_microsoft_365_mailbox_and_relay_load_with_the_client_secret_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mailbot.bootstrap import imap_settings, smtp_settings

    monkeypatch.setenv("MAILBOT_TEST_CLIENT_SECRET", "s3cret")
    text = with_delivery(SMTP + 'username = "f-desk@usen.co.jp"\n' + MICROSOFT)
    config = load_config(write(tmp_path, with_mailbox(IMAP + MICROSOFT)))
    assert imap_settings(config).oauth2 is not None
    config = load_config(write(tmp_path, text))
    smtp = smtp_settings(config)
    assert smtp.oauth2 is not None and smtp.oauth2.client_secret == "s3cret" and smtp.oauth2.tenant.startswith("usen")
    monkeypatch.delenv("MAILBOT_TEST_CLIENT_SECRET")
    with pytest.raises(ConfigError, match=r"\[delivery.oauth2\] client_secret_env: environment variable .* not set"):
        load_config(write(tmp_path, text))


def test_a_google_key_file_is_found_relative_to_the_config_file(tmp_path: Path) -> None:
    from mailbot.bootstrap import imap_settings

    google = 'oauth2 = { provider = "google", key_file = "keys/sa.json" }\n'
    with pytest.raises(ConfigError, match=r"\[mailbox.oauth2\] key_file: .*keys/sa.json does not exist"):
        load_config(write(tmp_path, with_mailbox(IMAP + google)))
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "sa.json").write_text("{}")
    oauth2 = imap_settings(load_config(write(tmp_path, with_mailbox(IMAP + google)))).oauth2
    assert oauth2 is not None
    assert (oauth2.key_file, oauth2.subject) == (str(tmp_path.resolve() / "keys" / "sa.json"), "f-desk@usen.co.jp")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            with_mailbox(IMAP + 'oauth2_token_command = "/nonexistent/get-token --tenant usen"\n'),
            r"\[mailbox\] oauth2_token_command: cannot be run: /nonexistent/get-token does not exist$",
        ),
        (
            with_mailbox(IMAP + 'password_command = ["no-such-vault-for-mailbot", "show", "imap"]\n'),
            r"\[mailbox\] password_command: cannot be run: 'no-such-vault-for-mailbot' is not found on PATH",
        ),
        (
            with_delivery(SMTP + 'username = "f-desk@usen.co.jp"\npassword_command = "/nonexistent/pw"\n'),
            r"\[delivery\] password_command: cannot be run: /nonexistent/pw does not exist",
        ),
        (
            with_delivery(SMTP + 'oauth2_token_command = "true"\n'),
            r"\[delivery\] username: missing; oauth2_token_command needs the user to log in as",
        ),
        (
            with_delivery(SMTP + 'username = "u"\npassword_command = "true"\noauth2_token_command = "true"\n'),
            r"\[delivery\] oauth2_token_command: give only one way to log in, not password_command and",
        ),
        (
            with_mailbox(IMAP + 'oauth2 = { provider = "yahoo" }\n'),
            r'\[mailbox.oauth2\] provider: expected "microsoft" or "google"',
        ),
        (
            with_mailbox(IMAP + 'oauth2 = { provider = "google", key_file = "k.json", tenant = "x" }\n'),
            r"\[mailbox.oauth2\] (key_file|tenant)",
        ),
        (
            with_mailbox(IMAP + 'oauth2 = { provider = "microsoft", tenant = "t", client_id = "c" }\n'),
            r"\[mailbox.oauth2\] client_secret_env: missing",
        ),
        (
            with_mailbox(
                IMAP + 'oauth2 = { provider = "microsoft", tenant = "t", client_id = "c", '
                'client_secret_env = "HOME", authority = "http://127.0.0.1/t" }\n'
            ),
            r"\[mailbox.oauth2\] authority: expected the issuer's https:// address",
        ),
    ],
)
def test_a_login_that_cannot_work_is_refused_in_one_line_naming_the_key(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        load_config(write(tmp_path, text))
    assert "\n" not in str(caught.value)


def test_an_executable_token_command_is_accepted(tmp_path: Path) -> None:
    script = tmp_path / "get-token"
    script.write_text("#!/bin/sh\necho token\n")
    script.chmod(0o755)
    config = load_config(write(tmp_path, with_mailbox(IMAP + f'oauth2_token_command = "{script} --for imap"\n')))
    assert config.mailbox["oauth2_token_command"] == f"{script} --for imap"


def test_the_configured_timezone_is_the_one_the_mail_uses(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD + '\n[schedule]\ntimezone = "Europe/Berlin"\n'))
    assert str(config.policy.tz) == "Europe/Berlin"
    assert str(load_config(write(tmp_path, GOOD)).policy.tz) == "Asia/Tokyo"
