"""``mailbot run``: the bot in the foreground, on an APScheduler 3 ``BlockingScheduler``.

Jobs (ids): ``poll`` (read the mailbox and deliver; then the health check and
its alert mails), ``outbox`` (delivery retries), ``recheck`` (cases waiting
for UNIS), ``weekly_summary`` (cron from ``[schedule] weekly_summary``) and,
with ``[unis] watch_dir``, ``unis_watch`` (imports export CSVs dropped there),
with ``[retention]``, ``retention`` (daily at :data:`mailbot.service.schedule.RETENTION_TIME` and at start; it is
idempotent, so a run missed while the bot was down is made up at the next start).

Jobs run one at a time on a single worker thread, so two jobs never deliver
the same outbox row. A mail source with ``wait_for_new(timeout) -> bool``
(IMAP IDLE) gets a watcher thread that waits for new mail between jobs and
brings the next poll forward when some arrives.

Mail a clerk queues (the web, the CLI) goes at once: the bus nudges the
running bot after the commit (:class:`mailbot.service.ports.Wakeup`), and a
waker thread here, listening, runs a one-off ``wakeup`` job that delivers the
outbox. The same thread writes the heartbeat the workbench reads (is the bot
running? まもなく送信 or ボットが停止中).

SIGTERM or SIGINT: the intake is told to stop between messages, the job in
hand finishes, the scheduler shuts down and the process exits 0.

Before each job the poller lock is asked whether it is still ours (a
PostgreSQL restart ends the session that held it, silently): without it no job
files or sends; each job tries to take it again, and the loss and the retake
are one log line each. While the database is backing off after a failure
(:mod:`mailbot.service.outages`) jobs are skipped until its next try, and the
IDLE watcher brings no poll forward while the database or the mailbox backs
off. A job that fails the same unexpected way again logs one line, not
another traceback.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from sqlalchemy.exc import InterfaceError, OperationalError

from mailbot.bootstrap import App
from mailbot.domain.lifecycle import kinds_made_by
from mailbot.domain.schedule import due_week, scheduled_time
from mailbot.service import health
from mailbot.service.commands import (
    ApplyRetention,
    CheckHealth,
    DeliverOutbox,
    ImportProgress,
    ImportUnis,
    Poll,
    Recheck,
    SendWeekly,
    SendWorklist,
)
from mailbot.service.outage_alerts import Told
from mailbot.service.outages import DATABASE, MAILBOX, Outages
from mailbot.service.schedule import job_triggers, schedule_timezone, weekly_spec

__all__ = ["JOB_IDS", "Runner", "build_scheduler"]

log = logging.getLogger("mailbot.scheduler")

JOB_IDS = ("poll", "outbox", "recheck", "weekly_summary", "unis_watch", "progress_watch", "retention")
# A CSV younger than this may still be being written.
UNIS_SETTLE_SECONDS = 5.0
IDLE_WAIT_SECONDS = 10.0
EXTRA_KINDS = (*kinds_made_by("summary"), *kinds_made_by("alert"))


class Lock(Protocol):
    """What the runner asks of the poller lock (mailbot.adapters.database.lock.PollerLock)."""

    @property
    def where(self) -> str: ...
    def held(self) -> bool: ...
    def try_acquire(self) -> bool: ...
    def release(self) -> None: ...


class Runner:
    """The jobs, their serialisation, and the graceful stop."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.config = app.config
        self.tz = schedule_timezone(app.config)
        self.spec = weekly_spec(app.config)
        self.intake = app.intake  # built now, so a signal handler never has to build it
        self.stop_event = threading.Event()
        self._work = threading.Lock()
        self._jobs_waiting = 0
        self._count_lock = threading.Lock()
        self.scheduler: BaseScheduler | None = None
        self._watcher: threading.Thread | None = None
        # Set when a poll starts: the watcher, having announced new mail, waits
        # for it instead of asking the server again while the poll is queued
        # (which announced the same mail twice and had APScheduler skip the second).
        self._poll_started = threading.Event()
        # How long one wait for new mail may hold the mailbox (and delay a stop).
        self.idle_wait_seconds = IDLE_WAIT_SECONDS
        # The poller lock once `run` has it; None while none is needed (tests driving jobs by hand).
        self.lock: Lock | None = None
        self._lock_lost_at: datetime | None = None
        # Each job's last unexpected error, so a repeat logs a line and not another traceback.
        self._last_failure: dict[str, tuple[str, int]] = {}
        self.alerts = app.outage_alerts(self._notify)
        self._waker: threading.Thread | None = None
        # How many times the desk's nudge brought a delivery forward (each is also one log line).
        self.wakeups = 0
        self.who = f"mailbot run (pid {os.getpid()})"

    @property
    def outages(self) -> Outages:
        return self.app.intake.outages

    # -- wiring ---------------------------------------------------------------------
    def build(self, scheduler: BaseScheduler | None = None) -> BaseScheduler:
        triggers = job_triggers(self.config)
        self.app.renderer.check(EXTRA_KINDS)
        scheduler = scheduler or BlockingScheduler(
            timezone=self.tz,
            executors={"default": ThreadPoolExecutor(1)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 300},
        )
        now = datetime.now(self.tz)
        jobs: dict[str, Callable[[], str]] = {
            "poll": self.poll,
            "outbox": self.deliver,
            "recheck": self.recheck,
            "weekly_summary": self.weekly_summary,
            "weekly_summary_retry": self.weekly_summary,
            "unis_watch": self.unis_watch,
            "progress_watch": self.progress_watch,
            "retention": self.retention,
        }
        for job_id, trigger in triggers.items():
            options: dict[str, Any] = {}
            if job_id in ("poll", "unis_watch", "progress_watch", "retention"):
                options["next_run_time"] = now  # at once on start
            if job_id == "weekly_summary":
                options["misfire_grace_time"] = 6 * 3600  # a late start still sends; catch-up covers longer
            scheduler.add_job(
                self._wrap(job_id, jobs[job_id]),
                trigger,
                id=job_id,
                name=job_id,
                max_instances=1,
                coalesce=True,
                replace_existing=True,
                **options,
            )
        self.scheduler = scheduler
        return scheduler

    def _wrap(self, name: str, body: Callable[[], str]) -> Callable[[], None]:
        def run() -> None:
            if self.stop_event.is_set():
                self._shutdown_soon()
                return
            with self._count_lock:
                self._jobs_waiting += 1
            with self._work:
                with self._count_lock:
                    self._jobs_waiting -= 1
                if self.stop_event.is_set():
                    return
                self._check_alerts()
                if self.outages.waiting(DATABASE) is not None:
                    return  # said once, when the outage began
                if not self.holds_lock():
                    return  # said once, when the lock was lost
                started = time.monotonic()
                failures = self.outages.count(DATABASE)
                try:
                    detail = body()
                except (OperationalError, InterfaceError) as exc:
                    self.outages.failed(DATABASE, f"job {name}: {_first_line(exc)}")
                    return
                except Exception as exc:
                    self._failed(name, exc, int((time.monotonic() - started) * 1000))
                    return
                if self.outages.count(DATABASE) == failures:
                    self.outages.recovered(DATABASE)
                self._last_failure.pop(name, None)
                self._check_alerts()  # the all-clear of what this job found working again, now
                duration = int((time.monotonic() - started) * 1000)
                log.info(
                    "job %s done in %d ms: %s",
                    name,
                    duration,
                    detail or "-",
                    extra={"job": name, "duration_ms": duration},
                )

        run.__name__ = f"job_{name}"
        return run

    def _failed(self, name: str, exc: Exception, duration: int) -> None:
        """An unexpected failure: its traceback once, then one line for each repeat of the same error."""
        what = f"{type(exc).__name__}: {_first_line(exc)}"
        last, times = self._last_failure.get(name, ("", 0))
        extra = {"job": name, "duration_ms": duration}
        if what == last:
            self._last_failure[name] = (what, times + 1)
            log.error(
                "job %s failed again (%d times in a row, traceback above): %s", name, times + 1, what, extra=extra
            )
            return
        self._last_failure[name] = (what, 1)
        log.exception("job %s failed after %d ms", name, duration, extra=extra)

    def holds_lock(self) -> bool:
        """Is the poller lock still ours? If it was lost, try to take it again (one log line each way)."""
        lock = self.lock
        if lock is None:
            return True
        if lock.held():
            return True
        if self._lock_lost_at is None:
            self._lock_lost_at = self._now()
            log.error(
                "lost the poller lock (%s): filing and sending stop until it is taken again",
                lock.where,
                extra={"outage": "poller lock"},
            )
        try:
            got = lock.try_acquire()
        except Exception as exc:  # the database is down: the lock waits with it
            lock.release()
            self.outages.failed(DATABASE, f"poller lock: {_first_line(exc)}")
            got = False
        if got:
            lost = int((self._now() - self._lock_lost_at).total_seconds())
            self._lock_lost_at = None
            log.warning("poller lock (%s) taken again after %d s; filing and sending resume", lock.where, lost)
        return got

    def _check_alerts(self) -> None:
        try:
            self.alerts.check()
        except Exception:  # an alert that failed must not stop the jobs
            log.exception("checking the outage alerts failed")

    def _notify(self, told: Told) -> None:
        """Where an alert goes besides the mail: stderr when it was not mailed, and the [alerts] command."""
        if not told.by_mail:
            print(told.text, file=sys.stderr, flush=True)
        command = self.config.alerts.command
        if not command:
            return
        env = {**os.environ, "MAILBOT_ALERT_EVENT": told.event, "MAILBOT_ALERT_WHAT": told.what}
        try:
            done = subprocess.run(
                command, input=told.text + "\n", text=True, env=env, capture_output=True, timeout=30, check=False
            )
        except (OSError, subprocess.SubprocessError) as exc:
            log.error("[alerts] command %s failed: %s", command[0], exc)
            return
        if done.returncode != 0:
            log.error("[alerts] command %s exited %d: %s", command[0], done.returncode, done.stderr.strip()[:300])

    def _holding_back(self) -> bool:
        """No poll is brought forward while the lock is lost or the database or the mailbox backs off."""
        return self._lock_lost_at is not None or self.outages.backing_off(DATABASE, MAILBOX)

    # -- jobs -------------------------------------------------------------------------
    def _now(self) -> datetime:
        return self.app.clock()

    def poll(self) -> str:
        self._poll_started.set()
        intake = self.app.intake
        report = self.app.bus.handle(Poll(by="poll"))
        detail = (
            f"processed {report.processed}, marked again {report.marked_again}, failed {report.failed}, "
            f"sent {report.delivered}, delivery failed {report.delivery_failed}"
        )
        if report.source_error:
            detail += f"; mailbox problem: {report.source_error}"
        if report.store_error:
            return detail + "; database unavailable (see the outage line)"
        if not intake.stopping:
            changes = self.check_health()
            if changes:
                self.app.bus.handle(DeliverOutbox(by="poll"))
                detail += "; alerts: " + ", ".join(changes)
        return detail

    def check_health(self) -> list[str]:
        changes: list[str] = self.app.bus.handle(CheckHealth(by="poll"))
        return changes

    def deliver(self) -> str:
        report = self.app.bus.handle(DeliverOutbox(by="outbox"))
        return f"sent {report.sent}, failed {report.failed}, deferred {report.deferred}"

    def recheck(self) -> str:
        changed = self.app.bus.handle(Recheck(by="recheck"))
        delivered = self.app.bus.handle(DeliverOutbox(by="recheck"))
        return f"{changed} waiting case(s) decided, sent {delivered.sent}"

    def weekly_summary(self) -> str:
        """Last week's summaries, once this week's scheduled time has passed (also the catch-up)."""
        now = self._now()
        week = due_week(now, self.spec, self.tz)
        if week is None:
            return f"not due yet (next {scheduled_time(self.spec, now, self.tz).isoformat()})"
        bus = self.app.bus
        result = bus.handle(SendWeekly(week, by="weekly_summary"))
        detail: str = result.describe()
        if self.config.after.jimu_recipients:
            rows = bus.handle(SendWorklist(once_key=f"{week.year}-W{week.number:02d}", by="weekly_summary"))
            detail += f"; UNIS worklist: {rows} row(s) sent" if rows else "; UNIS worklist: nothing new"
        if result.sent or self.config.after.jimu_recipients:
            bus.handle(DeliverOutbox(by="weekly_summary"))
        return detail

    def unis_watch(self) -> str:
        folder = self.config.unis_watch_dir
        if folder is None:
            return "no watch_dir"
        return import_watched(self.app, folder, now=self._now())

    def progress_watch(self) -> str:
        folder = self.config.after.progress.watch_dir
        if folder is None:
            return "no watch_dir"
        return import_watched_progress(self.app, folder, now=self._now())

    def deliver_woken(self) -> str:
        """The one-off job a nudge from the desk adds: the outbox, now."""
        report = self.app.bus.handle(DeliverOutbox(by="wakeup"))
        return f"woken by the desk: sent {report.sent}, failed {report.failed}, deferred {report.deferred}"

    def retention(self) -> str:
        """Remove what ``[retention]`` says is old enough; a second run the same day removes nothing."""
        report = self.app.bus.handle(ApplyRetention(apply=True, by="retention"))
        return f"{len(report.removed)} raw mail(s) removed, attachments removed from {len(report.stripped)}"

    # -- IMAP IDLE --------------------------------------------------------------------------
    def _watch_mailbox(self) -> None:
        source = self.app.intake.source
        wait: Callable[[float], bool] = source.wait_for_new  # type: ignore[attr-defined]
        timeout = min(float(self.config.schedule.poll_seconds), self.idle_wait_seconds)
        # The first poll runs at once on start; before it the source has nothing
        # to compare with and would announce "new mail" that this poll fetches anyway.
        self._poll_started.wait(timeout)
        while not self.stop_event.is_set():
            with self._count_lock:
                busy = self._jobs_waiting > 0
            if busy:
                self.stop_event.wait(0.05)  # let the waiting job have the mailbox
                continue
            if self._holding_back():
                self.stop_event.wait(timeout)  # the polls' own schedule tries again
                continue
            arrived = False
            with self._work:
                if self.stop_event.is_set():
                    break
                if self._holding_back():
                    continue  # the poll that ran meanwhile met an outage: asked again outside the lock
                try:
                    arrived = wait(timeout)
                except Exception as exc:  # the mailbox is down: one line, and the back-off
                    self.outages.failed(MAILBOX, f"waiting for new mail failed: {_first_line(exc)}")
                if arrived:
                    # Cleared while no job can run, so only a poll that starts
                    # after this announcement (and so fetches the mail) sets it.
                    self._poll_started.clear()
            if arrived and self.scheduler is not None and not self.stop_event.is_set():
                log.info("new mail announced; polling now")
                self.scheduler.modify_job("poll", next_run_time=datetime.now(self.tz))
                self._poll_started.wait(timeout)

    # -- the desk's nudges and the heartbeat --------------------------------------------------
    def _wait_for_desk(self) -> None:
        wakeup = self.app.wakeup
        beat_every = health.heartbeat_seconds(self.config.schedule.poll_seconds)
        next_beat = 0.0
        failing = False
        while not self.stop_event.is_set():
            if time.monotonic() >= next_beat and self._lock_lost_at is None:
                try:
                    health.beat(self.app.sessions, self.who, self._now())
                except Exception as exc:  # the database is down: the jobs report the outage
                    log.debug("heartbeat not written: %s", _first_line(exc))
                next_beat = time.monotonic() + beat_every
            try:
                woken = wakeup.wait(max(0.05, min(beat_every, next_beat - time.monotonic())))
                failing = False
            except Exception as exc:  # never the end of the bot: its polls still send
                if not failing:  # said once, not at every heartbeat
                    log.warning("waiting for the desk's nudges failed: %s", _first_line(exc))
                failing = True
                self.stop_event.wait(beat_every)
                continue
            if woken and self.scheduler is not None and not self.stop_event.is_set():
                self.wakeups += 1
                log.info("mail queued at the desk; delivering now")
                with contextlib.suppress(Exception):  # the scheduler shutting down
                    # One-off, now; a nudge while one waits to run replaces it (one run sends every queued mail).
                    self.scheduler.add_job(
                        self._wrap("wakeup", self.deliver_woken),
                        id="wakeup",
                        name="wakeup",
                        replace_existing=True,
                        max_instances=1,
                    )

    def start_waker(self) -> None:
        """Listen for the desk's nudges (before the first poll, so none is missed) and beat the heartbeat."""
        if self._waker is not None:
            return
        try:
            self.app.wakeup.listen()
        except Exception as exc:  # the polls still send, on their schedule
            log.warning("cannot listen for the desk's nudges (mail waits for the next poll): %s", _first_line(exc))
        self._waker = threading.Thread(target=self._wait_for_desk, name="desk-wake", daemon=True)
        self._waker.start()

    def start_watcher(self) -> bool:
        """Start waiting for new mail in the background, when the source can (IMAP IDLE)."""
        if not self._wants_watcher() or self._watcher is not None:
            return False
        self._watcher = threading.Thread(target=self._watch_mailbox, name="mailbox-watch", daemon=True)
        self._watcher.start()
        return True

    def _wants_watcher(self) -> bool:
        source = self.app.intake.source
        if not callable(getattr(source, "wait_for_new", None)):
            return False
        settings = getattr(source, "settings", None)
        return bool(getattr(settings, "idle", True))

    # -- life cycle -------------------------------------------------------------------------
    def stop(self, signum: int | None = None, frame: FrameType | None = None) -> None:
        if self.stop_event.is_set():
            return
        name = signal.Signals(signum).name if signum else "stop"
        log.info("%s received: finishing the job in hand, then stopping", name)
        self.stop_event.set()
        self._poll_started.set()  # a watcher waiting for a poll stops waiting
        self.intake.stopping = True
        self._shutdown_soon()

    def _shutdown_soon(self) -> None:
        """Stop the scheduler's loop without waiting for the job in hand (``run`` waits for it)."""
        scheduler = self.scheduler
        if scheduler is not None and scheduler.running:
            with contextlib.suppress(Exception):  # already shutting down
                scheduler.shutdown(wait=False)

    def run(self) -> int:
        scheduler = self.build()
        previous = {sig: signal.signal(sig, self.stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        lock = self.app.poller_lock()

        def waiting() -> None:
            log.warning("another mailbot holds %s; waiting to take over", lock.where)

        marked = False
        try:
            # One poller per mailbox: a second `mailbot run` waits here and takes
            # over when the first one dies (the lock dies with its holder).
            if not lock.acquire(on_wait=waiting, stop=self.stop_event.is_set):
                return 0
            self.lock = lock
            health.mark_runner(self.app.sessions, self.who, self._now())
            marked = True
            # Between runs of mails too: a lock lost mid-delivery stops the sending.
            self.app.intake.deliverer.may_send = self.holds_lock
            log.info(
                "mailbot running: poll every %ss, weekly summary %s (%s)",
                self.config.schedule.poll_seconds,
                self.spec,
                self.tz.key,
            )
            # Catch up last week's summaries if the bot was down when they were due.
            self._wrap("weekly_summary", self.weekly_summary)()
            self.start_watcher()
            self.start_waker()
            if not self.stop_event.is_set():
                scheduler.start()
        finally:
            self.stop_event.set()
            with self._work:  # the job in hand has finished
                pass
            if scheduler.running:
                scheduler.shutdown(wait=True)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            if self._waker is not None:
                self.app.wakeup.notify()  # ends its wait now, not a heartbeat later
                self._waker.join(10)  # before the clean stop is recorded: a beat after it would undo it
            if marked:
                try:
                    health.clear_runner(self.app.sessions, self._now())
                except Exception as exc:  # the database is down: status will say the bot is gone, which it is
                    log.warning("could not record the clean stop: %s", _first_line(exc))
            lock.release()
            log.info("mailbot stopped")
        return 0


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def build_scheduler(app: App, scheduler: BaseScheduler | None = None) -> BaseScheduler:
    """The scheduler with every job added, not started (for tests and inspection)."""
    return Runner(app).build(scheduler)


# -- the UNIS watch folder ----------------------------------------------------------------
def import_watched(app: App, folder: Path, *, now: datetime, settle_seconds: float = UNIS_SETTLE_SECONDS) -> str:
    """Import each export CSV in ``folder`` (oldest first), then move it to processed/ or failed/."""
    if not folder.is_dir():
        return f"{folder} does not exist"
    files = sorted(
        (p for p in folder.iterdir() if p.is_file() and p.suffix.lower() == ".csv" and not p.name.startswith(".")),
        key=lambda p: p.stat().st_mtime,
    )
    done = []
    for path in files:
        mtime = path.stat().st_mtime
        if time.time() - mtime < settle_seconds:
            continue  # still being written
        try:
            command = ImportUnis(path, name=path.name, as_of=datetime.fromtimestamp(mtime, UTC), by="unis_watch")
            done_import = app.bus.handle(command)
        except Exception as exc:  # any failure is written beside the file
            target = _move(path, folder / "failed")
            reason = target.with_name(target.name + ".reason.txt")
            reason.write_text(f"{type(exc).__name__}: {exc}\n", encoding="utf-8")
            log.error("UNIS export %s rejected: %s", path.name, exc)
            done.append(f"{path.name} failed")
            continue
        _move(path, folder / "processed")
        done.append(f"{path.name} imported ({done_import.result.rows} rows)")
        done.append(done_import.reconciled.lines()[0])
    if not done:
        return "nothing new"
    changed = app.bus.handle(Recheck(by="unis_watch"))
    sent = app.bus.handle(DeliverOutbox(by="unis_watch"))
    return "; ".join(done) + f"; {changed} waiting case(s) decided, sent {sent.sent}"


def import_watched_progress(
    app: App, folder: Path, *, now: datetime, settle_seconds: float = UNIS_SETTLE_SECONDS
) -> str:
    """Import each progress list (.csv, .xlsx) in ``folder``, oldest first, then move it to processed/ or failed/."""
    if not folder.is_dir():
        return f"{folder} does not exist"
    files = sorted(
        (p for p in folder.iterdir()
         if p.is_file() and p.suffix.lower() in (".csv", ".xlsx") and not p.name.startswith((".", "~$"))),
        key=lambda p: p.stat().st_mtime,
    )  # fmt: skip
    done = []
    for path in files:
        mtime = path.stat().st_mtime
        if time.time() - mtime < settle_seconds:
            continue  # still being written
        try:
            as_of = datetime.fromtimestamp(mtime, UTC)
            report = app.bus.handle(ImportProgress(path.read_bytes(), name=path.name, as_of=as_of, by="progress_watch"))
        except Exception as exc:  # any failure is written beside the file
            target = _move(path, folder / "failed")
            target.with_name(target.name + ".reason.txt").write_text(f"{type(exc).__name__}: {exc}\n", encoding="utf-8")
            log.error("progress list %s rejected: %s", path.name, exc)
            done.append(f"{path.name} failed")
            continue
        _move(path, folder / "processed")
        done.append(report.lines()[0])
    if not done:
        return "nothing new"
    sent = app.bus.handle(DeliverOutbox(by="progress_watch"))
    return "; ".join(done) + f"; sent {sent.sent}"


def _move(path: Path, folder: Path) -> Path:
    folder.mkdir(exist_ok=True)
    target = folder / path.name
    if target.exists():
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        target = folder / f"{path.stem}.{stamp}{path.suffix}"
    shutil.move(str(path), str(target))
    return target
