"""The latency figure of `make bench` (issue #12): how long a branch waits for its answer.

A private Dovecot and an SMTP sink on loopback, a config written the way the
tests' harness writes it (IMAP with IDLE, SMTP with a copy in Sent), UNIS rows
imported so every request is accepted or returned on its merits, then
``mailbot run`` as a real subprocess. Requests are APPENDed one at a time;
each one's latency is from just before its APPEND to the moment the sink has
accepted the reply in its thread (In-Reply-To the request's Message-ID). The
next request is APPENDed only after that (at once, or ``--pause`` seconds
later), so the figures are the latency of a quiet mailbox, not of a backlog.
At once is the harder case: the bot is still finishing the previous poll.

Besides the total, each request's time is split at the bot's own log lines
(read from its output as they come): APPEND → "new mail announced" (IDLE and
the watcher), → the intake's line for the message (the poll started, fetched,
decided, committed and marked it), → the reply at the sink (delivery).

Run alone: ``python -m bench.latency_bench [--count 50] [--poll-seconds 60]``.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from imapclient import IMAPClient

from bench.run import submission, unis_row
from mailbot.adapters.database.engine import make_engine, upgrade
from tests.fixtures.bot import make_harness, use_real_servers
from tests.fixtures.dovecot import DovecotServer, _dovecot_binary, _free_port, _mail_ids
from tests.fixtures.smtp_sink import SmtpSink

ENV = "MAILBOT_BENCH_LATENCY_PASSWORD"
# Generous: a reply that takes this long is a failure to report, not a slow figure.
REPLY_DEADLINE_SECONDS = 120.0
START_DEADLINE_SECONDS = 120.0
# Requests slower than the aim (issue #12: p95 at most 2 s) are listed one by one.
SLOW_SECONDS = 2.0


@dataclass
class _BotOutput:
    """The running bot's log lines, each with the monotonic time it was read."""

    lines: list[tuple[float, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            with self.lock:
                self.lines.append((time.perf_counter(), line))

    def first_after(self, since: float, text: str) -> float | None:
        with self.lock:
            return next((t for t, line in self.lines if t >= since and text in line), None)

    def wait_for(self, text: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if any(text in line for _t, line in self.lines):
                    return True
            time.sleep(0.05)
        return False

    def text(self) -> str:
        with self.lock:
            return "".join(line for _t, line in self.lines)


def _percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (p95 of 50 is the 48th smallest)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def _reply_arrived(sink: SmtpSink, message_id: str, seen: int, deadline: float) -> tuple[float | None, int]:
    """Wait for the sink's mail replying to ``message_id``; (perf_counter when it came, mails seen)."""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None, seen
        try:
            mails = sink.wait_for(seen + 1, timeout=left)
        except AssertionError:
            return None, seen
        arrived = time.perf_counter()
        for mail in mails[seen:]:
            if (mail.message.get("In-Reply-To") or "").strip() == message_id:
                return arrived, len(mails)
        seen = len(mails)


def _bot_command(config: Path) -> list[str]:
    return [sys.executable, "-m", "mailbot.entrypoints.cli", "--config", str(config), "run"]


def main(count: int = 50, poll_seconds: int = 60, log_path: Path | None = None, pause: float = 0.0) -> None:
    binary = _dovecot_binary()
    if binary is None:
        print("latency: skipped (dovecot is not installed: apt-get install dovecot-imapd)")
        return
    uid, gid = _mail_ids()
    root = Path(tempfile.mkdtemp(prefix="mailbot-bench-latency-dovecot-"))
    server = DovecotServer(root=root, port=_free_port(), mail_uid=uid, mail_gid=gid, binary=binary)
    sink = SmtpSink()
    work = Path(tempfile.mkdtemp(prefix="mailbot-bench-latency-"))
    process: subprocess.Popen[str] | None = None
    output = _BotOutput()
    try:
        server.write_config()
        server.start()
        sink.start()
        user, password = server.add_user()

        url = f"sqlite:///{work / 'bench.sqlite3'}"
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        os.environ[ENV] = password
        harness = make_harness(work, url, f"[schedule]\npoll_seconds = {poll_seconds}\n")
        use_real_servers(harness, smtp_port=sink.port, imap=(server.port, user, ENV))
        codes = [f"{300000000 + i}" for i in range(count)]
        harness.import_unis([unis_row(c) for c in codes], as_of=datetime(2030, 1, 1, tzinfo=UTC))
        harness.app.close()
        config = harness.config_path
        # `mailbot run` with IMAP IDLE, as config.example.toml has it.
        text = config.read_text(encoding="utf-8")
        text = text.replace("timeout_seconds = 10\n", "timeout_seconds = 10\nidle = true\n")
        config.write_text(text, encoding="utf-8")

        process = subprocess.Popen(
            _bot_command(config),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, ENV: password},
        )
        threading.Thread(target=output.read, args=(process,), daemon=True).start()
        if not output.wait_for("job poll done", START_DEADLINE_SECONDS):
            raise RuntimeError("mailbot run did not finish its first poll:\n" + output.text())

        totals: list[float] = []
        announced: list[float] = []
        filed: list[float] = []
        missed = 0
        slow: list[str] = []
        seen = 0
        with IMAPClient(server.host, server.port, ssl=False, timeout=30) as client:
            client.login(user, password)
            for i, code in enumerate(codes):
                if pause and i:
                    time.sleep(pause)  # the bot has finished with the previous request
                message_id = f"<latency-{i}@usen.co.jp>"
                raw = submission(i, code, "latency")
                assert message_id.encode() in raw
                started = time.perf_counter()
                client.append("INBOX", raw)
                appended = time.perf_counter()
                arrived, seen = _reply_arrived(sink, message_id, seen, time.monotonic() + REPLY_DEADLINE_SECONDS)
                if arrived is None:
                    missed += 1
                    continue
                totals.append(arrived - started)
                told = output.first_after(started, "new mail announced")
                # The intake's line for this very message: decided, committed and marked.
                done = output.first_after(started, f"message {message_id} ")
                if arrived - started > SLOW_SECONDS:
                    # Where a slow one lost its time: the APPEND itself (a loaded
                    # machine), before IDLE announced it, or in the poll.
                    steps = [f"APPEND {appended - started:.2f} s"]
                    for what, at in (("announced", told), ("filed", done)):
                        if at is not None:
                            steps.append(f"{what} +{at - started:.2f} s")
                    when = f"{datetime.now(UTC):%H:%M:%S} UTC"
                    slow.append(f"#{i} {arrived - started:.2f} s ({', '.join(steps)}; {when})")
                if told is not None and told <= arrived:
                    announced.append(told - started)
                if done is not None and done <= arrived:
                    filed.append(done - started)

        process.send_signal(signal.SIGTERM)
        exit_code = process.wait(timeout=60)
        print(
            f"latency (mailbot run, IMAP IDLE, poll_seconds={poll_seconds}): APPEND -> reply at the SMTP sink, "
            f"{len(totals)} of {count} requests one at a time"
            + (f", {pause:g} s after each reply" if pause else ", each as the previous reply arrives")
        )
        if totals:
            print(
                f"  p50 {statistics.median(totals):.2f} s, p95 {_percentile(totals, 95):.2f} s, "
                f"max {max(totals):.2f} s, min {min(totals):.2f} s"
            )
        if announced:
            print(
                f"  APPEND -> 'new mail announced' (IDLE): p50 {statistics.median(announced):.2f} s, "
                f"p95 {_percentile(announced, 95):.2f} s ({len(announced)} requests)"
            )
        if filed:
            print(
                f"  APPEND -> the intake's line for the message (fetched, decided, committed, marked): "
                f"p50 {statistics.median(filed):.2f} s, p95 {_percentile(filed, 95):.2f} s ({len(filed)} requests)"
            )
        if slow:
            print(f"  above {SLOW_SECONDS:g} s: " + ", ".join(slow))
        if missed:
            print(f"  {missed} request(s) had no reply within {REPLY_DEADLINE_SECONDS:.0f} s")
        print(f"  SIGTERM: exit {exit_code}; {len(sink.messages)} mails at the SMTP sink")
        if log_path is not None:
            log_path.write_text(output.text(), encoding="utf-8")
            print(f"  the bot's log: {log_path}")
    finally:
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
        sink.stop()
        server.stop()
        if os.environ.get("MAILBOT_BENCH_KEEP") == "1":
            print(f"  kept {work} and {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=50)
    parser.add_argument("--poll-seconds", type=int, default=60)
    parser.add_argument("--log", type=Path, help="write the bot's log lines to this file")
    parser.add_argument("--pause", type=float, default=0.0, help="seconds between a reply and the next APPEND")
    args = parser.parse_args()
    main(args.count, args.poll_seconds, args.log, args.pause)
