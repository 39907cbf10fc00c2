"""The IMAP figure of `make bench`: Dovecot end to end beside a raw imapclient fetch.

Starts a private Dovecot (the test fixture's server) and an SMTP sink on
loopback, APPENDs N submissions, then measures in the same run:

* raw: imapclient alone fetching every message with BODY.PEEK[];
* end to end: one `poll` (fetch, decide, file, reply through SMTP with a copy
  in Sent, mark with a keyword and move to a folder).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from imapclient import IMAPClient

from bench.run import submission, unis_row
from mailbot.adapters.database.engine import make_engine, upgrade
from tests.fixtures.bot import make_harness, use_real_servers
from tests.fixtures.dovecot import DovecotMailbox, DovecotServer, _dovecot_binary, _free_port, _mail_ids
from tests.fixtures.smtp_sink import SmtpSink

ENV = "MAILBOT_BENCH_IMAP_PASSWORD"


def _raw_fetch(mailbox: DovecotMailbox) -> tuple[int, float]:
    started = time.perf_counter()
    with IMAPClient(mailbox.host, mailbox.port, ssl=False, timeout=30) as client:
        client.login(mailbox.user, mailbox.password)
        client.select_folder("INBOX", readonly=True)
        uids = client.search("ALL")
        fetched = 0
        for start in range(0, len(uids), 100):
            fetched += len(client.fetch(uids[start : start + 100], ["BODY.PEEK[]"]))
    return fetched, time.perf_counter() - started


def main(count: int) -> None:
    binary = _dovecot_binary()
    if binary is None:
        print("imap: skipped (dovecot is not installed: apt-get install dovecot-imapd)")
        return
    uid, gid = _mail_ids()
    root = Path(tempfile.mkdtemp(prefix="mailbot-bench-dovecot-"))
    server = DovecotServer(root=root, port=_free_port(), mail_uid=uid, mail_gid=gid, binary=binary)
    sink = SmtpSink()
    work = Path(tempfile.mkdtemp(prefix="mailbot-bench-"))
    try:
        server.write_config()
        server.start()
        sink.start()
        user, password = server.add_user()
        mailbox = DovecotMailbox(server=server, user=user, password=password)
        codes = [f"{200000000 + i}" for i in range(count)]
        with IMAPClient(mailbox.host, mailbox.port, ssl=False, timeout=30) as client:
            client.login(user, password)
            for i, code in enumerate(codes):
                client.append("INBOX", submission(i, code, "imap-bench"))
        fetched, raw_seconds = _raw_fetch(mailbox)
        assert fetched == count

        url = f"sqlite:///{work / 'bench.sqlite3'}"
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        os.environ[ENV] = password
        harness = make_harness(work, url)
        use_real_servers(harness, smtp_port=sink.port, imap=(mailbox.port, user, ENV))
        harness.import_unis([unis_row(c) for c in codes], as_of=datetime(2030, 1, 1, tzinfo=UTC))
        started = time.perf_counter()
        report = harness.poll()
        seconds = time.perf_counter() - started
        assert report.processed == count, report
        harness.app.close()

        raw_rate, e2e_rate = fetched / raw_seconds, count / seconds
        print(f"imap raw fetch (imapclient, BODY.PEEK[]): {count} in {raw_seconds:.2f} s = {raw_rate:.0f} messages/s")
        print(
            "imap end to end (fetch, decide, file, reply via SMTP + Sent copy, mark, move): "
            f"{count} in {seconds:.1f} s = {e2e_rate:.0f} messages/s"
        )
        print(
            f"  ratio end to end / raw fetch = {e2e_rate / raw_rate:.4f} "
            f"(the raw fetch is {raw_rate / e2e_rate:.0f}x faster); {len(sink.messages)} mails at the SMTP sink"
        )
    finally:
        sink.stop()
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
