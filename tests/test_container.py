"""The image as shipped: built by `make image`, then run the way docs/operations.md says.

A read-only config mount and a fresh named volume for the state: `db upgrade` creates
the SQLite database in the volume, `poll --once` files a request from a Maildir there,
the workbench answers its login page and /healthz, the default command (`run --upgrade`)
runs and stops cleanly on SIGTERM. Podman, or Docker with a daemon; skipped without
either, failed under MAILBOT_REQUIRE_SERVICES=1 (CI installs podman and builds the
local stand-in for python:3.11-slim, .ci/build-base-image).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.fixtures.database import ADMIN_URL
from tests.fixtures.web import free_port
from tests.required import ROOT, missing
from tests.service.test_intake import request

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

IMAGE = "localhost/mailbot:test"
CONFIG = """\
[desk]
address = "f-desk@mxb.usen.co.jp"
internal_domains = ["usen.co.jp"]
ops_recipients = ["f-desk-staff@usen.co.jp"]

[mailbox]
kind = "maildir"
path = "Maildir"

[delivery]
kind = "directory"
path = "outbox"

[web]
secret_env = "MAILBOT_WEB_SECRET"

[schedule]
poll_seconds = 5

[[branches]]
name = "渋谷支店"
aliases = ["渋谷"]
region = "首都圏"
managers = ["shibuya-mgr@usen.co.jp"]

