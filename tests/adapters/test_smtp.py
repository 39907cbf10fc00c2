"""SmtpDelivery against a real SMTP server (aiosmtpd on 127.0.0.1), no smtplib mocks."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from pathlib import Path

import pytest

from mailbot.adapters.oauth2 import OAuth2Settings
from mailbot.adapters.smtp import (
    PartialDeliveryError,
    SmtpDelivery,
    SmtpSettings,
    check_connection,
)
from mailbot.service.ports import (
    Delivery,
    OutgoingMail,
    PermanentDeliveryError,
    TemporaryDeliveryError,
)
from tests.fixtures.smtp_sink import SmtpSink, TestCertificate
from tests.fixtures.token_endpoint import TokenEndpoint, google_key_file

SUBJECT = "Re: 【フレッツ光】お申込み内容の確認 (受付番号 A-1234)"
BODY = "山田様\n\nお申込みを受け付けました。\n.この行はドットで始まります\n\nf-desk\n"


def make_mail(
    n: int = 1,
    to: tuple[str, ...] = ("yamada@example.jp",),
    cc: tuple[str, ...] = (),
    sender: str = "f-desk@example.co.jp",
) -> OutgoingMail:
    msg = EmailMessage()
    msg["From"] = f"f-desk <{sender}>"
    msg["To"] = ", ".join(to)
    if cc:
        msg["Cc"] = ", ".join(cc)
    msg["Subject"] = SUBJECT
    msg["Message-ID"] = f"<reply-{n}@mailbot.example.co.jp>"
    msg["In-Reply-To"] = f"<request-{n}@customer.example.jp>"
    msg["References"] = f"<request-{n}@customer.example.jp>"
    # 8bit on purpose: the body must survive BODY=8BITMIME and dot-stuffing.
    msg.set_content(BODY, charset="utf-8", cte="8bit")
    return OutgoingMail(
        message_id=msg["Message-ID"],
        sender=sender,
        recipients=(*to, *cc),
        raw=msg.as_bytes(policy=SMTP_POLICY),
    )


def settings_for(sink: SmtpSink, **overrides: object) -> SmtpSettings:
    values: dict[str, object] = {
        "host": sink.host,
        "port": sink.port,
        "tls": "none",
        "timeout_seconds": 5.0,
        "local_hostname": "mailbot.test",
    }
    values.update(overrides)
    return SmtpSettings(**values)  # type: ignore[arg-type]


class FakeSentCopies:
    """An in-memory Sent folder: the seam SmtpDelivery writes copies through."""

    def __init__(self, fail_append: bool = False) -> None:
        self.appended: list[bytes] = []
        self.commands = 0  # APPEND commands, one for a whole run of mails
        self.fail_append = fail_append

    def append_many(self, raws: Sequence[bytes]) -> None:
        if self.fail_append:
            raise ConnectionError("IMAP server went away")
        self.commands += 1
        self.appended.extend(raws)

    def contains(self, message_ids: Iterable[str]) -> set[str]:
        stored = {
            line.split(b":", 1)[1].strip().decode()
            for raw in self.appended
            for line in raw.splitlines()
            if line.lower().startswith(b"message-id:")
        }
        return {m for m in message_ids if m in stored}


@pytest.fixture
def open_delivery() -> Iterator[Callable[..., SmtpDelivery]]:
    """Build deliveries that are closed after the test, so no socket leaks."""
    opened: list[SmtpDelivery] = []

    def make(settings: SmtpSettings, sent_folder: FakeSentCopies | None = None) -> SmtpDelivery:
        opened.append(SmtpDelivery(settings, sent_folder=sent_folder))
        return opened[-1]

    yield make
    for d in opened:
        d.close()


@pytest.fixture
def delivery(smtp_sink: SmtpSink, open_delivery: Callable[..., SmtpDelivery]) -> SmtpDelivery:
    return open_delivery(settings_for(smtp_sink))


# -- delivery -----------------------------------------------------------------


def test_smtp_delivery_satisfies_the_delivery_port(delivery: SmtpDelivery) -> None:
    port: Delivery = delivery
    assert port.already_sent(["<x@y>"]) == set()


def test_a_mail_arrives_with_exactly_its_bytes_and_envelope(smtp_sink: SmtpSink, delivery: SmtpDelivery) -> None:
    mail = make_mail(to=("yamada@example.jp",), cc=("sato@example.jp", "ops@example.co.jp"))

    delivery.send(mail)

    [got] = smtp_sink.wait_for(1)
    assert got.raw == mail.raw
    assert got.mail_from == "f-desk@example.co.jp"
    assert got.rcpt_tos == ("yamada@example.jp", "sato@example.jp", "ops@example.co.jp")
    assert got.message["Message-ID"] == "<reply-1@mailbot.example.co.jp>"
    assert got.message["In-Reply-To"] == "<request-1@customer.example.jp>"
    assert got.message["Subject"].isascii(), "subject must travel RFC 2047-encoded"
    assert str(make_header(decode_header(got.message["Subject"]))) == SUBJECT
    body = got.message.get_payload(decode=True)
    assert isinstance(body, bytes)
    assert body.decode("utf-8").replace("\r\n", "\n") == BODY


def test_a_batch_of_mails_reuses_one_connection(smtp_sink: SmtpSink, delivery: SmtpDelivery) -> None:
    for n in range(1, 4):
        delivery.send(make_mail(n))

    got = smtp_sink.wait_for(3)
    assert [m.message["Message-ID"] for m in got] == [f"<reply-{n}@mailbot.example.co.jp>" for n in (1, 2, 3)]
    assert smtp_sink.connections == 1


def test_a_4xx_reply_is_temporary_and_the_next_attempt_succeeds(smtp_sink: SmtpSink, delivery: SmtpDelivery) -> None:
    smtp_sink.refuse_next(1, code=451, text="4.3.0 Mailbox busy, try later")
    mail = make_mail()

    with pytest.raises(TemporaryDeliveryError) as caught:
        delivery.send(mail)
    assert "451" in str(caught.value)
    assert "Mailbox busy" in str(caught.value)
    assert mail.message_id in str(caught.value)

    delivery.send(mail)
    assert smtp_sink.wait_for(1)[0].raw == mail.raw


def test_a_4xx_refusal_of_every_recipient_is_temporary(smtp_sink: SmtpSink, delivery: SmtpDelivery) -> None:
    smtp_sink.refuse_next(2, code=450, text="4.2.1 Greylisted", at="rcpt")

    with pytest.raises(TemporaryDeliveryError, match=r"450 4\.2\.1 Greylisted"):
        delivery.send(make_mail(to=("a@example.jp", "b@example.jp")))
    assert smtp_sink.messages == []


def test_a_5xx_reply_is_permanent_and_quotes_the_server(smtp_sink: SmtpSink, delivery: SmtpDelivery) -> None:
    smtp_sink.refuse_always(554, "5.7.1 Message rejected as spam")

    with pytest.raises(PermanentDeliveryError, match=r"554 5\.7\.1 Message rejected as spam"):
        delivery.send(make_mail())


def test_every_recipient_refused_with_5xx_is_permanent(smtp_sink: SmtpSink, delivery: SmtpDelivery) -> None:
    smtp_sink.refuse_always(550, "5.1.1 User unknown", at="rcpt")

    with pytest.raises(PermanentDeliveryError) as caught:
        delivery.send(make_mail(to=("nobody@example.jp",)))
    assert "nobody@example.jp: 550 5.1.1 User unknown" in str(caught.value)
    assert not isinstance(caught.value, PartialDeliveryError)


def test_a_delivery_error_after_a_refusal_does_not_poison_the_connection(
    smtp_sink: SmtpSink, delivery: SmtpDelivery
) -> None:
    smtp_sink.refuse_next(1, code=554, text="5.7.1 No")
    with pytest.raises(PermanentDeliveryError):
        delivery.send(make_mail(1))

    delivery.send(make_mail(2))

    assert smtp_sink.wait_for(1)[0].message["Message-ID"] == "<reply-2@mailbot.example.co.jp>"
    assert smtp_sink.connections == 1


def test_partial_refusal_is_permanent_names_the_refused_and_says_the_others_got_it(
    smtp_sink: SmtpSink, open_delivery: Callable[..., SmtpDelivery]
) -> None:
    folder = FakeSentCopies()
    delivery = open_delivery(settings_for(smtp_sink), sent_folder=folder)
    smtp_sink.refuse_recipient("gone@example.jp", 550, "5.1.1 Mailbox unavailable")
    mail = make_mail(to=("yamada@example.jp",), cc=("gone@example.jp",))

    with pytest.raises(PartialDeliveryError) as caught:
        delivery.send(mail)
    delivery.close()

    error = caught.value
    assert isinstance(error, PermanentDeliveryError)
    assert error.refused == {"gone@example.jp": (550, "5.1.1 Mailbox unavailable")}
    assert error.delivered == ("yamada@example.jp",)
    assert "gone@example.jp: 550 5.1.1 Mailbox unavailable" in str(error)
    assert "WAS handed over for yamada@example.jp" in str(error)
    [got] = smtp_sink.wait_for(1)
    assert got.rcpt_tos == ("yamada@example.jp",)
    assert folder.appended == [mail.raw], "it did go out, so the Sent folder keeps a copy"


def test_a_mail_without_recipients_is_refused_without_connecting(smtp_sink: SmtpSink, delivery: SmtpDelivery) -> None:
    mail = OutgoingMail(message_id="<x@y>", sender="a@example.jp", recipients=(), raw=b"x\r\n")

    with pytest.raises(PermanentDeliveryError, match="no envelope recipients"):
        delivery.send(mail)
    assert smtp_sink.connections == 0


def test_a_non_ascii_address_is_sent_with_smtputf8(smtp_sink: SmtpSink, delivery: SmtpDelivery) -> None:
    delivery.send(make_mail(to=("受付@例え.jp",)))

    assert smtp_sink.wait_for(1)[0].rcpt_tos == ("受付@例え.jp",)


# -- connection trouble -------------------------------------------------------


def test_a_server_that_is_down_is_temporary(smtp_sink: SmtpSink, open_delivery: Callable[..., SmtpDelivery]) -> None:
    smtp_sink.stop()
    delivery = open_delivery(settings_for(smtp_sink))

    with pytest.raises(TemporaryDeliveryError, match="onnection refused"):
        delivery.send(make_mail())


def test_after_the_server_comes_back_the_same_delivery_object_works_again(
    smtp_sink: SmtpSink, delivery: SmtpDelivery
) -> None:
    delivery.send(make_mail(1))
    smtp_sink.stop()

    with pytest.raises(TemporaryDeliveryError):
        delivery.send(make_mail(2))

    smtp_sink.start()
    delivery.send(make_mail(2))
    assert [m.message["Message-ID"] for m in smtp_sink.wait_for(2)] == [
        "<reply-1@mailbot.example.co.jp>",
        "<reply-2@mailbot.example.co.jp>",
    ]


def test_a_connection_dropped_between_mails_is_reopened_without_an_error(
    smtp_sink: SmtpSink, delivery: SmtpDelivery
) -> None:
    delivery.send(make_mail(1))
    smtp_sink.restart()  # kills the idle connection, like a server-side idle timeout

    delivery.send(make_mail(2))

    assert len(smtp_sink.wait_for(2)) == 2
    assert smtp_sink.connections == 2


def test_a_quiet_open_connection_is_used_again_without_a_noop_round_trip(
    smtp_sink: SmtpSink, delivery: SmtpDelivery, monkeypatch: pytest.MonkeyPatch
) -> None:
    delivery.send(make_mail(1))
    client = delivery._client
    assert client is not None

    def no_probe() -> tuple[int, bytes]:
        raise AssertionError("a NOOP for a connection the server said nothing on")

    monkeypatch.setattr(client, "noop", no_probe)
    delivery.send(make_mail(2))

    assert len(smtp_sink.wait_for(2)) == 2
    assert smtp_sink.connections == 1


def test_a_server_that_never_answers_times_out_as_temporary(
    open_delivery: Callable[..., SmtpDelivery],
) -> None:
    with socket.socket() as mute:
        # Accepts connections (the kernel does) but never sends a greeting.
        mute.bind(("127.0.0.1", 0))
        mute.listen()
        port = mute.getsockname()[1]
        delivery = open_delivery(SmtpSettings(host="127.0.0.1", port=port, tls="none", timeout_seconds=0.3))
        with pytest.raises(TemporaryDeliveryError, match="timed out"):
            delivery.send(make_mail())


def test_starttls_against_a_server_without_it_is_temporary_not_cleartext(
    smtp_sink: SmtpSink, open_delivery: Callable[..., SmtpDelivery]
) -> None:
    delivery = open_delivery(settings_for(smtp_sink, tls="starttls"))

    with pytest.raises(TemporaryDeliveryError, match="STARTTLS"):
        delivery.send(make_mail())
    assert smtp_sink.messages == []


# -- TLS ----------------------------------------------------------------------


@pytest.fixture
def trusted(smtp_test_certificate: TestCertificate, monkeypatch: pytest.MonkeyPatch) -> None:
    # ssl.create_default_context() honours SSL_CERT_FILE, as it would in production.
    monkeypatch.setenv("SSL_CERT_FILE", str(smtp_test_certificate.certfile))


@pytest.mark.parametrize("mode", ["starttls", "ssl"])
def test_mail_goes_through_tls_when_the_certificate_is_trusted(
    smtp_sink: SmtpSink,
    smtp_test_certificate: TestCertificate,
    trusted: None,
    mode: str,
    open_delivery: Callable[..., SmtpDelivery],
) -> None:
    cert = smtp_test_certificate
    smtp_sink.use_tls(mode, cert.certfile, cert.keyfile)  # type: ignore[arg-type]
    delivery = open_delivery(settings_for(smtp_sink, tls=mode))
    mail = make_mail()

    delivery.send(mail)
    delivery.close()

    assert smtp_sink.wait_for(1)[0].raw == mail.raw


@pytest.mark.parametrize("mode", ["starttls", "ssl"])
def test_an_untrusted_certificate_stops_delivery_before_any_mail_is_sent(
    smtp_sink: SmtpSink,
    smtp_test_certificate: TestCertificate,
    mode: str,
    open_delivery: Callable[..., SmtpDelivery],
) -> None:
    cert = smtp_test_certificate
    smtp_sink.use_tls(mode, cert.certfile, cert.keyfile)  # type: ignore[arg-type]
    delivery = open_delivery(settings_for(smtp_sink, tls=mode))

    with pytest.raises(TemporaryDeliveryError, match="certificate"):
        delivery.send(make_mail())
    assert smtp_sink.messages == []


def test_check_connection_reports_the_starttls_step_and_tls_version(
    smtp_sink: SmtpSink, smtp_test_certificate: TestCertificate, trusted: None
) -> None:
    cert = smtp_test_certificate
    smtp_sink.use_tls("starttls", cert.certfile, cert.keyfile)

    report = check_connection(settings_for(smtp_sink, tls="starttls"))

    assert [(step, ok) for step, ok, _ in report] == [
        (f"Connect to 127.0.0.1:{smtp_sink.port}", True),
        ("Say hello (EHLO mailbot.test)", True),
        ("Switch to encryption (STARTTLS)", True),
    ]
    assert report[2][2].startswith("220 ") and "TLSv1" in report[2][2]


def test_check_connection_over_implicit_tls_names_the_tls_version(
    smtp_sink: SmtpSink, smtp_test_certificate: TestCertificate, trusted: None
) -> None:
    cert = smtp_test_certificate
    smtp_sink.use_tls("ssl", cert.certfile, cert.keyfile)

    report = check_connection(settings_for(smtp_sink, tls="ssl"))

    assert report[0][0] == f"Connect to 127.0.0.1:{smtp_sink.port} over TLS"
    assert report[0][1] and "TLSv1" in report[0][2]
    assert all(ok for _, ok, _ in report)


def test_check_connection_explains_an_untrusted_certificate(
    smtp_sink: SmtpSink, smtp_test_certificate: TestCertificate
) -> None:
    cert = smtp_test_certificate
    smtp_sink.use_tls("starttls", cert.certfile, cert.keyfile)

    step, ok, detail = check_connection(settings_for(smtp_sink, tls="starttls"))[-1]

    assert (step, ok) == ("Switch to encryption (STARTTLS)", False)
    assert "certificate" in detail


# -- authentication -----------------------------------------------------------


def test_login_with_the_right_password_lets_mail_through(
    smtp_sink: SmtpSink, open_delivery: Callable[..., SmtpDelivery]
) -> None:
    smtp_sink.require_auth("fdesk", "s3cret!pass")
    delivery = open_delivery(settings_for(smtp_sink, username="fdesk", password="s3cret!pass"))

    delivery.send(make_mail())
    delivery.close()

    assert len(smtp_sink.wait_for(1)) == 1
    assert any(ok for _, ok in smtp_sink.auth_attempts)


def test_a_wrong_password_keeps_the_mail_queued_with_the_535_reply(
    smtp_sink: SmtpSink, open_delivery: Callable[..., SmtpDelivery]
) -> None:
    # A rotated password must not fail every queued reply for good.
    smtp_sink.require_auth("fdesk", "right")
    delivery = open_delivery(settings_for(smtp_sink, username="fdesk", password="wrong"))

    with pytest.raises(TemporaryDeliveryError, match="535") as caught:
        delivery.send(make_mail())
    assert "wrong" not in str(caught.value)
    assert smtp_sink.messages == []


def test_sending_without_login_to_a_server_that_demands_it_keeps_the_mail_queued(
    smtp_sink: SmtpSink, open_delivery: Callable[..., SmtpDelivery]
) -> None:
    smtp_sink.require_auth("fdesk", "right")
    delivery = open_delivery(settings_for(smtp_sink))

    with pytest.raises(TemporaryDeliveryError, match="530"):
        delivery.send(make_mail())


# -- settings -----------------------------------------------------------------


@pytest.mark.parametrize("host", ["smtp.example.co.jp", "192.0.2.10", "10.0.0.1", "localhost.evil"])
def test_cleartext_to_a_non_loopback_host_is_refused_when_settings_are_built(host: str) -> None:
    with pytest.raises(ValueError, match="cleartext") as caught:
        SmtpSettings(host=host, port=25, tls="none")
    assert host in str(caught.value)


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST.", "127.0.0.1", "127.5.5.5", "::1"])
def test_cleartext_to_a_loopback_host_is_allowed(host: str) -> None:
    assert SmtpSettings(host=host, port=25, tls="none").tls == "none"


def test_settings_default_to_submission_with_starttls() -> None:
    settings = SmtpSettings(host="smtp.example.co.jp")
    assert (settings.port, settings.tls, settings.timeout_seconds) == (587, "starttls", 30.0)


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"tls": "tls"}, "tls must be one of"),
        ({"port": 0}, "port"),
        ({"timeout_seconds": 0}, "timeout"),
        ({"username": "fdesk"}, "together"),
        ({"username": "fdesk", "password": "パスワード"}, "ASCII"),
        ({"host": " "}, "host is empty"),
    ],
)
def test_bad_settings_say_what_is_wrong(overrides: dict[str, object], problem: str) -> None:
    values: dict[str, object] = {"host": "smtp.example.co.jp"}
    values.update(overrides)
    with pytest.raises(ValueError, match=problem):
        SmtpSettings(**values)  # type: ignore[arg-type]


def test_the_password_never_shows_in_the_settings_repr() -> None:
    settings = SmtpSettings(host="smtp.example.co.jp", username="fdesk", password="hunter2")
    assert "hunter2" not in repr(settings)


# -- Sent folder ---------------------------------------------------------------


def test_a_sent_mail_is_filed_in_the_sent_folder_only_when_asked_after_the_send(
    smtp_sink: SmtpSink, open_delivery: Callable[..., SmtpDelivery]
) -> None:
    folder = FakeSentCopies()
    delivery = open_delivery(settings_for(smtp_sink), sent_folder=folder)
    mail = make_mail()

    delivery.send(mail)
    assert folder.appended == [], "the copy waits until the row is marked sent"
    delivery.keep_copies([mail])

    assert folder.appended == [mail.raw]
    assert delivery.already_sent(iter([mail.message_id, "<other@x>"])) == {mail.message_id}


def test_the_copies_of_a_run_of_mails_are_filed_with_one_command(
    smtp_sink: SmtpSink, open_delivery: Callable[..., SmtpDelivery]
) -> None:
    folder = FakeSentCopies()
    delivery = open_delivery(settings_for(smtp_sink), sent_folder=folder)
    mails = [make_mail(n) for n in range(1, 4)]
    for mail in mails:
        delivery.send(mail)

    delivery.keep_copies(mails)

    assert folder.appended == [mail.raw for mail in mails] and folder.commands == 1
    assert delivery.keeps_copies()


def test_without_a_sent_folder_there_are_no_copies_to_keep(delivery: SmtpDelivery) -> None:
    assert not delivery.keeps_copies()
    delivery.keep_copies([make_mail()])  # nothing to do, and nothing raised


def test_a_refused_mail_is_not_appended_to_the_sent_folder(
    smtp_sink: SmtpSink, open_delivery: Callable[..., SmtpDelivery]
) -> None:
    folder = FakeSentCopies()
    delivery = open_delivery(settings_for(smtp_sink), sent_folder=folder)
    smtp_sink.refuse_next(1, 451)

    with pytest.raises(TemporaryDeliveryError):
        delivery.send(make_mail())
    assert folder.appended == []


def test_a_failing_sent_folder_does_not_fail_the_send_and_says_the_copies_wait(
    smtp_sink: SmtpSink,
    open_delivery: Callable[..., SmtpDelivery],
) -> None:
    delivery = open_delivery(settings_for(smtp_sink), sent_folder=FakeSentCopies(fail_append=True))

    mail = make_mail()
    delivery.send(mail)
    with pytest.raises(TemporaryDeliveryError, match="Sent folder"):
        delivery.keep_copies([mail])

    assert len(smtp_sink.wait_for(1)) == 1


def test_without_a_sent_folder_nothing_counts_as_already_sent(delivery: SmtpDelivery) -> None:
    assert delivery.already_sent(["<reply-1@mailbot.example.co.jp>"]) == set()


def test_an_unreachable_sent_folder_makes_already_sent_fail_rather_than_answer_none(
    smtp_sink: SmtpSink, open_delivery: Callable[..., SmtpDelivery]
) -> None:
    class Broken(FakeSentCopies):
        def contains(self, message_ids: Iterable[str]) -> set[str]:
            raise ConnectionError("IMAP down")

    delivery = open_delivery(settings_for(smtp_sink), sent_folder=Broken())

    with pytest.raises(TemporaryDeliveryError, match="Sent folder"):
        delivery.already_sent(["<a@b>"])


# -- check_connection ------------------------------------------------------------


def test_check_connection_reports_connect_hello_and_login_with_server_replies(
    smtp_sink: SmtpSink,
) -> None:
    smtp_sink.require_auth("fdesk", "right")

    report = check_connection(settings_for(smtp_sink, username="fdesk", password="right"))

    assert [(step, ok) for step, ok, _ in report] == [
        (f"Connect to 127.0.0.1:{smtp_sink.port}", True),
        ("Say hello (EHLO mailbot.test)", True),
        ("Log in as fdesk", True),
    ]
    assert report[0][2].startswith("220 ")
    assert report[1][2].startswith("250 ") and "AUTH" in report[1][2]
    assert report[2][2].startswith("235 ")


def test_check_connection_reports_a_refused_connection_in_plain_words(
    smtp_sink: SmtpSink,
) -> None:
    smtp_sink.stop()

    [(step, ok, detail)] = check_connection(settings_for(smtp_sink))

    assert step.startswith("Connect to") and not ok
    assert "connection refused" in detail


def test_check_connection_reports_a_wrong_password_with_the_server_reply(
    smtp_sink: SmtpSink,
) -> None:
    smtp_sink.require_auth("fdesk", "right")

    report = check_connection(settings_for(smtp_sink, username="fdesk", password="wrong"))

    step, ok, detail = report[-1]
    assert (step, ok) == ("Log in as fdesk", False)
    assert "535" in detail and "Authentication credentials invalid" in detail
    assert [ok for _, ok, _ in report[:-1]] == [True, True]


def test_check_connection_stops_when_starttls_is_not_offered(smtp_sink: SmtpSink) -> None:
    report = check_connection(settings_for(smtp_sink, tls="starttls", username="fdesk", password="right"))

    assert [(step, ok) for step, ok, _ in report][-1] == ("Switch to encryption (STARTTLS)", False)
    assert "does not offer STARTTLS" in report[-1][2]
    assert len(report) == 3, "no login is attempted without encryption"


def test_check_connection_does_not_hang_on_a_mute_server() -> None:
    with socket.socket() as mute:
        mute.bind(("127.0.0.1", 0))
        mute.listen()
        settings = SmtpSettings(host="127.0.0.1", port=mute.getsockname()[1], tls="none", timeout_seconds=0.3)
        result: list[list[tuple[str, bool, str]]] = []
        worker = threading.Thread(target=lambda: result.append(check_connection(settings)))
        worker.start()
        worker.join(timeout=5)

    assert not worker.is_alive()
    [(_, ok, detail)] = result[0]
    assert not ok and "timed out" in detail


# -- OAuth2: AUTH XOAUTH2 / OAUTHBEARER with a token (Microsoft 365 and Google Workspace refuse passwords) ---------

DESK_USER = "f-desk@mxb.usen.co.jp"


def microsoft(endpoint: TokenEndpoint, secret: str | None = None) -> OAuth2Settings:
    return OAuth2Settings(
        provider="microsoft",
        tenant=endpoint.tenant,
        client_id=endpoint.client_id,
        client_secret=secret or endpoint.client_secret,
        authority=endpoint.authority,
    )


def accept_tokens_of(endpoint: TokenEndpoint, user: str = DESK_USER) -> Callable[[str, str], str | None]:
    """The SMTP server's check: a token the endpoint issued and still honours, for the mailbox user."""
    return lambda login, token: endpoint.check(token) if login == user else f"{login} may not send as {user}"


