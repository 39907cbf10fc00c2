"""UNIS import: rows/s and peak RSS for a full export, on SQLite and PostgreSQL.

Writes a CP932 export of N rows (default 2,000,000, about 210 MB) and imports
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


def write_export(path: Path, rows: int) -> None:
    with path.open("w", encoding="cp932", newline="") as out:
        out.write(HEADER + "\r\n")
        for i in range(rows):
            # Two order lines per customer, one customer in 50 with a code Excel shortened.
            code = f"{(i // 2) + 10_000_000:09d}" if i % 100 else f"{(i // 2) + 10_000_000}"
            out.write(
                f"{code},株式会社ベンチ{i // 2},1,有効,C{i:09d},{i % 2 + 1:03d},Z200214,"
                f"NTTフレッツ光取次,受注,2026/12/10,渋谷支店\r\n"
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


def main(rows: int, root: Path) -> None:
    path = root / "unis-export.csv"
    write_export(path, rows)
    print(f"unis export: {rows:,} rows, {path.stat().st_size / 1e6:.0f} MB (CP932)")
    _import(path, f"sqlite:///{root / 'unis.sqlite3'}", "sqlite")
    url = create_scratch(SCRATCH_DB, "unis import postgresql")
    if url is not None:
        try:
            _import(path, url, "postgresql")
        finally:
            drop_scratch(SCRATCH_DB)
    path.unlink()
