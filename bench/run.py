"""`make bench`: throughput of the intake, end to end, on SQLite.

Writes N Outlook-style submissions (a mix of accepted and returned) into a
fresh Maildir, runs one `poll` over them (parse, check, file, render, write the
outbox, deliver to a directory, mark) and prints messages per second. A second
poll over the same, now processed, mailbox shows what an idle poll costs.
Then the raw mail storage per 1,000 requests (``storage_bench``), the
workbench with 100,000 cases (``web_bench``), a year of a busy desk on
PostgreSQL (``year_bench``; ``BENCH_ARGS="--year-requests 0"`` skips it), the
UNIS import, ``bench/throughput.py`` (the IMAP raw fetch, the floor, mailbot
and django-helpdesk on one corpus in one run) and, last, how long a branch
waits for its answer under `mailbot run` with IMAP IDLE (``latency_bench``).
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from mailbot.adapters.database.engine import make_engine, upgrade
from tests.domain.builders import FORM
from tests.fixtures.bot import DESK, SHIBUYA_MGR, make_harness
from tests.mailfactory import build_mail


def submission(i: int, code: str, tag: str) -> bytes:
    """The i-th benchmark request, in turn Outlook, Gmail and iPhone style."""
    return build_mail(
        style=("outlook", "gmail", "iphone")[i % 3],
        subject=f"フレッツエスカ 渋谷支店 ㈱ベンチ{i}",
        sender=f"担当{i} <staff{i}@usen.co.jp>",
        to=[DESK],
        # Every fifth request forgets the manager and is returned.
        cc=[] if i % 5 == 0 else [SHIBUYA_MGR],
        body=f"お疲れ様です。\n顧客CD:{code}\nよろしくお願いします。\n",
        attachments=[FORM],
        message_id=f"<{tag}-{i}@usen.co.jp>",
    )


def unis_row(code: str) -> str:
    return f"{code},株式会社ベンチ,1,有効,C{code},001,Z200214,NTTフレッツ光取次,受注,2026/12/10,渋谷支店"


def run_maildir(count: int, db_url: str | None, root: Path) -> None:
    url = db_url or f"sqlite:///{root / 'bench.sqlite3'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    harness = make_harness(root, url)
    codes = [f"{100000000 + i}" for i in range(count)]
    harness.import_unis([unis_row(c) for c in codes], as_of=datetime(2030, 1, 1, tzinfo=UTC))
    for i, code in enumerate(codes):
        harness.deliver(submission(i, code, "bench"), name=f"{1700000000 + i}.bench{i}.host")
    started = time.perf_counter()
    report = harness.poll()
    elapsed = time.perf_counter() - started
    assert report.processed == count, report
    idle_started = time.perf_counter()
    idle = harness.poll()
    idle_elapsed = time.perf_counter() - idle_started
    assert idle.processed == 0
    print(f"maildir+{url.split(':')[0]}: {count} submissions in {elapsed:.1f} s = {count / elapsed:.0f} messages/s")
    print(f"  {report.delivered} mails delivered; idle poll over the processed mailbox: {idle_elapsed * 1000:.0f} ms")
    harness.app.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--db-url", help="benchmark another database (default: a temp SQLite file)")
    parser.add_argument(
        "--storage-count", type=int, default=1000, help="requests of the raw mail storage benchmark (0: skip)"
    )
    parser.add_argument("--unis-rows", type=int, default=2_000_000, help="rows of the UNIS import benchmark (0: skip)")
    parser.add_argument(
        "--throughput-count", type=int, default=200, help="requests of the IMAP throughput corpus (bench/throughput.py)"
    )
    parser.add_argument("--no-peer", dest="peer", action="store_false", help="leave django-helpdesk out of throughput")
    parser.add_argument(
        "--year-requests", type=int, default=50_000, help="requests of the year-of-a-desk benchmark (0: skip)"
    )
    parser.add_argument("--year-messages", type=int, default=250_000, help="inbound messages of that year")
    parser.add_argument(
        "--latency-requests", type=int, default=50, help="requests of the `mailbot run` latency benchmark (0: skip)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run_maildir(args.count, args.db_url, Path(tmp))
    if args.storage_count:
        from bench import storage_bench

        storage_bench.main(args.storage_count)
    from bench import web_bench

    web_bench.main()
    if args.year_requests:
        from bench import year_bench

        year_bench.main(args.year_requests, args.year_messages)
    if args.unis_rows:
        from bench import unis_bench

        with tempfile.TemporaryDirectory() as tmp:
            unis_bench.main(args.unis_rows, Path(tmp))
    from bench import latency_bench, throughput

    # The year's commands ran the CLI in this process, which set up logging: a line a
    # message on stderr would be timed as mailbot's work here and not when
    # bench/throughput.py runs on its own.
    _logging_as_at_start()
    throughput.main(args.throughput_count, peer=args.peer)
    if args.latency_requests:
        # Each request as the previous reply arrives (the bot still finishing that
        # poll), then with the bot idle in IDLE when the next one comes.
        latency_bench.main(args.latency_requests)
        latency_bench.main(args.latency_requests, pause=2.0)


def _logging_as_at_start() -> None:
    """No handler and warnings only, as in a fresh interpreter."""
    root = logging.getLogger()
    root.handlers.clear()
    root.setLevel(logging.WARNING)


if __name__ == "__main__":
    main()