def test_a_token_from_the_command_logs_in_with_xoauth2_and_the_mail_goes_through(
    smtp_sink: SmtpSink, token_endpoint: TokenEndpoint, tmp_path: Path, open_delivery: Callable[..., SmtpDelivery]
) -> None:
    smtp_sink.require_token(accept_tokens_of(token_endpoint))
    command = token_endpoint.token_command(tmp_path)
    delivery = open_delivery(settings_for(smtp_sink, username=DESK_USER, oauth2_token_command=command))

    delivery.send(make_mail())

    assert len(smtp_sink.wait_for(1)) == 1
    assert smtp_sink.token_attempts == [("XOAUTH2", DESK_USER, True)]
    assert len(token_endpoint.issued) == 1


def test_a_token_from_msal_is_kept_for_the_next_connection(
    smtp_sink: SmtpSink, token_endpoint: TokenEndpoint, open_delivery: Callable[..., SmtpDelivery]
) -> None:
    smtp_sink.require_token(accept_tokens_of(token_endpoint))
    delivery = open_delivery(settings_for(smtp_sink, username=DESK_USER, oauth2=microsoft(token_endpoint)))

    delivery.send(make_mail(1))
    smtp_sink.restart()  # the relay drops the session; the next mail logs in again
    delivery.send(make_mail(2))

    assert len(smtp_sink.wait_for(2)) == 2
    assert [ok for _, _, ok in smtp_sink.token_attempts] == [True, True]
    assert len(token_endpoint.issued) == 1, "one token served both logins"


