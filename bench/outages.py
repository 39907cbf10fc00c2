"""Chaos run: `mailbot run` while PostgreSQL, the mailbox and the relay go away in turn (issue 23).

Everything on loopback and private to this run: a PostgreSQL cluster
(tests/fixtures/pg_cluster.py), Dovecot (tests/fixtures/dovecot.py), an SMTP
sink (tests/fixtures/smtp_sink.py). `mailbot run` (IDLE on, poll every 5 s,
``[alerts] after_minutes = 1``) runs as a subprocess; N requests (default 300)
are APPENDed over 90 s. Meanwhile, seconds from the first APPEND:

* 10: ``pg_ctl restart`` under the bot, and a second process (`mailbot poll
  --once`) delivering at once;
* 25: PostgreSQL stopped for OUTAGE seconds;
* +10: the relay refuses every mail (451) for OUTAGE seconds;
* then Dovecot is stopped for OUTAGE seconds as the relay comes back, so the
  backlog is sent while its copies cannot be filed.

Then it waits for every request to be filed, the outbox to be empty and every
copy filed, stops the bot with SIGTERM and counts: requests lost or filed
twice, mails lost or doubled at the sink, copies missing or doubled in Sent,
the bot's log lines per minute during each outage, its CPU during the
database outage, how long after each service came back the bot said so, and
the alerts. ``python -m bench.outages`` (as root: the cluster runs as
``postgres``); docs/outages.md has the figures of one run.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from contextlib import ExitStack
from email.header import decode_header, make_header
from pathlib import Path

from sqlalchemy import create_engine, text

from tests.domain.builders import FORM
from tests.fixtures.bot import CUSTOMER, DESK, SHIBUYA_MGR, make_harness, use_real_servers
from tests.fixtures.dovecot import DovecotMailbox, DovecotServer, _dovecot_binary, _free_port, _mail_ids
from tests.fixtures.pg_cluster import private_cluster
from tests.fixtures.smtp_sink import SmtpSink
from tests.mailfactory import build_mail

ROOT = Path(__file__).resolve().parents[1]
SECOND = """
import sys, time
from pathlib import Path
from mailbot.bootstrap import build_app
from mailbot.config import load_config
app = build_app(load_config(Path(sys.argv[1])))
sent = 0
for _ in range(6):
    sent += app.intake.deliver_outbox().sent
    time.sleep(0.5)
