"""The demo's scenario: its config, and the mails branches and others send the desk.

:mod:`mailbot.entrypoints.demo` runs it; kept apart so the runner reads as the story it tells.
"""

from __future__ import annotations

import base64
import io
import zipfile
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid
from typing import Any

__all__ = ["CONFIG", "DESK", "first_batch", "mail", "second_batch"]

DESK = "f-desk@mxb.usen.co.jp"

CONFIG = """\
# Demo configuration written by `mailbot demo`.
[desk]
address = "f-desk@mxb.usen.co.jp"
ops_recipients = ["ops-desk@usen.co.jp"]
internal_domains = ["usen.co.jp"]
staff = ["yamada.desk@usen.co.jp"]
contact = "納品デスク(内線 2345、nouhin-desk@usen.co.jp)"

[database]
url = "sqlite:///mailbot.sqlite3"

[web]
base_url = "http://127.0.0.1:8025"

[mailbox]
kind = "maildir"
path = "Maildir"

[delivery]
kind = "directory"
path = "outbox"

[unis]
max_wait_hours = 36

[jimu_center]
recipients = ["jimu-center@usen.co.jp"]

[ubd]
domains = ["ubd-net.example.jp"]

[[branches]]
name = "渋谷支店"
aliases = ["渋谷"]
region = "首都圏"
managers = ["shibuya-mgr@usen.co.jp"]

[[branches]]
name = "新宿支店"
region = "首都圏"
managers = ["shinjuku-mgr@usen.co.jp"]

[[branches]]
name = "大阪支店"
aliases = ["大阪"]
region = "大阪"
managers = ["osaka-mgr@usen.co.jp"]
summary_recipients = ["osaka-all@usen.co.jp"]

[[branches]]
name = "横浜支店"
region = "首都圏"
managers = ["yokohama-mgr@usen.co.jp"]
"""


def _pdf(title: str) -> bytes:
    return b"%PDF-1.4\n% " + title.encode() + b"\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def _text_pdf(lines: Sequence[str]) -> bytes:
    """A one-page PDF whose text layer holds ``lines`` (a composite font with a ToUnicode map), as a
    printed form is: mailbot reads it by its text, not its name. The glyphs are the viewer's own font."""
    chars = sorted({c for line in lines for c in line})
    cid = {c: i + 1 for i, c in enumerate(chars)}
    pairs = "".join(f"<{cid[c]:04X}> <{ord(c):04X}>\n" for c in chars)
    cmap = (
        "/CIDInit /ProcSet findresource begin 12 dict begin begincmap\n"
        "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n"
        "/CMapName /Adobe-Identity-UCS def /CMapType 2 def\n"
        f"1 begincodespacerange <0000> <FFFF> endcodespacerange\n{len(chars)} beginbfchar\n{pairs}endbfchar\n"
        "endcmap CMapName currentdict /CMap defineresource pop end end\n"
    ).encode("ascii")
    text = b"".join(
        b"BT /F1 14 Tf 72 %d Td <%s> Tj ET\n" % (760 - 24 * i, "".join(f"{cid[c]:04X}" for c in line).encode())
        for i, line in enumerate(lines)
    )
    font = (
        b"<< /Type /Font /Subtype /Type0 /BaseFont /HeiseiKakuGo-W5 /Encoding /Identity-H /ToUnicode 5 0 R "
        b"/DescendantFonts [<< /Type /Font /Subtype /CIDFontType0 /BaseFont /HeiseiKakuGo-W5 "
        b"/CIDSystemInfo << /Registry (Adobe) /Ordering (Japan1) /Supplement 5 >> >>] >>"
    )
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 4 0 R >> >> "
        b"/Contents 6 0 R >>",
        font,
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(cmap), cmap),
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(text), text),
    ]
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def _encrypted_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("申込書.pdf", _pdf("form"))
    data = bytearray(buffer.getvalue())
    # Set the "encrypted" flag bit in both headers, as a password-protected ZIP has.
    data[6] |= 1
    central = data.find(b"PK\x01\x02")
    data[central + 8] |= 1
    return bytes(data)