[[branches]]
name = "新宿支店"
aliases = ["新宿"]
region = "首都圏"
managers = ["shinjuku-mgr@usen.co.jp"]
"""


def _engine() -> str:
    podman = shutil.which("podman")
    if podman:
        return podman
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "info"], capture_output=True, timeout=60).returncode == 0:
        return docker
    missing("neither podman nor a running docker is available to build and run the image")
    raise AssertionError("unreachable")


def _build_flags(engine: str) -> str:
    """IMAGE_BUILD_FLAGS for `make image`: $MAILBOT_IMAGE_BUILD_FLAGS, else what these machines need."""
    if "MAILBOT_IMAGE_BUILD_FLAGS" in os.environ:
        return os.environ["MAILBOT_IMAGE_BUILD_FLAGS"]
    flags = ["--network", "host"]
    bundle = Path("/etc/ssl/certs/ca-certificates.crt")
    if Path(engine).name == "podman" and bundle.exists():
        flags += ["-v", f"{bundle}:{bundle}:ro"]  # pip inside the build trusts what the host trusts
    return " ".join(flags)


@pytest.fixture(scope="module")
def engine() -> Iterator[str]:
    """The container engine, once `make image` has built IMAGE with it."""
    engine = _engine()
    started = time.monotonic()
    done = subprocess.run(
        [
            "make",
            "-C",
            str(ROOT),
            "image",
            f"ENGINE={engine}",
            f"IMAGE={IMAGE}",
            f"IMAGE_BUILD_FLAGS={_build_flags(engine)}",
        ],
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    print(f"make image: {time.monotonic() - started:.0f} s")
    yield engine


class Container:
    """The image run with the config read-only at /config and a new named volume at /var/lib/mailbot."""

    def __init__(self, engine: str, config_dir: Path) -> None:
        self.engine, self.config_dir = engine, config_dir
        self.volume = f"mailbot-test-{uuid.uuid4().hex[:12]}"
        self.names: list[str] = []
        self.env: dict[str, str] = {"MAILBOT_WEB_SECRET": "a-secret-for-the-container-test"}
        self.network = "none"

    def args(self, *extra: str) -> list[str]:
        return [
            *extra,
            *[arg for key, value in self.env.items() for arg in ("-e", f"{key}={value}")],
            "-v",
            f"{self.config_dir}:/config:ro",
            "-v",
            f"{self.volume}:/var/lib/mailbot",
        ]

    def run(
        self, *command: str, stdin: bytes | None = None, entrypoint: str | None = None
    ) -> subprocess.CompletedProcess:
        extra = ["--entrypoint", entrypoint] if entrypoint else []
        argv = [self.engine, "run", "--rm", "-i", "--network", self.network, *self.args(*extra), IMAGE, *command]
        return subprocess.run(argv, input=stdin or b"", capture_output=True, timeout=300)

    def start(self, *command: str, network: str = "none") -> str:
        name = f"mailbot-test-{uuid.uuid4().hex[:12]}"
        self.names.append(name)
        argv = [self.engine, "run", "-d", "--name", name, "--network", network, *self.args(), IMAGE, *command]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        return name

    def logs(self, name: str) -> str:
        done = subprocess.run([self.engine, "logs", name], capture_output=True, text=True, timeout=60)
        return done.stdout + done.stderr

    def close(self) -> None:
        for name in self.names:
            subprocess.run([self.engine, "rm", "-f", name], capture_output=True, timeout=120)
        subprocess.run([self.engine, "volume", "rm", "-f", self.volume], capture_output=True, timeout=120)


@pytest.fixture
def container(engine: str, tmp_path: Path) -> Iterator[Container]:
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    (config_dir / "config.toml").write_text(CONFIG, encoding="utf-8")
    config_dir.chmod(0o755)
    (config_dir / "config.toml").chmod(0o644)
    c = Container(engine, config_dir)
    yield c
    c.close()


def _text(done: subprocess.CompletedProcess) -> str:
    return (done.stdout + done.stderr).decode("utf-8", "replace")


def _wait_for(url: str, deadline: float) -> tuple[int, bytes]:
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                return answer.status, answer.read()
        except urllib.error.HTTPError as answer:
            return answer.code, answer.read()
        except (urllib.error.URLError, ConnectionError, OSError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def deliver(container: Container, raw: bytes) -> None:
    """An MTA's delivery into the Maildir in the volume, as the image's user (uid 10001)."""
    script = (
        "import os, sys; d = '/var/lib/mailbot/Maildir'; [os.makedirs(f'{d}/{s}', exist_ok=True) for s in"
        " ('new', 'cur', 'tmp')]; open(f'{d}/new/1.test', 'wb').write(sys.stdin.buffer.read())"
    )
    done = container.run("-c", script, stdin=raw, entrypoint="python")
    assert done.returncode == 0, _text(done)


def test_the_image_upgrades_the_database_polls_a_maildir_and_serves_the_login_page_with_a_read_only_config(
    container: Container,
) -> None:
    upgrade = container.run("db", "upgrade")
    assert upgrade.returncode == 0, _text(upgrade)
    assert "database sqlite:////var/lib/mailbot/mailbot.sqlite3: schema created" in _text(upgrade)
    deliver(container, request())

    poll = container.run("poll", "--once")
    assert poll.returncode == 0, _text(poll)
    assert "processed 1 message(s)" in _text(poll)
    listed = container.run("cases", "list", "--json")
    assert listed.returncode == 0, _text(listed)
    [case] = json.loads(listed.stdout)
    assert case["branch"] == "渋谷支店"

    # The workbench, on the host's loopback only (the image's default host is 0.0.0.0).
    backup = container.run("backup", "/var/lib/mailbot/backups/1")
    assert backup.returncode == 0, _text(backup)
    assert "database (sqlite, schema " in _text(backup)

    port = free_port()
    web = container.start("web", "--host", "127.0.0.1", "--port", str(port), network="host")
    deadline = time.monotonic() + 120
    try:
        status, body = _wait_for(f"http://127.0.0.1:{port}/login", deadline)
        assert status == 200 and 'name="password"' in body.decode("utf-8"), body[:500]
        status, body = _wait_for(f"http://127.0.0.1:{port}/healthz", deadline)
        health = json.loads(body)
        assert health["database"] == "ok" and health["last_poll"] is not None, health
    except Exception:
        print(container.logs(web))
        raise


def test_the_default_command_upgrades_runs_passes_its_healthcheck_and_stops_cleanly_on_sigterm(
    container: Container,
) -> None:
    deliver(container, request())
    bot = container.start()
    deadline = time.monotonic() + 120
    while "mailbot running" not in container.logs(bot):
        assert time.monotonic() < deadline, container.logs(bot)
        time.sleep(0.5)
    # The image's HEALTHCHECK (mailbot status) passes once the bot has polled (every 5 s here).
    podman = Path(container.engine).name == "podman"
    while podman:
        health = subprocess.run(
            [container.engine, "healthcheck", "run", bot], capture_output=True, text=True, timeout=120
        )
        if health.returncode == 0:
            break
        assert time.monotonic() < deadline, health.stdout + health.stderr + container.logs(bot)
        time.sleep(2)
    stop = subprocess.run([container.engine, "stop", "-t", "60", bot], capture_output=True, text=True, timeout=120)
    assert stop.returncode == 0, stop.stderr
    code = subprocess.run(
        [container.engine, "inspect", "--format", "{{.State.ExitCode}}", bot],
        capture_output=True,
        text=True,
        timeout=60,
    )
    logs = container.logs(bot)
    # 0, not 137: mailbot as PID 1 took SIGTERM itself and finished.
    assert code.stdout.strip() == "0", logs
    assert "schema created" in logs and "SIGTERM received" in logs and "mailbot stopped" in logs


@pytest.fixture
def postgres_databases() -> Iterator[tuple[str, str]]:
    """Two new PostgreSQL databases on the loopback server: the live one and the restore's."""
    names = [f"mailbot_container_{uuid.uuid4().hex[:10]}" for _ in range(2)]
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            for name in names:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        admin.dispose()
        missing(f"PostgreSQL not reachable at {ADMIN_URL}: {exc.__class__.__name__}")
    urls = [make_url(ADMIN_URL).set(database=n).render_as_string(hide_password=False) for n in names]
    yield urls[0], urls[1]
    with admin.connect() as conn:
        for name in names:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_the_image_backs_up_a_postgresql_database_and_restores_it_into_an_empty_one(
    container: Container, postgres_databases: tuple[str, str]
) -> None:
    live, empty = postgres_databases
    config = container.config_dir / "config.toml"
    config.write_text(CONFIG + '\n[database]\nurl_env = "MAILBOT_DATABASE_URL"\n', encoding="utf-8")
    container.network = "host"  # the server is on the host's loopback
    container.env["MAILBOT_DATABASE_URL"] = live
    for command in (["db", "upgrade"], ["poll", "--once"], ["backup", "/var/lib/mailbot/backups/1"]):
        if command[0] == "poll":
            deliver(container, request())
        done = container.run(*command)
        assert done.returncode == 0, (command, _text(done))
    assert "database (postgresql, schema " in _text(done) and "1 cases" in _text(done)

    container.env["MAILBOT_DATABASE_URL"] = empty
    restored = container.run("restore", "/var/lib/mailbot/backups/1")
    assert restored.returncode == 0, _text(restored)
    listed = container.run("cases", "list", "--json")
    assert listed.returncode == 0, _text(listed)
    [case] = json.loads(listed.stdout)
    assert case["branch"] == "渋谷支店"
