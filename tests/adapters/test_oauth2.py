"""Token sources against a real token endpoint on 127.0.0.1 (tests/fixtures/token_endpoint.py).

MSAL, google-auth and a token command each talk to it over HTTPS; nothing is mocked.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mailbot.adapters.oauth2 import (
    GOOGLE_SCOPE,
    CommandTokens,
    CredentialError,
    GoogleTokens,
    MicrosoftTokens,
    OAuth2Settings,
    TokenError,
    command_problem,
    decode_challenge,
    run_secret_command,
)
from tests.fixtures.token_endpoint import SERVICE_ACCOUNT, TokenEndpoint, google_key_file


def microsoft(endpoint: TokenEndpoint, secret: str | None = None) -> OAuth2Settings:
    return OAuth2Settings(
        provider="microsoft",
        tenant=endpoint.tenant,
        client_id=endpoint.client_id,
        client_secret=secret or endpoint.client_secret,
        authority=endpoint.authority,
    )


# -- Microsoft 365 (MSAL) ------------------------------------------------------------------------


def test_msal_gets_a_token_from_the_issuer_it_discovers_and_keeps_it_for_the_next_login(
    token_endpoint: TokenEndpoint,
) -> None:
    tokens = MicrosoftTokens(microsoft(token_endpoint), timeout=5)

    first = tokens.token()
    second = tokens.token()

    assert first == second == token_endpoint.tokens()[0]
    assert len(token_endpoint.issued) == 1, "the second login used MSAL's cache"
    assert token_endpoint.discovery_requests == 1
    assert token_endpoint.issued[0].scope.split() == ["https://outlook.office365.com/.default"]
    assert tokens.expires_in() is not None and 0 < tokens.expires_in() <= 3600  # type: ignore[operator]


def test_msal_asks_again_for_a_token_that_would_expire_within_five_minutes(token_endpoint: TokenEndpoint) -> None:
    # Refreshed before expiry: MSAL counts a token with less than five minutes left as expired.
    token_endpoint.expires_in = 120
    tokens = MicrosoftTokens(microsoft(token_endpoint), timeout=5)

    assert tokens.token() != tokens.token()
    assert len(token_endpoint.issued) == 2


def test_a_fresh_msal_token_is_a_new_one_even_while_the_cached_one_is_valid(token_endpoint: TokenEndpoint) -> None:
    tokens = MicrosoftTokens(microsoft(token_endpoint), timeout=5)
    held = tokens.token()

    assert tokens.fresh() != held
    assert tokens.token() == token_endpoint.tokens()[1]


def test_a_wrong_client_secret_is_one_line_with_the_issuer_s_error_code(token_endpoint: TokenEndpoint) -> None:
    tokens = MicrosoftTokens(microsoft(token_endpoint, secret="rotated-away"), timeout=5)

    with pytest.raises(TokenError) as caught:
        tokens.token()

    message = str(caught.value)
    assert "\n" not in message
    assert "invalid_client" in message and "AADSTS7000215" in message
    assert f"client {token_endpoint.client_id}" in message and "rotated-away" not in message


def test_an_issuer_that_is_not_there_is_one_line_naming_it(token_endpoint: TokenEndpoint) -> None:
    settings = microsoft(token_endpoint)
    token_endpoint.stop()

    with pytest.raises(TokenError) as caught:
        MicrosoftTokens(settings, timeout=5).token()

    assert "\n" not in str(caught.value) and token_endpoint.authority in str(caught.value)


def test_the_client_secret_comes_from_the_environment_variable_the_table_names() -> None:
    table = {"provider": "microsoft", "tenant": "contoso.onmicrosoft.com", "client_id": "c", "client_secret_env": "S"}

    settings = OAuth2Settings.from_table(table, "f-desk@contoso.jp", environ={"S": "the-secret"})

    assert settings.client_secret == "the-secret" and "the-secret" not in repr(settings)
    with pytest.raises(ValueError, match="environment variable S is not set"):
        OAuth2Settings.from_table(table, "f-desk@contoso.jp", environ={})


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ({"provider": "yahoo"}, 'expected "microsoft" or "google"'),
        ({"provider": "microsoft", "client_id": "c"}, "tenant: missing"),
        ({"provider": "google"}, "key_file: missing"),
        ({"provider": "google", "key_file": "k.json", "tenant": "t"}, "unknown key"),
    ],
)
def test_an_incomplete_oauth2_table_says_what_is_missing(table: dict[str, str], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        OAuth2Settings.from_table(table, "f-desk@contoso.jp", environ={})


# -- Google Workspace (service account) ----------------------------------------------------------


def test_a_google_service_account_token_acts_for_the_mailbox_user_with_the_mail_scope(
    token_endpoint: TokenEndpoint, tmp_path: Path
) -> None:
    key_file = google_key_file(token_endpoint, tmp_path)
    settings = OAuth2Settings.from_table({"provider": "google", "key_file": str(key_file)}, "f-desk@usen.example")
    tokens = GoogleTokens(settings, timeout=5)

    token = tokens.token()

    [issued] = token_endpoint.issued
    assert (issued.token, issued.client_id, issued.subject) == (token, SERVICE_ACCOUNT, "f-desk@usen.example")
    assert issued.scope == GOOGLE_SCOPE
    assert tokens.token() == token, "kept while valid"
    assert tokens.fresh() != token


def test_a_google_key_the_issuer_does_not_know_is_one_line_with_its_error(
    token_endpoint: TokenEndpoint, tmp_path: Path
) -> None:
    key_file = google_key_file(token_endpoint, tmp_path)
    token_endpoint.service_accounts.clear()  # the key was deleted in the console
    settings = OAuth2Settings(provider="google", key_file=str(key_file), subject="f-desk@usen.example")

    with pytest.raises(TokenError) as caught:
        GoogleTokens(settings, timeout=5).token()

    assert "\n" not in str(caught.value) and "invalid_grant" in str(caught.value)
    assert SERVICE_ACCOUNT in str(caught.value) or str(key_file) in str(caught.value)


# -- a command -------------------------------------------------------------------------------------


def test_a_token_command_is_run_once_and_again_only_for_a_fresh_token(
    token_endpoint: TokenEndpoint, tmp_path: Path
) -> None:
    tokens = CommandTokens(token_endpoint.token_command(tmp_path), timeout=10)

    first = tokens.token()
    assert tokens.token() == first
    assert tokens.fresh() != first
    assert token_endpoint.tokens() == [first, tokens.token()]


def test_a_failing_token_command_is_one_line_with_its_last_error_line(
    token_endpoint: TokenEndpoint, tmp_path: Path
) -> None:
    tokens = CommandTokens(token_endpoint.token_command(tmp_path, secret="wrong"), timeout=10)

    with pytest.raises(TokenError, match=r"oauth2_token_command failed with exit status 1: AADSTS7000215"):
        tokens.token()


def test_a_secret_command_that_prints_nothing_says_so() -> None:
    with pytest.raises(CredentialError, match="password_command printed nothing"):
        run_secret_command("true", "password_command", 5)


@pytest.mark.parametrize(
    ("command", "problem"),
    [
        ("/nonexistent/get-token --tenant x", "/nonexistent/get-token does not exist"),
        ("no-such-program-for-mailbot", "not found on PATH"),
        ("", "is empty"),
        ("'unclosed", "cannot be split"),
    ],
)
def test_a_command_that_cannot_run_is_named_with_the_reason(command: str, problem: str) -> None:
    found = command_problem(command)
    assert found is not None and problem in found


def test_a_command_file_without_the_execute_bit_is_named(tmp_path: Path) -> None:
    script = tmp_path / "get-token"
    script.write_text("#!/bin/sh\necho t\n")
    script.chmod(0o644)
    if os.access(script, os.X_OK):
        pytest.skip("this user may execute anything (root ignores the bit for files with none)")
    assert command_problem(str(script)) == f"{script} is not executable by this user"
    script.chmod(0o755)
    assert command_problem(f"{script} --flag") is None
    assert command_problem("true") is None


def test_a_server_s_error_challenge_is_read_as_one_line() -> None:
    assert decode_challenge(b'{"status":"401","schemes":"bearer"}') == "status=401, schemes=bearer"
    assert decode_challenge(b"eyJzdGF0dXMiOiI0MDAifQ==") == "status=400"
