"""UNIS import: rows/s and peak RSS for a full export, on SQLite and PostgreSQL.

Writes a CP932 export of N rows with the manual's 27 columns (default
2,000,000, about 560 MB; `--standard` for the eleven-column export) and imports
it once per backend, each in a fresh interpreter so its peak RSS is the
import's own. PostgreSQL: a scratch database created next to the one in
``MAILBOT_BENCH_PG`` (default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``)
and dropped afterwards; skipped when that server cannot be reached.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench.scratch import create_scratch, drop_scratch

HEADER = "顧客CD,顧客名,顧客区分,顧客状態,契約No,明細No,契約品目,品目名,明細状態,完成予定日,支店"
# The manual's full export (mailbot.domain.unis.COLUMN_HEADERS), in the order UNIS's screens fill it.
FULL_HEADER = (
    "顧客CD,顧客名,顧客区分,顧客状態,顧客処理区分,顧客契約種類,支店,契約No,商品区分,支払方法,請求期間,"
    "明細No,明細処理区分,明細契約種類,契約品目,品目名,明細状態,受注登録日,開始年月,完成予定日,契約担当者,"
    "ランニング,シリアルNO,確定日,解約日,解約事由,明細備考"
)
SCRATCH_DB = "mailbot_bench_unis"

_CHILD = """
import resource, sys, time
from datetime import UTC, datetime
from pathlib import Path
from mailbot.adapters.database.engine import make_engine, make_sessionmaker, upgrade
from mailbot.service.unis_import import import_unis

engine = make_engine(sys.argv[2])
upgrade(engine)
now = datetime.now(UTC)
started = time.perf_counter()
result = import_unis(make_sessionmaker(engine), Path(sys.argv[1]), name="bench.csv", as_of=now, now=now)
elapsed = time.perf_counter() - started
engine.dispose()
try:  # VmHWM: ru_maxrss would include the forking bench process's own peak (Linux keeps it over exec)
    peak = next(int(x.split()[1]) for x in open("/proc/self/status") if x.startswith("VmHWM")) // 1024
except OSError:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
print(result.rows, result.customers, elapsed, peak)
"""


def write_export(path: Path, rows: int, *, full: bool = True) -> None:
    with path.open("w", encoding="cp932", newline="") as out:
        out.write((FULL_HEADER if full else HEADER) + "\r\n")
        for i in range(rows):
            # Two order lines per customer, one customer in 50 with a code Excel shortened.
            code = f"{(i // 2) + 10_000_000:09d}" if i % 100 else f"{(i // 2) + 10_000_000}"
            if not full:
                out.write(
                    f"{code},株式会社ベンチ{i // 2},1,有効,C{i:09d},{i % 2 + 1:03d},Z200214,"
                    f"NTTフレッツ光取次,受注,2026/12/10,渋谷支店\r\n"
                )
                continue
            # A BGM line and the Z200214 line under the same contract (the manual's pattern A/B).
            bgm = i % 2 == 0
            item = "U100001,USEN音楽放送,確定" if bgm else "Z200214,NTTフレッツ光取次,受注"
            line = "0 新設,01-01 新設 新設" if bgm else "2 契約変更,11-99 増設 その他"
            out.write(
                f"{code},株式会社ベンチ{i // 2},1 業務用,有効,0 新設,01-01 新設 新設,渋谷支店,C{i // 2:09d},"
                f"0 通常,1 口座振替,1,{i % 2 + 1:03d},{line},{item},2026/11/20,2026/11,2026/11/20,山田 太郎,"
                f"{5500 if bgm else 0},{'P1234567890123' if bgm else ''},{'2025/01/10' if bgm else ''},,,"
                f"{'加入前顧客コード:012345678' if i % 1000 == 1 else ''}\r\n"
            )


def _import(path: Path, url: str, label: str) -> None:
    done = subprocess.run([sys.executable, "-c", _CHILD, str(path), url], capture_output=True, text=True)
    if done.returncode != 0:
        print(f"unis import {label}: failed: {done.stderr.strip().splitlines()[-1:]}")
        return
    rows, customers, elapsed, peak = done.stdout.split()
    rate = int(rows) / float(elapsed)
    print(
        f"unis import {label}: {int(rows):,} rows ({int(customers):,} customers) in {float(elapsed):.1f} s"
        f" = {rate:,.0f} rows/s, peak RSS {peak} MB"
    )


def main(rows: int, root: Path, *, full: bool = True) -> None:
    path = root / "unis-export.csv"
    write_export(path, rows, full=full)
    kind = "the manual's 27 columns" if full else "the standard 11 columns"
    print(f"unis export: {rows:,} rows of {kind}, {path.stat().st_size / 1e6:.0f} MB (CP932)")
    _import(path, f"sqlite:///{root / 'unis.sqlite3'}", "sqlite")
    url = create_scratch(SCRATCH_DB, "unis import postgresql")
    if url is not None:
        try:
            _import(path, url, "postgresql")
        finally:
            drop_scratch(SCRATCH_DB)
    path.unlink()
