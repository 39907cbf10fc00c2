"""`make bench`: the workbench's board and case page with 100,000 cases on PostgreSQL.

A scratch database gets N cases (with their ledger rows and events) in bulk;
the pages are then requested in-process through Starlette's test client, so
the figures are the server's own time: the queries and the rendering.
"""

from __future__ import annotations

import tempfile
import time
import uuid
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, text

from bench.scratch import create_scratch, drop_scratch
from bench.timing import log_in, median_ms, page
from mailbot.adapters.database.engine import make_engine, upgrade
from mailbot.adapters.database.schema import Case, CaseEvent, Inbound
from tests.fixtures.bot import make_harness

BRANCHES = ("渋谷支店", "新宿支店", "大阪支店")
NAMES = ("株式会社さくら商事", "有限会社みどり", "株式会社ひかり", "喫茶こだま", "株式会社あおば")


def _fill(url: str, count: int) -> None:
    engine = make_engine(url)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    batch = 5000
    with engine.begin() as conn:
        for first in range(0, count, batch):
            cases, inbound, events = [], [], []
            for i in range(first, min(first + batch, count)):
                at = start + timedelta(minutes=5 * i)
                status = ("accepted", "returned", "accepted", "waiting_unis")[i % 4]
                stage = {"accepted": "accepted"}.get(status, "received")
                name = f"{NAMES[i % len(NAMES)]}{i}"
                cases.append(
                    {"id": i + 1, "case_no": f"FE-2026-{i + 1:05d}", "year": 2026, "seq": i + 1,
                     "branch": BRANCHES[i % 3], "customer_code": f"{100000000 + i}", "customer_name": name,
                     "customer_key": name, "status": status, "stage": stage, "defects": [],
                     "waiting_since": at if status == "waiting_unis" else None, "return_count": i % 2,
                     "created_at": at, "updated_at": at, "sender": f"staff{i % 300}@usen.co.jp"}
                )  # fmt: skip
                inbound.append(
                    {"source": "bench", "source_key": f"k{i}", "identity": f"<b{i}@usen.co.jp>",
                     "message_id": f"<b{i}@usen.co.jp>", "subject": f"フレッツエスカ {BRANCHES[i % 3]}",
                     "sender": f"staff{i % 300}@usen.co.jp", "disposition": "case", "reason": "new_request",
                     "case_id": i + 1, "defects": [], "problems": [], "received_at": at, "processed_at": at,
                     "body_text": f"お疲れ様です。\n顧客CD:{100000000 + i}\n光回線の取次をお願いします。"}
                )  # fmt: skip
                events.append(
                    {"case_id": i + 1, "at": at, "status": status, "defects": [], "reason": "new_request",
                     "event": {"accepted": "accept", "returned": "return"}.get(status, "wait"), "stage": stage,
                     "actor": "mailbot"}
                )  # fmt: skip
            conn.execute(insert(Case), cases)
            conn.execute(insert(Inbound), inbound)
            conn.execute(insert(CaseEvent), events)
        conn.execute(text("SELECT setval(pg_get_serial_sequence('cases', 'id'), :n)"), {"n": count})
        conn.execute(text("ANALYZE"))
    engine.dispose()


def main(count: int = 100_000) -> None:
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message=".*httpx2.*")
    from starlette.testclient import TestClient

    from mailbot.entrypoints.web.app import create_app

    name = f"mailbot_bench_{uuid.uuid4().hex[:10]}"
    url = create_scratch(name, "web")
    if url is None:
        return
    try:
        upgrade(make_engine(url))
        started = time.perf_counter()
        _fill(url, count)
        filled = time.perf_counter() - started
        with tempfile.TemporaryDirectory() as tmp:
            harness = make_harness(Path(tmp), url)
            harness.app.accounts.add("bench", "viewer", "bench-password-1")
            client = TestClient(create_app(harness.app, secret="bench"))
            log_in(client, "bench", "bench-password-1")
            paths = {
                "board, first page": "/",
                "board, page 1000": "/?page=1000",
                "board, customer name search": "/?customer=みどり12345",
                "board, free text search": "/?q=光回線の取次&branch=大阪支店",
                "case page": f"/cases/FE-2026-{count // 2:05d}",
            }
            figures = {label: median_ms(page(client, path), 20) for label, path in paths.items()}
            harness.app.close()
        print(f"web on PostgreSQL, {count:,} cases ({filled:.0f} s to load), median of 20 requests:")
        for label, ms in figures.items():
            print(f"  {label:<30} {ms:7.1f} ms")
    finally:
        drop_scratch(name)


if __name__ == "__main__":
    main()