def test_a_token_near_its_expiry_is_refreshed_before_the_next_login(
    smtp_sink: SmtpSink, token_endpoint: TokenEndpoint, open_delivery: Callable[..., SmtpDelivery]
) -> None:
    token_endpoint.expires_in = 120  # under the five minutes MSAL keeps in hand
    smtp_sink.require_token(accept_tokens_of(token_endpoint))
    delivery = open_delivery(settings_for(smtp_sink, username=DESK_USER, oauth2=microsoft(token_endpoint)))

    delivery.send(make_mail(1))
    smtp_sink.restart()
    delivery.send(make_mail(2))

    assert len(token_endpoint.issued) == 2
    assert [ok for _, _, ok in smtp_sink.token_attempts] == [True, True], "no login was refused on the way"


def test_a_token_the_server_calls_expired_is_replaced_once_by_a_fresh_one(
    smtp_sink: SmtpSink, token_endpoint: TokenEndpoint, open_delivery: Callable[..., SmtpDelivery]
) -> None:
    smtp_sink.require_token(accept_tokens_of(token_endpoint))
    delivery = open_delivery(settings_for(smtp_sink, username=DESK_USER, oauth2=microsoft(token_endpoint)))
    delivery.send(make_mail(1))
    token_endpoint.expire(token_endpoint.tokens()[0])
    smtp_sink.restart()

    delivery.send(make_mail(2))

    assert len(smtp_sink.wait_for(2)) == 2
    assert [ok for _, _, ok in smtp_sink.token_attempts] == [True, False, True]
    assert len(token_endpoint.issued) == 2


