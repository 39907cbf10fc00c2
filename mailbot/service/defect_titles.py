"""The defects as the desk reads them: titles and explanations from the templates' ``_defects.j2``.

For the web's case pages, the CLI's lists and the demo: the wording lives in
one template, the same the return mail explains a defect with.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any

from mailbot.adapters.templates import Renderer
from mailbot.domain.clock import format_short
from mailbot.domain.model import Defect
from mailbot.service.mails import readable_detail

__all__ = ["FACT_LABELS", "UNSHOWN_FACTS", "defect_explanations", "defect_facts", "defect_titles", "short_jst"]

# Each fact a check records about a defect (Defect.detail), as the case page's check table says it,
# in this order: "{}" is the value. The return mail explains a defect in its own words (_defects.j2).
FACT_LABELS: Mapping[str, str] = MappingProxyType(
    {
        "by_person": "デスクが選んだ不備(返却時のコメント参照)",
        "customer_code": "顧客CD {}",
        "customer_name": "{}",
        "codes": "記載された顧客CD {}",
        "digits": "顧客CD {}桁",
        "pdf": "添付PDFあり",
        "subject": "件名「{}」",
        "branch": "支店 {}",
        "managers": "支店長 {}",
        "document": "必要な書類「{}」",
        "flow": "フロー {}",
        "received": "受信した添付 {}",
        "filename": "ファイル「{}」",
        "problem": "{}",
        "lines": "使用中の明細 {}",
        "customer_class": "顧客区分 {}",
        "status": "顧客状態 {}",
        "line": "明細 {}",
        "contract": "契約No {}",
        "contracts": "BGM等の契約No {}",
        "pattern": "登録パターン{}",
        "screen": "{}画面",
        "field": "「{}」",
        "actual": "現在 {}",
        "expected": "正しくは {}",
        "unis_as_of": "UNIS {}時点",
    }
)
# Facts the others already say (the kind of an unreadable file is in its problem; a 未加入店 in its class).
UNSHOWN_FACTS = frozenset({"kind", "non_subscriber"})


def short_jst(iso: str) -> str:
    """12/07 09:00: a stored moment (ISO) in the desk's zone, short enough for a table cell."""
    with contextlib.suppress(ValueError):
        return format_short(datetime.fromisoformat(iso))
    return iso


def defect_facts(defect: Mapping[str, Any]) -> str:
    """A defect's facts in the desk's words, e.g. 「顧客CD 100000011、UNIS 12/07 09:00時点」.

    A fact with no label is left out rather than shown as its key.
    """
    detail = dict(defect.get("detail") or {})
    if detail.get("by_person"):
        return FACT_LABELS["by_person"]
    parts = []
    for key, label in FACT_LABELS.items():
        value = detail.get(key)
        if not value or key == "by_person":
            continue
        parts.append(label.format(short_jst(str(value)) if key == "unis_as_of" else value))
    return "、".join(parts)


def defect_titles(renderer: Renderer) -> Any:
    """The Japanese defect titles from ``_defects.j2`` (the one place the wording lives)."""
    try:
        module = renderer.env.get_template("_defects.j2").module
        return lambda code: str(module.title(code))  # type: ignore[attr-defined]
    except Exception:  # fall back to the code itself
        return str


def defect_explanations(renderer: Renderer) -> Any:
    """A defect ({"code", "detail"}) as the return mail explains it (``_defects.j2``), UNIS times in JST."""
    try:
        module = renderer.env.get_template("_defects.j2").module
    except Exception:  # fall back to the facts themselves
        return lambda d: ", ".join(f"{k}={v}" for k, v in dict(d.get("detail") or {}).items() if v)

    def explain(defect: dict[str, Any]) -> str:
        detail = readable_detail(Defect(str(defect["code"]), dict(defect.get("detail") or {})))
        return " ".join(str(module.explain({"code": defect["code"], "detail": detail})).split())  # type: ignore[attr-defined]

    return explain
