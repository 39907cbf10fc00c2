"""Plain-text tables that line up with Japanese (double-width) text, for the CLI and the demo."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from datetime import datetime
from typing import Any

__all__ = ["format_table", "print_cases", "width"]


def width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in ("W", "F") else 1 for c in text)


def _pad(text: str, size: int) -> str:
    return text + " " * max(size - width(text), 0)


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    sizes = [max([width(h), *(width(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    lines = ["  ".join(_pad(h, s) for h, s in zip(headers, sizes, strict=True)).rstrip()]
    lines.append("  ".join("-" * s for s in sizes))
    lines += ["  ".join(_pad(c, s) for c, s in zip(r, sizes, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)


def print_cases(rows: Sequence[dict[str, Any]], *, now: datetime) -> None:
    if not rows:
        print("(案件はありません)")
        return
    table = []
    for r in rows:
        created = datetime.fromisoformat(r["created_at"])
        age = (now - created).days
        customer = r["customer_code"] or "-"
        if r.get("customer_name"):
            customer += f" {r['customer_name']}"
        table.append(
            [
                r["case_no"],
                r["branch"] or "-",
                customer,
                r["sender"] or "-",
                f"{r['stage_label']}/{r['status_label']}",
                f"{age}日",
                ", ".join(r["defects"]) or "-",
            ]
        )
    print(format_table(["受付番号", "支店", "顧客", "差出人", "段階/判定", "経過", "不備"], table))