def test_a_revoked_token_keeps_the_mail_queued_with_one_line_naming_the_server_s_error(
    smtp_sink: SmtpSink, token_endpoint: TokenEndpoint, open_delivery: Callable[..., SmtpDelivery]
) -> None:
    smtp_sink.require_token(accept_tokens_of(token_endpoint))
    token_endpoint.revoke_all()  # the app's consent was withdrawn: every token is refused
    delivery = open_delivery(settings_for(smtp_sink, username=DESK_USER, oauth2=microsoft(token_endpoint)))

    with pytest.raises(TemporaryDeliveryError) as caught:
        delivery.send(make_mail())

    message = str(caught.value)
    assert "\n" not in message
    assert "535 5.7.3 Authentication unsuccessful" in message and "invalid_token: revoked" in message
    assert "fresh token from Microsoft Entra ID" in message and "mail stays queued" in message
    assert [ok for _, _, ok in smtp_sink.token_attempts] == [False, False], "retried once, not more"
    assert smtp_sink.messages == []


def test_a_wrong_client_secret_keeps_the_mail_queued_with_the_issuer_s_error(
    smtp_sink: SmtpSink, token_endpoint: TokenEndpoint, open_delivery: Callable[..., SmtpDelivery]
) -> None:
    smtp_sink.require_token(accept_tokens_of(token_endpoint))
    settings = settings_for(smtp_sink, username=DESK_USER, oauth2=microsoft(token_endpoint, secret="expired-secret"))

    with pytest.raises(TemporaryDeliveryError, match="invalid_client: AADSTS7000215") as caught:
        open_delivery(settings).send(make_mail())

    assert "\n" not in str(caught.value) and f"login as {DESK_USER}" in str(caught.value)
    assert smtp_sink.token_attempts == []


