"""``mailbot check-connection`` for the mailbox: what the server allows, tried and cleaned up again."""

from __future__ import annotations

import email.utils
import os
import re

from mailbot.adapters.imap.sent import ImapSentFolder
from mailbot.adapters.imap.session import ImapSession
from mailbot.adapters.imap.settings import KEYWORDS, ImapSettings
from mailbot.adapters.oauth2 import CredentialError, token_words
from mailbot.service.ports import AuthenticationFailed, SourceError

__all__ = ["check_connection"]


def _test_message() -> bytes:
    stamp = email.utils.formatdate(localtime=False)
    return (
        b"From: mailbot <mailbot@invalid>\r\n"
        b"To: mailbot <mailbot@invalid>\r\n"
        b"Subject: mailbot check-connection test (removed again)\r\n"
        + f"Date: {stamp}\r\nMessage-ID: <check-{os.urandom(8).hex()}@mailbot.invalid>\r\n".encode()
        + b"\r\nThis message is appended and removed again by `mailbot check-connection`.\r\n"
    )


def _appended_uid(response: object) -> int | None:
    text = response.decode(errors="replace") if isinstance(response, bytes) else str(response)
    match = re.search(r"APPENDUID \d+ (\d+)", text)
    return int(match.group(1)) if match else None


def _remove_test_copy(conn: ImapSession, folder: str, response: object) -> None:
    """Delete the message APPENDed by the check (found by APPENDUID, else by its subject)."""
    client = conn.client()
    conn.select(folder)
    uid = _appended_uid(response)
    uids = [uid] if uid else client.search(["SUBJECT", "mailbot check-connection test"])
    if not uids:
        return
    client.add_flags(uids, [b"\\Deleted"], silent=True)
    if conn.capabilities.uidplus:
        client.uid_expunge(uids)
    else:
        client.expunge()


def _check_keywords(conn: ImapSession, scratch: str) -> tuple[str, bool, str]:
    """Try a keyword STORE on a test message in the scratch folder."""
    client = conn.client()
    keyword = KEYWORDS["accepted"]
    with conn.guard("APPEND", scratch):
        response = client.append(scratch, _test_message())
    conn.select(scratch)
    uid = _appended_uid(response) or max(client.search("ALL"), default=0)
    try:
        with conn.guard("STORE", scratch):
            client.add_flags([uid], [keyword], silent=False)
            stored = keyword.encode() in client.get_flags([uid]).get(uid, ())
        answer = "" if stored else "the keyword was not kept"
    except SourceError as exc:
        stored, answer = False, str(exc).split(" failed: ", 1)[-1]
    if stored and conn.selected_allows_keywords:
        return ("keywords", True, f"custom keywords are kept ({keyword} and the others mark each outcome)")
    why = answer or "PERMANENTFLAGS of the folder has no \\*"
    return (
        "keywords",
        True,
        f"the server refuses custom keywords ({why}); mailbot records each outcome by moving the "
        "message to its folder and in its database only",
    )


def check_connection(settings: ImapSettings, sent_folder: str | None = None) -> list[tuple[str, bool, str]]:
    """Try connect, login, folder selection, CREATE, APPEND and a keyword STORE.

    Returns (step, ok, plain-English detail) each and stops at the first step
    that leaves nothing to try. Whatever the check creates (a scratch folder,
    missing configured folders, a test copy in Sent) is removed again; the
    mail in the mailbox is not touched. ``ok`` is False only where mailbot
    cannot do what the config asks; a refusal mailbot works around (custom
    keywords) is reported in words with ``ok`` True.
    """
    steps: list[tuple[str, bool, str]] = []
    conn = ImapSession(settings, settings.folder)
    try:
        if conn.tokens is not None:
            try:
                conn.tokens.token()
            except CredentialError as exc:
                steps.append(("get token", False, str(exc)))
                return steps
            steps.append(("get token", True, token_words(conn.tokens)))
        try:
            conn.client()
        except AuthenticationFailed as exc:
            steps.append(("connect", True, f"reached {settings.address} ({settings.tls})"))
            steps.append(("login", False, str(exc)))
            return steps
        except SourceError as exc:
            steps.append(("connect", False, str(exc)))
            return steps
        steps.append(("connect", True, f"reached {settings.address} ({settings.tls})"))
        how = " with the token (SASL XOAUTH2 or OAUTHBEARER)" if conn.tokens is not None else ""
        steps.append(("login", True, f"logged in as {settings.username}{how}"))
        try:
            conn.select(readonly=True)
        except SourceError as exc:
            steps.append(("select folder", False, str(exc)))
            return steps
        client = conn.client()
        with conn.guard("counting messages"):
            count = len(client.search("ALL"))
        folder = conn.full_name(settings.folder)
        steps.append(("select folder", True, f"folder {folder!r} has {count} message(s)"))
        prefix, separator = conn.personal_namespace()
        if prefix:
            steps.append(
                (
                    "namespace",
                    True,
                    f"personal namespace {prefix!r} (separator {separator!r}): configured folder names "
                    f"are put under it, e.g. '受付済' is {prefix + '受付済'!r}",
                )
            )
        steps += _check_folders(conn, settings)
        if sent_folder:
            steps.append(_check_sent(conn, settings, sent_folder))
        return steps
    except SourceError as exc:
        steps.append(("error", False, str(exc)))
        return steps
    finally:
        conn.close()


