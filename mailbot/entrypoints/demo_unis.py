"""The demo's UNIS exports: yesterday's standard export, today's with the manual's §5 columns.

Today's export fills the 契約明細 and 契約 screens the way manual §5 says for
most customers (pattern A/B under a BGM contract, pattern C for FLET'S only),
and the way branches get it wrong for a few, so the demo shows each UNIS
defect with the value to set.
"""

from __future__ import annotations

from datetime import date, timedelta

from mailbot.domain.unis import COLUMN_HEADERS

__all__ = ["FULL_HEADER", "OLD_ROWS", "UNIS_HEADER", "moved_rows", "today_rows"]

UNIS_HEADER = "顧客CD,顧客名,顧客区分,顧客状態,契約No,明細No,契約品目,品目名,明細状態,完成予定日,支店"
FULL_HEADER = ",".join(COLUMN_HEADERS.values())

# Yesterday's export: the eleven standard columns; customers registered since are not in it yet.
OLD_ROWS = [
    "100000001,株式会社さくら商事,1,有効,C0001,001,Z200214,NTTフレッツ光取次,受注,2026/12/10,渋谷支店",
    "100000002,有限会社みどり,1,有効,C0002,001,Z200214,NTTフレッツ光取次,受注,2026/12/12,新宿支店",
    "100000004,株式会社なにわ,1,有効,C0004,001,Z200214,NTTフレッツ光取次,受注,2026/12/15,大阪支店",
]


def _row(fields: dict[str, str]) -> str:
    return ",".join(fields.get(key, "") for key in COLUMN_HEADERS)


def _customer(code: str, name: str, branch: str, *, cls: str = "1 業務用", status: str = "有効") -> dict[str, str]:
    return {
        "customer_code": code,
        "customer_name": name,
        "customer_class": cls,
        "customer_status": status,
        "customer_process": "0 新設",
        "customer_contract_kind": "01-01 新設 新設",
        "branch": branch,
    }


def _brokerage(contract: str, line: str, registered: date, **values: str) -> dict[str, str]:
    """A Z200214 line under a BGM contract, as manual §5① (pattern A/B) fills it."""
    return {
        "contract_no": contract,
        "product_class": "0 通常",
        "payment_method": "1 口座振替",
        "billing_period": "1",
        "line_no": line,
        "line_process": "2 契約変更",
        "line_contract_kind": "11-99 増設 その他",
        "item_code": "Z200214",
        "item_name": "NTTフレッツ光取次",
        "state": "受注",
        "order_date": f"{registered:%Y/%m/%d}",
        "start_month": f"{registered:%Y/%m}",
        "due_date": f"{registered:%Y/%m/%d}",
        "staff": "渋谷 一郎",
        "running": "0",
        **values,
    }


def _flets_only(contract: str, line: str, registered: date, **values: str) -> dict[str, str]:
    """A FLET'S-only customer's contract and line, as manual §5② (pattern C) fills them."""
    fields = {
        "payment_method": "9 UNIS売上対象外",
        "line_process": "0 新設",
        "line_contract_kind": "01-01 新設 新設",
        "staff": "",
        **values,
    }
    return _brokerage(contract, line, registered, **fields)


def _bgm(contract: str, line: str, registered: date, state: str = "確定") -> dict[str, str]:
    return {
        "contract_no": contract,
        "product_class": "0 通常",
        "payment_method": "1 口座振替",
        "billing_period": "1",
        "line_no": line,
        "line_process": "0 新設",
        "line_contract_kind": "01-01 新設 新設",
        "item_code": "U100001",
        "item_name": "USEN音楽放送",
        "state": state,
        "order_date": f"{registered - timedelta(days=400):%Y/%m/%d}",
        "due_date": f"{registered - timedelta(days=390):%Y/%m/%d}",
        "running": "5500",
    }


def today_rows(today: date) -> list[str]:
    """Today's export, lines registered yesterday (the branches register before they mail)."""
    day = today - timedelta(days=1)
    sakura = _customer("100000001", "株式会社さくら商事", "渋谷支店")
    midori = _customer("100000002", "有限会社みどり", "新宿支店")
    naniwa = _customer("100000004", "株式会社なにわ", "大阪支店")
    hikari = _customer("100000008", "株式会社ひかり", "渋谷支店")
    kodama = _customer("100000009", "喫茶こだま", "大阪支店", cls="9 未加入店")
    aoba = _customer("100000010", "株式会社あおば", "渋谷支店")
    tsubasa = _customer("100000012", "株式会社つばさ", "渋谷支店")
    momiji = _customer("100000013", "カフェもみじ", "新宿支店")
    hotel = _customer("100000014", "ホテルかもめ", "大阪支店", status="解約")
    rows = [
        # Pattern A/B as the manual says: the Z200214 line under the BGM contract. BGM and FLET'S
        # were applied for together and the BGM line is still 受注: 事務センター confirms the
        # FLET'S line alone once it opens (部分確定, manual §5 case 2).
        {**sakura, **_brokerage("C0001", "001", day)},
        {**sakura, **_bgm("C0001", "002", day, state="受注")},
        # Pattern C, two lines: two requests of one customer, each bound to its own.
        {**midori, **_flets_only("C0002", "001", day)},
        {**midori, **_flets_only("C0002", "002", day)},
        {**naniwa, **_flets_only("C0004", "001", day)},
        {**hikari, **_flets_only("C0008", "001", day)},
        {**kodama, **_flets_only("C0009", "001", day)},
        # BGM only: no Z200214 line to bind.
        {**aoba, **_bgm("C0010", "001", day)},
        # Pattern A/B with a line registered as if new: 明細処理区分 and ランニング are wrong.
        {**tsubasa, **_bgm("C0012", "001", day)},
        {**tsubasa, **_brokerage("C0012", "002", day, line_process="1 新設", running="3300")},
        # The Z200214 line under a contract of its own while the customer has a BGM contract.
        {**momiji, **_bgm("C0013", "001", day)},
        {**momiji, **_brokerage("C0014", "001", day)},
        # A customer already cancelled.
        {**hotel, **_flets_only("C0015", "001", day)},
    ]
    return [_row(fields) for fields in rows]


def moved_rows(today: date) -> list[str]:
    """A shop registered before Sept 2017 (no case) took BGM; its FLET'S line moved to the new customer (§5④).

    The branch entered the line with a new 完成予定日 instead of the old one:
    the opening would be counted twice, and the reconciliation says so.
    """
    old = _customer("300000001", "喫茶みなと", "渋谷支店", cls="9 未加入店")
    new = _customer("300000002", "喫茶みなと", "渋谷支店")
    opened = date(2016, 4, 1)
    line = {
        "serial_no": "P1600000000001",
        "staff": "港 太郎",
    }
    rows = [
        {**old, **_flets_only("C3001", "001", opened, state="確定", confirm_date="2016/04/10", **line)},
        {**new, **_bgm("C3002", "001", today, state="受注")},
        {**new, **_brokerage("C3002", "002", today, remark="加入前顧客コード:300000001", **line)},
    ]
    return [_row(fields) for fields in rows]