def test_oauthbearer_is_used_where_the_server_offers_it_and_not_xoauth2(
    smtp_sink: SmtpSink, token_endpoint: TokenEndpoint, open_delivery: Callable[..., SmtpDelivery]
) -> None:
    smtp_sink.require_token(accept_tokens_of(token_endpoint), mechanism="OAUTHBEARER")
    delivery = open_delivery(settings_for(smtp_sink, username=DESK_USER, oauth2=microsoft(token_endpoint)))

    delivery.send(make_mail())

    assert smtp_sink.token_attempts == [("OAUTHBEARER", DESK_USER, True)]


def test_a_relay_without_a_token_mechanism_keeps_the_mail_queued_and_says_what_it_offers(
    smtp_sink: SmtpSink, token_endpoint: TokenEndpoint, open_delivery: Callable[..., SmtpDelivery]
) -> None:
    smtp_sink.require_auth(DESK_USER, "password")
    delivery = open_delivery(settings_for(smtp_sink, username=DESK_USER, oauth2=microsoft(token_endpoint)))

    with pytest.raises(TemporaryDeliveryError, match=r"neither AUTH XOAUTH2 nor OAUTHBEARER \(AUTH LOGIN PLAIN\)"):
        delivery.send(make_mail())


def test_a_google_service_account_sends_as_the_mailbox_user(
    smtp_sink: SmtpSink, token_endpoint: TokenEndpoint, tmp_path: Path, open_delivery: Callable[..., SmtpDelivery]
) -> None:
    smtp_sink.require_token(accept_tokens_of(token_endpoint))
    key_file = google_key_file(token_endpoint, tmp_path)
    oauth2 = OAuth2Settings.from_table({"provider": "google", "key_file": str(key_file)}, DESK_USER)
    delivery = open_delivery(settings_for(smtp_sink, username=DESK_USER, oauth2=oauth2))

    delivery.send(make_mail())

    assert len(smtp_sink.wait_for(1)) == 1
    assert [item.subject for item in token_endpoint.issued] == [DESK_USER]


