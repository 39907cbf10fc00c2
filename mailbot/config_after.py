"""The config of the case's life after acceptance: progress list, notices, reminders,
事務センター, request flows and the UBD partner.

Read by :func:`mailbot.config.load_config` through :func:`read_after_acceptance`;
every error names the file, the table and the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from mailbot.domain.addresses import ADDRESS_EXAMPLE, parse_address
from mailbot.domain.lifecycle import PROGRESS_STAGES, Stage
from mailbot.domain.policy import DocumentRule, Flow

__all__ = [
    "DEFAULT_PROGRESS_COLUMNS",
    "DEFAULT_PROGRESS_STATUS",
    "AfterConfig",
    "FlowConfig",
    "ProgressConfig",
    "read_after_acceptance",
]

# NTT's progress list: our name of a column -> its header in the file.
DEFAULT_PROGRESS_COLUMNS: Mapping[str, str] = MappingProxyType(
    {
        "p_number": "P番号",
        "customer_code": "顧客CD",
        "customer_name": "お客様名",
        "status": "進捗",
        "construction_date": "工事日",
        "completed_date": "開通日",
        "cancelled_date": "キャンセル日",
    }
)
# Columns a progress list must have; the others are read when present.
REQUIRED_PROGRESS_COLUMNS = ("p_number", "status")
# The progress list's words for what happened at NTT -> the stage it leads to; [progress.status] may name any of
# lifecycle.PROGRESS_STAGES (the stages NTT's list can report).
DEFAULT_PROGRESS_STATUS: Mapping[str, Stage] = MappingProxyType(
    {
        "受付": Stage.ENTERED,
        "工事日確定": Stage.CONSTRUCTION_SCHEDULED,
        "開通": Stage.COMPLETED,
        "キャンセル": Stage.CANCELLED,
    }
)


@dataclass(frozen=True)
class ProgressConfig:
    columns: Mapping[str, str] = field(default_factory=lambda: DEFAULT_PROGRESS_COLUMNS)
    status: Mapping[str, Stage] = field(default_factory=lambda: DEFAULT_PROGRESS_STATUS)
    watch_dir: Path | None = None


# A flow of the manual's §3 as configured in [[flows]] (the domain's Flow).
FlowConfig = Flow


@dataclass(frozen=True)
class AfterConfig:
    progress: ProgressConfig = field(default_factory=ProgressConfig)
    # [notices] completed: the branch is told of the opening.
    notify_completed: bool = True
    # [reminders] cancel_days: how long a cancelled case's UNIS line may stay 受注.
    cancel_days: int = 7
    # [reminders] bgm_items: the 契約品目 codes that are BGM lines (empty: every line but Z200214).
    bgm_items: tuple[str, ...] = ()
    # [jimu_center] recipients: who gets the UNIS worklist.
    jimu_recipients: tuple[str, ...] = ()
    flows: tuple[Flow, ...] = ()
    # [ubd] senders / domains: the UBD partner (outside internal_domains).
    ubd_senders: tuple[str, ...] = ()
    ubd_domains: tuple[str, ...] = ()


def _address(table: Any, key: str, value: str) -> str:
    """The same rule as [desk] and [[branches]] (:func:`mailbot.domain.addresses.parse_address`)."""
    addr = parse_address(value)
    if addr is None:
        raise table.fail(key, f"expected {ADDRESS_EXAMPLE}, got {value!r}")
    return addr


def _strings_map(table: Any, what: str) -> dict[str, str]:
    result: dict[str, str] = {}
    for key, value in table.data.items():
        if not isinstance(value, str) or not value.strip():
            raise table.fail(key, f"expected {what}, got {value!r}")
        result[key] = value.strip()
    return result


def read_after_acceptance(root: Any, base: Path) -> AfterConfig:
    """[progress], [progress.columns], [progress.status], [notices], [reminders], [jimu_center], [[flows]], [ubd]."""
    progress = root.table("progress")
    watch = progress.get("watch_dir", str, what="a path")
    columns_table = progress.table("columns")
    columns = dict(DEFAULT_PROGRESS_COLUMNS)
    given = _strings_map(columns_table, "the column's header text")
    for key in given:
        if key not in DEFAULT_PROGRESS_COLUMNS:
            raise columns_table.fail(key, f"unknown column; expected one of {', '.join(DEFAULT_PROGRESS_COLUMNS)}")
    columns.update(given)
    status_table = progress.table("status")
    status = dict(DEFAULT_PROGRESS_STATUS) if not status_table.data else {}
    names = {s.value: s for s in PROGRESS_STAGES}
    for value, stage in _strings_map(status_table, "a stage name").items():
        if stage not in names:
            raise status_table.fail(value, f"expected one of {', '.join(names)}, got {stage!r}")
        status[value.strip()] = names[stage]
    progress.check_unknown()

    notices = root.table("notices")
    notify_completed = notices.get("completed", bool, True)
    notices.check_unknown()

    reminders = root.table("reminders")
    cancel_days = reminders.get("cancel_days", int, 7)
    if cancel_days < 0:
        raise reminders.fail("cancel_days", f"must be 0 or more, got {cancel_days}")
    bgm_items = tuple(i.upper() for i in reminders.strings("bgm_items"))
    reminders.check_unknown()

    jimu = root.table("jimu_center")
    recipients = tuple(_address(jimu, "recipients", a) for a in jimu.strings("recipients"))
    jimu.check_unknown()

    ubd = root.table("ubd")
    ubd_senders = tuple(_address(ubd, "senders", a) for a in ubd.strings("senders"))
    ubd_domains = tuple(d.lower().lstrip("@") for d in ubd.strings("domains"))
    ubd.check_unknown()

    return AfterConfig(
        progress=ProgressConfig(
            columns=MappingProxyType(columns),
            status=MappingProxyType(status),
            watch_dir=(base / Path(watch).expanduser()).resolve() if watch else None,
        ),
        notify_completed=notify_completed,
        cancel_days=cancel_days,
        bgm_items=bgm_items,
        jimu_recipients=recipients,
        flows=_flows(root),
        ubd_senders=ubd_senders,
        ubd_domains=ubd_domains,
    )


def _tables(parent: Any, key: str, where: str) -> list[Any]:
    parent.used.add(key)
    value = parent.data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise parent.fail(key, f"expected [[{where}]] tables")
    return [type(parent)(parent.file, f"[[{where}]] #{i + 1}", v) for i, v in enumerate(value)]


def _flows(root: Any) -> tuple[Flow, ...]:
    flows = []
    seen: set[str] = set()
    for table in _tables(root, "flows", "flows"):
        name = table.get("name", str, required=True, what='the flow\'s name, e.g. "通常"')
        if name in seen:
            raise table.fail("name", f"flow {name!r} is configured twice")
        seen.add(name)
        documents = []
        for doc in _tables(table, "documents", "flows.documents"):
            doc_name = doc.get("name", str, required=True, what="the document's name")
            keywords = doc.strings("keywords") or (doc_name,)
            documents.append(DocumentRule(doc_name, keywords, doc.get("required", bool, True)))
            doc.check_unknown()
        flows.append(
            Flow(
                name=name,
                keywords=table.strings("keywords"),
                senders=tuple(_address(table, "senders", a) for a in table.strings("senders")),
                departments=table.strings("departments"),
                regions=table.strings("regions"),
                documents=tuple(documents),
            )
        )
        table.check_unknown()
    return tuple(flows)