def mail(
    subject: str,
    sender: str,
    to: Sequence[str],
    cc: Sequence[str],
    body: str,
    attachments: Sequence[tuple[str, bytes]] = (),
    *,
    when: datetime,
    in_reply_to: str | None = None,
    headers: dict[str, str] | None = None,
    message_id: str | None = None,
) -> bytes:
    mail = EmailMessage(policy=SMTP)
    mail["From"] = sender
    mail["To"] = ", ".join(to)
    if cc:
        mail["Cc"] = ", ".join(cc)
    mail["Subject"] = subject
    mail["Date"] = format_datetime(when)
    mail["Message-ID"] = message_id or make_msgid(domain="usen.co.jp")
    if in_reply_to:
        mail["In-Reply-To"] = in_reply_to
        mail["References"] = in_reply_to
    for name, value in (headers or {}).items():
        mail[name] = value
    mail.set_content(body, charset="utf-8")
    for filename, payload in attachments:
        maintype, subtype = ("application", "pdf") if filename.endswith(".pdf") else ("application", "octet-stream")
        mail.add_attachment(payload, maintype=maintype, subtype=subtype, filename=filename)
    return mail.as_bytes()


def _outlook_iso2022jp(
    subject: str, sender: str, to: str, cc: str, body: str, attachment: str, when: datetime
) -> bytes:
    """An Outlook-style mail: ISO-2022-JP headers and body, RFC 2047 filename."""

    def enc(text: str) -> str:
        return "=?ISO-2022-JP?B?" + base64.b64encode(_iso2022jp(text)).decode("ascii") + "?="

    boundary = "----=_NextPart_000_0001_01DB0000.00000000"
    name = enc(attachment)
    return (
        (
            f"From: {enc('渋谷 太郎')} <{sender}>\r\n"
            f"To: {to}\r\nCc: {cc}\r\n"
            f"Subject: {enc(subject)}\r\n"
            f"Date: {format_datetime(when)}\r\n"
            f"Message-ID: {make_msgid(domain='usen.co.jp')}\r\n"
            "MIME-Version: 1.0\r\n"
            f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n'
            "X-Mailer: Microsoft Outlook 16.0\r\n\r\n"
            f"--{boundary}\r\n"
            'Content-Type: text/plain; charset="iso-2022-jp"\r\nContent-Transfer-Encoding: 7bit\r\n\r\n'
        ).encode("ascii")
        + _iso2022jp(body)
        + (
            f"\r\n--{boundary}\r\n"
            f'Content-Type: application/pdf; name="{name}"\r\n'
            "Content-Transfer-Encoding: base64\r\n"
            f'Content-Disposition: attachment; filename="{name}"\r\n\r\n'
        ).encode("ascii")
        + base64.encodebytes(_pdf("outlook")).replace(b"\n", b"\r\n")
        + (f"\r\n--{boundary}--\r\n").encode("ascii")
    )


def _iso2022jp(text: str) -> bytes:
    """ISO-2022-JP as Outlook writes it: CP932 extensions (㈱ ①) in JIS rows 13 and 89-92."""
    out, in_jis = bytearray(), False
    for ch in text:
        if ord(ch) < 0x80:
            out += b"\x1b(B" if in_jis else b""
            out += ch.encode("ascii")
            in_jis = False
            continue
        lead, trail = ch.encode("cp932")
        out += b"" if in_jis else b"\x1b$B"
        in_jis = True
        row = (lead - (0xC1 if lead >= 0xE0 else 0x81)) * 2 + 0x21
        out += (
            bytes((row + 1, trail - 0x7E)) if trail >= 0x9F else bytes((row, trail - (0x20 if trail >= 0x80 else 0x1F)))
        )
    out += b"\x1b(B" if in_jis else b""
    return bytes(out)