def _try_create(conn: ImapSession, folder: str) -> str | None:
    """CREATE ``folder``; None when it worked, else the server's answer."""
    client = conn.client()
    try:
        with conn.guard("CREATE", folder):
            client.create_folder(folder)
    except SourceError as exc:
        if not conn.connected:
            raise
        return str(exc).split(" failed: ", 1)[-1]
    return None


def _delete(conn: ImapSession, folder: str) -> None:
    client = conn.client()
    with conn.guard("DELETE", folder):
        conn.leave(folder)
        client.delete_folder(folder)


def _check_folders(conn: ImapSession, settings: ImapSettings) -> list[tuple[str, bool, str]]:
    steps: list[tuple[str, bool, str]] = []
    main = conn.full_name(settings.folder)
    for outcome, name in sorted(settings.folders.items()):
        full = conn.full_name(name)
        if full == main:
            continue
        if conn.exists(full):
            steps.append((f"folder {outcome}", True, f"{outcome} mail moves to {full!r} (exists)"))
            continue
        refused = _try_create(conn, full)
        if refused is None:
            _delete(conn, full)
            steps.append(
                (
                    f"folder {outcome}",
                    True,
                    f"{outcome} mail moves to {full!r} (created on first use; CREATE tried and removed)",
                )
            )
        else:
            steps.append(
                (
                    f"folder {outcome}",
                    False,
                    f"the server refuses CREATE {full!r}: {refused}; create it by hand or configure a folder "
                    f"that exists. Until then {outcome} mail stays in {main!r}, its outcome is kept in the "
                    "database and `mailbot status` shows it as a pending mark",
                )
            )
    scratch = conn.full_name(f"mailbot-check-{os.urandom(4).hex()}")
    refused = _try_create(conn, scratch)
    if refused is not None:
        steps.append(("keywords", True, f"not tried: the server refuses CREATE of a scratch folder ({refused})"))
        return steps
    try:
        steps.append(_check_keywords(conn, scratch))
    finally:
        _delete(conn, scratch)
    return steps


def _check_sent(conn: ImapSession, settings: ImapSettings, sent_folder: str) -> tuple[str, bool, str]:
    sent = ImapSentFolder(settings, sent_folder, session=conn)
    target = sent.target()
    if sent.files_itself():
        return (
            "sent folder",
            True,
            f"the server (Gmail) files sent mail in {target!r} itself: mailbot does not APPEND a copy, "
            "and looks there for a Message-ID before any resend",
        )
    created = False
    if not conn.exists(target):
        refused = _try_create(conn, target)
        if refused is not None:
            return (
                "sent folder",
                False,
                f"the server refuses CREATE {target!r}: {refused}; mailbot sends without keeping copies and, "
                "after a failed delivery, cannot prove what was already sent (it resends). Set "
                'save_sent_to to a folder that exists, or "auto"',
            )
        created = True
    client = conn.client()
    conn.leave_if_examined(target)
    try:
        with conn.guard("APPEND", target):
            response = client.append(target, _test_message(), flags=(b"\\Seen",))
    except SourceError as exc:
        if created:
            _delete(conn, target)
        return (
            "sent folder",
            False,
            f"the server refuses APPEND to {target!r} ({str(exc).split(' failed: ', 1)[-1]}); mailbot sends "
            "without keeping copies and cannot prove after a failure what was already sent",
        )
    if created:
        _delete(conn, target)
        how = "created on first use; CREATE and APPEND tried and removed"
    else:
        _remove_test_copy(conn, target, response)
        how = "APPEND tried, test copy removed"
    return ("sent folder", True, f"copies of sent mail go to {target!r} ({how})")
