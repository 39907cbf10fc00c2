"""Raw mail: what compressing it costs, and how big the database gets per 1,000 requests.

The requests are branch mail as it comes: Outlook, Gmail and iPhone style,
each with a scanned application form (a PDF whose page is a JPEG stream,
150–450 KB, nothing left for a compressor but the base64) and an .xlsx form.

1. Compression of 60 such mails with zlib 1 and 6 (6 is what mailbot used
   before 0006), zstd 1 and 3 (3 is what it uses now): ratio and time.
2. N requests (default 1,000) filed through the intake (Maildir poll: parse,
   check, file, reply to a directory), with raw mail in the database and
   with the directory store, on SQLite and on PostgreSQL (a scratch database
   beside ``MAILBOT_BENCH_PG``, dropped afterwards; skipped when unreachable):
   the database's size, the raw mail's share, the directory's size.
"""

from __future__ import annotations

import random
import tempfile
import time
import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import zstandard
from sqlalchemy import create_engine, text
from sqlalchemy.exc import SQLAlchemyError

from bench.scratch import create_scratch, drop_scratch
from mailbot.adapters.database.engine import make_engine, upgrade
from tests.domain.builders import xlsx_form
from tests.fixtures.bot import DESK, SHIBUYA_MGR, make_harness
from tests.mailfactory import build_mail

SCRATCH_DB = "mailbot_bench_storage"
_XLSX = xlsx_form()


def scanned_pdf(i: int) -> bytes:
    """A one-page scan: PDF objects around a JPEG stream (random bytes: a JPEG has no redundancy left)."""
    rng = random.Random(i)
    size = rng.randint(150_000, 450_000)
    head = b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    image = (
        b"4 0 obj<</Type/XObject/Subtype/Image/Width 1654/Height 2339/ColorSpace/DeviceGray"
        b"/BitsPerComponent 8/Filter/DCTDecode/Length " + str(size).encode() + b">>stream\n"
    )
    return head + image + rng.randbytes(size) + b"\nendstream endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"


def request(i: int, code: str) -> bytes:
    return build_mail(
        style=("outlook", "gmail", "iphone")[i % 3],
        subject=f"フレッツエスカ 渋谷支店 ㈱ベンチ{i}",
        sender=f"担当{i} <staff{i}@usen.co.jp>",
        to=[DESK],
        cc=[] if i % 5 == 0 else [SHIBUYA_MGR],
        body=f"お疲れ様です。\n顧客CD:{code}\n回線単品申込書を添付します。よろしくお願いします。\n",
        attachments=[(f"回線単品申込書_ベンチ{i}.pdf", scanned_pdf(i)), (f"申込書_ベンチ{i}.xlsx", _XLSX)],
        message_id=f"<storage-{i}@usen.co.jp>",
    )


def compression(count: int = 60) -> None:
    mails = [request(i, f"{100000000 + i}") for i in range(count)]
    total = sum(map(len, mails))
    print(f"raw mail compression: {count} requests, {total / count / 1024:.0f} KiB each on average")
    zstd_d = zstandard.ZstdDecompressor()
    methods: list[tuple[str, Callable[[bytes], bytes], Callable[[bytes], bytes]]] = [
        ("zlib 1", lambda m: zlib.compress(m, 1), zlib.decompress),
        ("zlib 6 (before)", lambda m: zlib.compress(m, 6), zlib.decompress),
        ("zstd 1", zstandard.ZstdCompressor(level=1).compress, zstd_d.decompress),
        ("zstd 3 (now)", zstandard.ZstdCompressor(level=3).compress, zstd_d.decompress),
    ]
    for name, pack, unpack in methods:
        started = time.perf_counter()
        packed = [pack(m) for m in mails]
        packing = time.perf_counter() - started
        started = time.perf_counter()
        for p in packed:
            unpack(p)
        unpacking = time.perf_counter() - started
        ratio = sum(map(len, packed)) / total
        print(
            f"  {name:16} ratio {ratio:.3f}, compress {packing / count * 1000:5.1f} ms/mail "
            f"({total / packing / 1e6:5.0f} MB/s), decompress {unpacking / count * 1000:4.1f} ms/mail"
        )


def unis_row(code: str) -> str:
    return f"{code},株式会社ベンチ,1,有効,C{code},001,Z200214,NTTフレッツ光取次,受注,2026/12/10,渋谷支店"