def first_batch(now: datetime) -> list[tuple[str, bytes]]:
    def t(minutes: int) -> datetime:
        return now - timedelta(minutes=minutes)

    form = ("回線単品申込書_株式会社さくら.pdf", _pdf("form"))
    complete = _outlook_iso2022jp(
        "フレッツエスカ 渋谷支店",
        "taro.shibuya@usen.co.jp",
        DESK,
        "shibuya-mgr@usen.co.jp",
        "納品デスク御中\r\n\r\nフレッツ光の取次をお願いします。\r\n顧客CD:100000001\r\n㈱さくら商事\r\n",
        "回線単品申込書_㈱さくら商事.pdf",
        t(50),
    )
    no_manager = mail(
        "フレッツエスカ 新宿支店",
        "hanako.shinjuku@usen.co.jp",
        [DESK],
        [],
        "お疲れ様です。\n取次依頼です。\n顧客コード:100000002\n",
        [form],
        when=t(45),
    )
    return [
        ("1000000001.demo01.host", complete),
        ("1000000002.demo02.host", no_manager),
        (
            "1000000003.demo03.host",
            mail(
                "RE: 【至急】ﾌﾚｯﾂｴｽｶ 横浜支店",
                "jiro.yokohama@usen.co.jp",
                [DESK],
                ["yokohama-mgr@usen.co.jp"],
                "顧客CD:１０００００００３\n申込書は後ほど送ります。\n",
                when=t(40),
            ),
        ),
        (
            "1000000004.demo04.host",
            mail(
                "フレッツエスカ 大阪支店",
                "osaka.staff@usen.co.jp",
                [DESK],
                ["osaka-mgr@usen.co.jp"],
                "顧客CD:100000004\n",
                [("回線単品申込書.zip", _encrypted_zip())],
                when=t(35),
            ),
        ),
        (
            "1000000005.demo05.host",
            mail(
                "フレッツエスカ 名古屋支店",
                "nagoya.staff@usen.co.jp",
                [DESK],
                [],
                "顧客CD:100000005\n",
                [form],
                when=t(30),
            ),
        ),
        (
            "1000000006.demo06.host",
            mail("フレッツエスカ", "someone@usen.co.jp", [DESK], [], "取次お願いします。\n", [form], when=t(28)),
        ),
        (
            "1000000007.demo07.host",
            mail(
                "フレッツエスカ 渋谷支店 追加",
                "saburo.shibuya@usen.co.jp",
                [DESK],
                ["shibuya-mgr@usen.co.jp"],
                "よろしくお願いします。\n",
                [form],
                when=t(25),
            ),
        ),
        (
            "1000000008.demo08.host",
            mail(
                "フレッツエスカ 渋谷支店",
                "shiro.shibuya@usen.co.jp",
                [DESK],
                ["shibuya-mgr@usen.co.jp"],
                "顧客CD:100000008\n(昨日UNIS登録しました)\n",
                [form],
                when=t(20),
            ),
        ),
        (
            "1000000009.demo09.host",
            mail(
                "フレッツエスカ 大阪支店",
                "goro.osaka@usen.co.jp",
                [DESK],
                ["osaka-mgr@usen.co.jp"],
                "顧客CD:100000009\n",
                [form],
                when=t(18),
            ),
        ),
        (
            "1000000010.demo10.host",
            mail(
                "フレッツエスカ 渋谷支店",
                "rokuro.shibuya@usen.co.jp",
                [DESK],
                ["shibuya-mgr@usen.co.jp"],
                "顧客CD:100000010\n",
                [form],
                when=t(16),
            ),
        ),
        (
            "1000000011.demo11.host",
            mail(
                "自動応答: フレッツエスカ 渋谷支店",
                "taro.shibuya@usen.co.jp",
                [DESK],
                [],
                "不在にしています。\n",
                when=t(15),
                headers={"Auto-Submitted": "auto-replied"},
            ),
        ),
        (
            "1000000012.demo12.host",
            mail("フレッツエスカ 渋谷支店", "sales@example.com", [DESK], [], "顧客CD:100000001\n", [form], when=t(14)),
        ),
        (
            "1000000013.demo13.host",
            mail("請求書の件", "keiri@usen.co.jp", [DESK], [], "先月分の請求書を送ってください。\n", when=t(12)),
        ),
        (
            # Two customers in one mail: returned, asking for one mail per customer.
            "1000000015.demo15.host",
            mail(
                "フレッツエスカ 渋谷支店 2件",
                "nana.shibuya@usen.co.jp",
                [DESK],
                ["shibuya-mgr@usen.co.jp"],
                "2件まとめてお願いします。\n顧客CD:100000001\n顧客CD:100000008\n",
                [form],
                when=t(9),
            ),
        ),
        (
            # The deputy manager is in CC, not the manager: returned; a clerk accepts it below.
            "1000000016.demo16.host",
            mail(
                "フレッツエスカ 新宿支店",
                "jun.shinjuku@usen.co.jp",
                [DESK],
                ["shinjuku-deputy@usen.co.jp"],
                "顧客CD:100000002\n支店長不在のため副支店長をCCに入れています。\n",
                [form],
                when=t(8),
            ),
        ),
        (
            # Near miss: not the form, so returned showing the exact form 「フレッツエスカ 渋谷支店」.
            "1000000017.demo17.host",
            mail(
                "フレッツ光申込 渋谷支店",
                "hachi.shibuya@usen.co.jp",
                [DESK],
                ["shibuya-mgr@usen.co.jp"],
                "顧客CD:100000001\n",
                [form],
                when=t(7),
            ),
        ),
        (
            # UBD (manual §1): no branch subject, no manager; 管轄支店 in the body, a new customer without 顧客CD.
            "1000000018.demo18.host",
            mail(
                "フレッツ光取次のお願い(株式会社みどり)",
                "order@ubd-net.example.jp",
                [DESK],
                [],
                "いつもお世話になっております。UBD受付です。\n新規のお客様です。\n管轄支店: 渋谷支店\n",
                [("回線単品申込書_みどり.pdf", _pdf("form"))],
                when=t(6),
            ),
        ),
        (
            # A scanner-named PDF: recognised as the form, and its 顧客CD read, by the PDF's own text.
            "1000000019.demo19.host",
            mail(
                "フレッツエスカ 大阪支店",
                "kuro.osaka@usen.co.jp",
                [DESK],
                ["osaka-mgr@usen.co.jp"],
                "申込書をスキャンして添付します。\n",
                [("scan0001.pdf", _text_pdf(["回線単品申込書", "顧客CD:100000004", "お客様名 株式会社なにわ"]))],
                when=t(5),
            ),
        ),
        (
            # UBD naming no 管轄支店, for a customer UNIS does not know: waits for the desk (要確認).
            "1000000025.demo25.host",
            mail(
                "フレッツ光取次のお願い(有限会社そら)",
                "order@ubd-net.example.jp",
                [DESK],
                [],
                "UBD受付です。よろしくお願いいたします。\n",
                [("回線単品申込書_そら.pdf", _pdf("form"))],
                when=t(4),
            ),
        ),
        (
            # A scan without text whose name says nothing: waits for the desk (要確認), never returned blindly.
            "1000000026.demo26.host",
            mail(
                "フレッツエスカ 横浜支店",
                "yoko.yokohama@usen.co.jp",
                [DESK],
                ["yokohama-mgr@usen.co.jp"],
                "顧客CD:100000002\n",
                [("scan0002.pdf", _text_pdf([]))],
                when=t(3),
            ),
        ),
        (
            # Registered against the manual's §5 patterns (today's export): returned, naming the value to set.
            "1000000027.demo27.host",
            mail(
                "フレッツエスカ 渋谷支店",
                "ichiro.shibuya@usen.co.jp",
                [DESK],
                ["shibuya-mgr@usen.co.jp"],
                "顧客CD:100000012\n株式会社つばさ(BGMご利用中)\n",
                [form],
                when=t(7),
            ),
        ),
        (
            "1000000028.demo28.host",
            mail(
                "フレッツエスカ 新宿支店",
                "momo.shinjuku@usen.co.jp",
                [DESK],
                ["shinjuku-mgr@usen.co.jp"],
                "顧客CD:100000013\n",
                [form],
                when=t(6),
            ),
        ),
        (
            "1000000029.demo29.host",
            mail(
                "フレッツエスカ 大阪支店",
                "kaito.osaka@usen.co.jp",
                [DESK],
                ["osaka-mgr@usen.co.jp"],
                "顧客CD:100000014\n",
                [form],
                when=t(5),
            ),
        ),
        (
            # A second request for さくら商事, whose only Z200214 line the first request holds.
            "1000000030.demo30.host",
            mail(
                "フレッツエスカ 渋谷支店 さくら商事",
                "ken.shibuya@usen.co.jp",
                [DESK],
                ["shibuya-mgr@usen.co.jp"],
                "顧客CD:100000001\n",
                [form],
                when=t(4),
            ),
        ),
        (
            # Not in today's export either: waits, then is returned once a current snapshot says so.
            "1000000014.demo14.host",
            mail(
                "フレッツエスカ 新宿支店",
                "kenta.shinjuku@usen.co.jp",
                [DESK],
                ["shinjuku-mgr@usen.co.jp"],
                "顧客CD:100000011\n",
                [form],
                when=t(10),
            ),
        ),
    ]


