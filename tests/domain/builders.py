"""Inputs for the pure core: a policy, branches, UNIS and requests built like real mail."""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime
from typing import Any

from mailbot.domain.branches import Branch, BranchDirectory
from mailbot.domain.model import ParsedMessage
from mailbot.domain.parsing import parse_message
from mailbot.domain.policy import Policy
from mailbot.domain.unis import OrderLine, SnapshotLookup, UnisCustomer
from tests.mailfactory import build_mail

DESK = "f-desk@mxb.usen.co.jp"
SENDER = "渋谷 太郎 <taro@usen.co.jp>"
MANAGER = "shibuya-mgr@usen.co.jp"
CODE = "123456789"
NOW = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)

POLICY = Policy(desk_address=DESK, internal_domains=("usen.co.jp",), ops_recipients=("ops@usen.co.jp",))
DIRECTORY = BranchDirectory(
    [
        Branch("渋谷支店", aliases=("渋谷",), region="首都圏", managers=(MANAGER,)),
        Branch("大阪支店", region="大阪", managers=("osaka-mgr@usen.co.jp",)),
    ]
)


def pdf(title: str = "form") -> bytes:
    return b"%PDF-1.4\n% " + title.encode() + b"\ntrailer<<>>\n%%EOF\n"


FORM = ("回線単品申込書_株式会社さくら.pdf", pdf())


def line(item: str = "Z200214", state: str = "受注") -> OrderLine:
    return OrderLine("C0001", "001", item, "NTTフレッツ光取次", state, None, "渋谷支店")


def customer(code: str = CODE, customer_class: str = "1", lines: tuple[OrderLine, ...] | None = None) -> UnisCustomer:
    return UnisCustomer(code, "株式会社さくら商事", customer_class, "有効", (line(),) if lines is None else lines)


def unis(*customers: UnisCustomer, as_of: datetime | None = NOW) -> SnapshotLookup:
    return SnapshotLookup({c.code: c for c in customers}, as_of)


def request(**overrides: Any) -> ParsedMessage:
    """A complete, acceptable request unless overridden."""
    arguments: dict[str, Any] = {
        "style": "outlook",
        "subject": "フレッツエスカ 渋谷支店",
        "sender": SENDER,
        "to": [DESK],
        "cc": [f"渋谷 支店長 <{MANAGER}>"],
        "body": f"お疲れ様です。\n取次をお願いします。\n顧客CD:{CODE}\n",
        "attachments": [FORM],
    }
    arguments.update(overrides)
    return parse_message(build_mail(**arguments))


def xlsx_form(label: str = "顧客CD", value: object = CODE, *, below: bool = False) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet["A1"] = "回線単品申込書"
    sheet["A3"] = label
    if below:
        sheet["A4"] = value  # type: ignore[assignment]
    else:
        sheet["B3"] = value  # type: ignore[assignment]
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def encrypted_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("form.pdf", pdf())
    data = bytearray(buffer.getvalue())
    data[6] |= 1  # general purpose flag: encrypted
    central = data.find(b"PK\x01\x02")
    data[central + 8] |= 1
    return bytes(data)


def zip_bomb() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", b"<x/>")
        archive.writestr("xl/big.xml", b"0" * (150 * 1024 * 1024))
    return buffer.getvalue()
