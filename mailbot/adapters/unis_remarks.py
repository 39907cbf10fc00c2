"""The optional 明細備考 column of a UNIS export.

The UNIS reader takes the eleven columns of the standard export. Some exports
carry a twelfth, 明細備考 (the line's remark), where a line moved from a
non-subscriber to a new customer says ``加入前顧客コード:XXXXXXXXX``. This
module takes that column out before the import and keeps the remarks for the
reconciliation, so the reader itself is unchanged.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from mailbot.domain.japanese import normalize

__all__ = ["REMARK_COLUMN", "UnisRemarks", "previous_customer", "split_remarks", "split_remarks_of_file"]

REMARK_COLUMN = "明細備考"
# (顧客CD, 契約No, 明細No) -> the remark.
UnisRemarks = dict[tuple[str, str, str], str]
_PREVIOUS = re.compile(r"加入前顧客(?:コード|CD)\s*[:：]\s*(\d[\d-]*)")


def previous_customer(remark: str) -> str | None:
    """The old customer code a remark names (加入前顧客コード:XXXXXXXXX), or None."""
    match = _PREVIOUS.search(normalize(remark))
    return match[1].replace("-", "") if match else None


def _decode(data: bytes) -> str | None:
    for encoding in ("utf-8-sig", "cp932"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return None


def split_remarks(data: bytes) -> tuple[bytes, UnisRemarks]:
    """The export without its 明細備考 column (UTF-8), and the remarks; the data unchanged when it has none."""
    head = data[:4096]
    if REMARK_COLUMN.encode("utf-8") not in head and REMARK_COLUMN.encode("cp932") not in head:
        return data, {}
    text = _decode(data)
    if text is None:
        return data, {}  # the reader reports the bad bytes with their line
    rows = list(csv.reader(io.StringIO(text, newline="")))
    if not rows:
        return data, {}
    header = [normalize(h).replace(" ", "") for h in rows[0]]
    if REMARK_COLUMN not in header:
        return data, {}
    at = header.index(REMARK_COLUMN)
    remarks: UnisRemarks = {}
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    for number, row in enumerate(rows):
        remark = row[at] if at < len(row) else ""
        kept = row[:at] + row[at + 1 :]
        writer.writerow(kept)
        if number and remark.strip() and len(kept) >= 6:
            key = (normalize(kept[0]).replace("-", "").strip(), normalize(kept[4]).strip(), normalize(kept[5]).strip())
            remarks[key] = remark.strip()
    return out.getvalue().encode("utf-8"), remarks


def split_remarks_of_file(path: Path) -> tuple[Path | bytes, UnisRemarks]:
    """What to import from ``path``, and its remarks.

    Without a 明細備考 column (the standard export) the path itself, so the
    import streams it; with one, the file is read and the column taken out.
    """
    with path.open("rb") as handle:
        head = handle.read(4096)
    if REMARK_COLUMN.encode("utf-8") not in head and REMARK_COLUMN.encode("cp932") not in head:
        return path, {}
    return split_remarks(path.read_bytes())