def file_requests(count: int, url: str, root: Path, raw: str, size_of: Callable[[], int]) -> tuple[float, int, int]:
    """File ``count`` requests through the intake: seconds taken, the mail's total size, the empty schema's size."""
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    empty = size_of()
    extra = '[storage]\nraw = "directory"\npath = "raw"\n' if raw == "directory" else ""
    harness = make_harness(root, url, extra_toml=extra)
    codes = [f"{100000000 + i}" for i in range(count)]
    harness.import_unis([unis_row(c) for c in codes], as_of=datetime(2030, 1, 1, tzinfo=UTC))
    size = 0
    for i, code in enumerate(codes):
        mail = request(i, code)
        size += len(mail)
        harness.deliver(mail, name=f"{1700000000 + i}.storage{i}.host")
    started = time.perf_counter()
    report = harness.poll()
    elapsed = time.perf_counter() - started
    assert report.processed == count, report
    harness.app.close()
    for item in (root / "Maildir").rglob("*.host*"):
        item.unlink()  # the mailbox is not what is measured; free the disk for the next run
    return elapsed, size, empty


def directory_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def sqlite_sizes(path: Path) -> tuple[int, dict[str, int]]:
    engine = create_engine(f"sqlite:///{path}")
    with engine.connect() as connection:
        connection.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        try:
            tables = {
                str(name): int(size)
                for name, size in connection.execute(
                    text("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC")
                )
            }
        except SQLAlchemyError:
            tables = {}  # this SQLite lacks the dbstat table
    engine.dispose()
    return path.stat().st_size, tables


def postgres_sizes(url: str) -> tuple[int, dict[str, int]]:
    engine = create_engine(url)
    with engine.connect() as connection:
        database = int(connection.scalar(text("SELECT pg_database_size(current_database())")) or 0)
        tables = {
            str(name): int(size)
            for name, size in connection.execute(
                text("SELECT relname, pg_total_relation_size(relid) FROM pg_statio_user_tables ORDER BY 2 DESC LIMIT 4")
            )
        }
    engine.dispose()
    return database, tables


def _first(sizes: Callable[[Any], tuple[int, dict[str, int]]], where: Any) -> int:
    return sizes(where)[0]


def _mb(n: int) -> str:
    return f"{n / 1e6:,.1f} MB"


def _report(
    label: str, count: int, elapsed: float, size: int, sizes: tuple[int, int, dict[str, int]], root: Path
) -> None:
    empty, database, tables = sizes
    per = 1000 / count
    raw_dir = directory_size(root / "raw")
    top = ", ".join(f"{name} {_mb(int(value * per))}" for name, value in list(tables.items())[:3])
    print(
        f"  {label}: {count} requests ({_mb(size)} of mail) filed in {elapsed:.1f} s = {count / elapsed:.1f}/s; "
        f"database {_mb(empty)} empty, {_mb(database)} after; per 1,000 requests: database "
        f"+{_mb(int((database - empty) * per))}, raw directory {_mb(int(raw_dir * per))}"
        + (f" (largest: {top})" if top else "")
    )


def main(count: int = 1000) -> None:
    compression()
    print(f"database size after filing {count} requests (scanned PDF + .xlsx each):")
    for raw in ("database", "directory"):
        with tempfile.TemporaryDirectory(prefix="mailbot-storage-") as tmp:
            root = Path(tmp)
            path = root / "bench.sqlite3"
            elapsed, size, empty = file_requests(
                count, f"sqlite:///{path}", root, raw, partial(_first, sqlite_sizes, path)
            )
            database, tables = sqlite_sizes(path)
            _report(f"sqlite, raw in the {raw}", count, elapsed, size, (empty, database, tables), root)
    for raw in ("database", "directory"):
        url = create_scratch(SCRATCH_DB, "  postgresql")
        if url is None:
            break
        try:
            with tempfile.TemporaryDirectory(prefix="mailbot-storage-") as tmp:
                root = Path(tmp)
                elapsed, size, empty = file_requests(count, url, root, raw, partial(_first, postgres_sizes, url))
                database, tables = postgres_sizes(url)
                _report(f"postgresql, raw in the {raw}", count, elapsed, size, (empty, database, tables), root)
        finally:
            drop_scratch(SCRATCH_DB)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=1000)
    main(parser.parse_args().count)