app.close()
print(f"second process sent {sent} mail(s) without the lock")
"""


class Log:
    """The bot's stderr, each line stamped with when it arrived."""

    def __init__(self, stream: object) -> None:
        self.lines: list[tuple[float, str]] = []
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: object) -> None:
        for raw in stream:  # type: ignore[attr-defined]
            self.lines.append((time.monotonic(), raw.rstrip("\n")))

    def between(self, start: float, end: float) -> list[str]:
        return [line for at, line in self.lines if start <= at < end]

    def first_after(self, start: float, needle: str) -> float | None:
        return next((at for at, line in self.lines if at >= start and needle in line), None)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _request(i: int) -> bytes:
    return build_mail(
        subject=f"フレッツエスカ 渋谷支店 {i}",
        sender=f"担当{i} <staff{i}@usen.co.jp>",
        to=[DESK],
        cc=[SHIBUYA_MGR],
        body=f"顧客CD:{CUSTOMER}",
        attachments=[FORM],
        message_id=f"<chaos-{i}@usen.co.jp>",
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--outage", type=float, default=75.0, help="seconds each service stays away")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    # SIGTERM (a timeout) unwinds like an exception, so the servers and the bot are stopped.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(1))
    binary = _dovecot_binary()
    if binary is None:
        print("dovecot is not installed", file=sys.stderr)
        return 2
    with ExitStack() as stack:
        cluster = stack.enter_context(private_cluster())
        work = Path(stack.enter_context(_tempdir()))
        uid, gid = _mail_ids()
        dovecot_root = work / "dovecot"
        dovecot_root.mkdir()
        server = DovecotServer(root=dovecot_root, port=_free_port(), mail_uid=uid, mail_gid=gid, binary=binary)
        server.write_config()
        server.start()
        stack.callback(server.stop)
        user, password = server.add_user()
        mailbox = DovecotMailbox(server=server, user=user, password=password)
        sink = SmtpSink()
        sink.start()
        stack.callback(sink.stop)
        os.environ["MAILBOT_TEST_IMAP_PASSWORD"] = password
        extra = "[schedule]\npoll_seconds = 5\noutbox_retry_seconds = 5\n\n[alerts]\nafter_minutes = 1\n"
        h = make_harness(work / "bot", cluster.url, extra)
        use_real_servers(h, smtp_port=sink.port, imap=(server.port, user, "MAILBOT_TEST_IMAP_PASSWORD"))
        h.import_unis()
        h.app.close()
        command = [sys.executable, "-m", "mailbot.entrypoints.cli", "--config", str(h.config_path)]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        bot = subprocess.Popen([*command, "run"], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
        log = Log(bot.stderr)
        stack.callback(lambda: bot.poll() is None and bot.kill())

        fed = threading.Event()

        def feed() -> None:
            for i in range(args.count):
                while True:
                    try:
                        mailbox.append(_request(i))
                        break
                    except Exception:
                        time.sleep(0.5)  # Dovecot away: the branches' mail waits at their server
                time.sleep(90.0 / args.count)
            fed.set()

        t0 = time.monotonic()
        threading.Thread(target=feed, daemon=True).start()
        marks: dict[str, float] = {}

        def at(second: float) -> None:
            time.sleep(max(0.0, t0 + second - time.monotonic()))

        at(10)
        marks["restart"] = time.monotonic()
        cluster.restart()
        # The worst second process: one that delivers without asking for the lock at all,
        # six rounds over a few seconds while the bot finds out it lost its lock.
        second = subprocess.run(
            [sys.executable, "-c", SECOND, str(h.config_path)], capture_output=True, text=True, env=env, timeout=300
        )
        marks["second_done"] = time.monotonic()
        at(25)
        marks["db_down"] = time.monotonic()
        cpu_before = _cpu_seconds(bot.pid)
        cluster.stop()
        time.sleep(args.outage)
        cpu_during = _cpu_seconds(bot.pid) - cpu_before
        marks["db_up"] = time.monotonic()
        cluster.start()
        time.sleep(10)
        marks["relay_down"] = time.monotonic()
        sink.refuse_always(451, "4.3.0 Try again later")
        time.sleep(args.outage)
        marks["mailbox_down"] = time.monotonic()
        server.stop()
        sink.accept()
        marks["relay_up"] = time.monotonic()
        time.sleep(args.outage)
        marks["mailbox_up"] = time.monotonic()
        server.start()

        engine = create_engine(cluster.url)

        def settled() -> bool:
            with engine.connect() as c:
                filed = c.execute(text("SELECT count(*) FROM inbound")).scalar_one()
                busy = c.execute(
                    text("SELECT count(*) FROM outbox WHERE status = 'pending' OR copy_pending")
                ).scalar_one()
            # And the bot has seen the mailbox back and said so (its back-off may still run when the rest is done).
            back = log.first_after(marks["mailbox_up"], "all-clear: mailbox available again") is not None
            return bool(fed.is_set() and filed >= args.count and busy == 0 and back)

        deadline = time.monotonic() + 600
        while not settled() and time.monotonic() < deadline:
            time.sleep(1)
        marks["settled"] = time.monotonic()
        bot.send_signal(signal.SIGTERM)
        bot.wait(timeout=120)
        time.sleep(0.5)

        with engine.connect() as c:
            ids = [r[0] for r in c.execute(text("SELECT message_id FROM inbound"))]
            rows = list(c.execute(text("SELECT message_id, status, copy_pending FROM outbox")))
        engine.dispose()
        filed = Counter(ids)
        wanted = {f"<chaos-{i}@usen.co.jp>" for i in range(args.count)}
        at_sink = Counter(str(m.message["Message-ID"]) for m in sink.messages)
        sent_ids = {r[0] for r in rows if r[1] == "sent"}
        in_sent = Counter()
        with mailbox.client() as client:
            client.select_folder("Sent", readonly=True)
            uids = client.search("ALL")
            for data in client.fetch(uids, ["BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"]).values():
                header = data[b"BODY[HEADER.FIELDS (MESSAGE-ID)]"].decode().strip()
                in_sent[header.split(":", 1)[1].strip()] += 1
        subjects = [str(make_header(decode_header(str(m.message["Subject"])))) for m in sink.messages]

        def outage(name: str, start: str, end: str, back: str) -> dict[str, object]:
            lines = log.between(marks[start], marks[end])
            minutes = (marks[end] - marks[start]) / 60
            said = log.first_after(marks[end], back)
            # Warnings and errors: what the outage itself says (INFO is the jobs' and the mail's own lines).
            loud = [line for line in lines if " WARNING " in line or " ERROR " in line or " CRITICAL " in line]
            return {
                "outage": name,
                "seconds": round(marks[end] - marks[start], 1),
                "log_lines": len(lines),
                "log_lines_per_minute": round(len(lines) / minutes, 1),
                "warning_or_error_lines": len(loud),
                "warning_or_error_lines_per_minute": round(len(loud) / minutes, 1),
                "tracebacks": sum("Traceback" in line for line in lines),
                "recovered_after_s": round(said - marks[end], 1) if said is not None else None,
            }

        figures = {
            "requests": args.count,
            "requests_lost": len(wanted - set(filed)),
            "requests_filed_twice": sum(n - 1 for n in filed.values() if n > 1),
            "mails_sent": len(sent_ids),
            "mails_lost": len(sent_ids - set(at_sink)),
            "mails_doubled": sum(n - 1 for n in at_sink.values() if n > 1),
            "copies_missing": len(sent_ids - set(in_sent)),
            "copies_doubled": sum(n - 1 for n in in_sent.values() if n > 1),
            "second_process": second.stdout.strip() or second.stderr.strip()[-300:],
            "lock_lost_lines": sum("lost the poller lock" in line for _, line in log.lines),
            "database_outage_cpu_percent": round(100 * cpu_during / args.outage, 1),
            "outages": [
                outage("database", "db_down", "db_up", "database available again"),
                outage("relay", "relay_down", "relay_up", "relay available again"),
                outage("mailbox", "mailbox_down", "mailbox_up", "mailbox available again"),
            ],
            "restart_lock_taken_again_after_s": _round(log.first_after(marks["restart"], "taken again after"), marks),
            "alerts_mailed": [s for s in subjects if s.startswith("[mailbot] 警告") or s.startswith("[mailbot] 解消")],
            "alerts_on_stderr": [
                line
                for _, line in log.lines
                if line.startswith("mailbot all-clear") or line.startswith("mailbot alert")
            ],
            "settled_after_last_outage_s": round(marks["settled"] - marks["mailbox_up"], 1),
            "bot_exit": bot.returncode,
            "log_lines_total": len(log.lines),
            "run_minutes": round((marks["settled"] - t0) / 60, 1),
        }
        print(json.dumps(figures, ensure_ascii=False, indent=2))
        if args.json:
            args.json.write_text(json.dumps(figures, ensure_ascii=False, indent=2), encoding="utf-8")
        (work.parent / "mailbot-chaos-log.txt").write_text("\n".join(line for _, line in log.lines), encoding="utf-8")
    return 0


def _round(moment: float | None, marks: dict[str, float]) -> float | None:
    return round(moment - marks["restart"], 1) if moment is not None else None


class _tempdir:
    def __enter__(self) -> str:
        import tempfile

        self.path = tempfile.mkdtemp(prefix="mailbot-chaos-")
        os.chmod(self.path, 0o755)  # Dovecot's auth and mail users look inside
        return self.path

    def __exit__(self, *exc: object) -> None:
        import shutil

        shutil.rmtree(self.path, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