def test_the_delivery_password_can_come_from_a_command(
    smtp_sink: SmtpSink, tmp_path: Path, open_delivery: Callable[..., SmtpDelivery]
) -> None:
    smtp_sink.require_auth("fdesk", "from-the-vault")
    secret = tmp_path / "secret"
    secret.write_text("from-the-vault\n")
    delivery = open_delivery(settings_for(smtp_sink, username="fdesk", password_command=f"cat {secret}"))

    delivery.send(make_mail())

    assert len(smtp_sink.wait_for(1)) == 1


def test_a_failing_password_command_keeps_the_mail_queued_and_names_the_key(
    smtp_sink: SmtpSink, open_delivery: Callable[..., SmtpDelivery]
) -> None:
    smtp_sink.require_auth("fdesk", "right")
    delivery = open_delivery(settings_for(smtp_sink, username="fdesk", password_command="false"))

    with pytest.raises(TemporaryDeliveryError, match="password_command failed with exit status 1"):
        delivery.send(make_mail())


def test_check_connection_names_the_token_step_and_the_xoauth2_login(
    smtp_sink: SmtpSink, token_endpoint: TokenEndpoint
) -> None:
    smtp_sink.require_token(accept_tokens_of(token_endpoint))

    report = check_connection(settings_for(smtp_sink, username=DESK_USER, oauth2=microsoft(token_endpoint)))

    steps = [(step, ok) for step, ok, _ in report]
    assert steps[2:] == [("Get an OAuth2 token", True), (f"Log in as {DESK_USER} with AUTH XOAUTH2", True)]
    assert f"from Microsoft Entra ID (authority {token_endpoint.authority}" in report[2][2]
    assert "more minute(s)" in report[2][2], "the issuer said how long the token lasts"
    assert report[3][2].startswith("235 ")