def second_batch(outbox: Sequence[Mapping[str, Any]], duplicate: bytes, now: datetime) -> list[tuple[str, bytes]]:
    """The second poll's mails: answers in the threads of the bot's mails in ``outbox``, and a duplicate."""
    # A branch answers the defect reply with its manager in CC: a resubmission.
    returned = next(o for o in outbox if o["kind"] == "defect_reply" and o["to"] == ["hanako.shinjuku@usen.co.jp"])
    resubmission = mail(
        returned["subject"],
        "hanako.shinjuku@usen.co.jp",
        [DESK],
        ["shinjuku-mgr@usen.co.jp"],
        "支店長をCCに入れて再送します。\n",
        when=now,
        in_reply_to=returned["message_id"],
    )
    # The 大阪支店 salesperson asks instead of resubmitting: a question for the desk, not a second return.
    ppap = next(o for o in outbox if o["kind"] == "defect_reply" and o["to"] == ["osaka.staff@usen.co.jp"])
    question = mail(
        ppap["subject"],
        "osaka.staff@usen.co.jp",
        [DESK],
        ["osaka-mgr@usen.co.jp"],
        "ZIPのパスワードは別のメールで送ればよいでしょうか?\n",
        when=now,
        in_reply_to=ppap["message_id"],
    )
    # A clerk answers the 名古屋 request in its thread: recorded on the case, never answered by the bot.
    nagoya = next(o for o in outbox if o["kind"] == "defect_reply" and o["to"] == ["nagoya.staff@usen.co.jp"])
    staff_reply = mail(
        nagoya["subject"],
        "yamada.desk@usen.co.jp",
        ["nagoya.staff@usen.co.jp", DESK],
        [],
        "名古屋営業所の件は、支店名をご確認のうえ再送をお願いします。(納品デスク 山田)\n",
        when=now,
        in_reply_to=nagoya["message_id"],
    )
    # 渋谷支店 answers the desk's 顧客CD request for the new UBD customer in that request's own thread.
    code_request = next(o for o in outbox if o["kind"] == "branch_code_request")
    code_answer = mail(
        f"RE: {code_request['subject']}",
        "shibuya-mgr@usen.co.jp",
        [DESK],
        [],
        "お疲れ様です。発番しました。\n顧客CD:100000031\n",
        when=now,
        in_reply_to=code_request["message_id"],
    )
    return [
        ("1000000020.demo20.host", resubmission),
        ("1000000021.demo21.host", duplicate),
        ("1000000022.demo22.host", question),
        ("1000000023.demo23.host", staff_reply),
        ("1000000024.demo24.host", code_answer),
    ]