def test_check_connection_stops_at_the_token_step_with_the_issuer_s_error(
    smtp_sink: SmtpSink, token_endpoint: TokenEndpoint
) -> None:
    smtp_sink.require_token(accept_tokens_of(token_endpoint))
    settings = settings_for(smtp_sink, username=DESK_USER, oauth2=microsoft(token_endpoint, secret="wrong"))

    step, ok, detail = check_connection(settings)[-1]

    assert (step, ok) == ("Get an OAuth2 token", False)
    assert "AADSTS7000215" in detail and "\n" not in detail


def test_check_connection_reports_a_refused_token_after_the_fresh_one(
    smtp_sink: SmtpSink, token_endpoint: TokenEndpoint
) -> None:
    smtp_sink.require_token(accept_tokens_of(token_endpoint))
    token_endpoint.revoke_all()

    step, ok, detail = check_connection(settings_for(smtp_sink, username=DESK_USER, oauth2=microsoft(token_endpoint)))[
        -1
    ]

    assert (step, ok) == (f"Log in as {DESK_USER} with AUTH XOAUTH2", False)
    assert "login refused: 535" in detail and "invalid_token: revoked" in detail


def test_oauth2_settings_need_a_username_and_no_password_beside_them() -> None:
    oauth2 = OAuth2Settings(provider="microsoft", tenant="t", client_id="c", client_secret="s")
    with pytest.raises(ValueError, match="together"):
        SmtpSettings(host="smtp.office365.com", oauth2=oauth2)
    with pytest.raises(ValueError, match="only one of password, oauth2"):
        SmtpSettings(host="smtp.office365.com", username="u", password="p", oauth2=oauth2)
