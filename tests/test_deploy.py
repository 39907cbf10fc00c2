"""The deployment files: the Dockerfile, deploy/compose.yaml, the systemd units, the proxy examples.

Validated by the tools that read them where they are installed (`docker compose
config` or podman-compose, `systemd-analyze verify`); skipped otherwise, failed
under MAILBOT_REQUIRE_SERVICES=1 (CI installs them).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from mailbot.entrypoints.cli.main import build_parser
from tests.required import ROOT, missing

DEPLOY = ROOT / "deploy"
UNITS = ("mailbot.service", "mailbot-web.service")


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].strip().lower().replace("_", "-")


def test_the_image_is_built_from_python_3_11_slim_alone_and_runs_as_uid_10001_with_mailbot_as_pid_1() -> None:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert re.findall(r"^FROM\s+(\S+)", text, re.M) == ["python:3.11-slim"]
    assert "USER 10001:10001" in text and "--uid 10001" in text and "--gid 10001" in text
    assert 'ENTRYPOINT ["mailbot"]' in text and 'CMD ["run", "--upgrade"]' in text
    assert re.search(r'^HEALTHCHECK .*CMD \["mailbot", "status"\]$', text, re.M)
    assert re.search(r"^EXPOSE 8025$", text, re.M)
    assert "MAILBOT_STATE_DIR=/var/lib/mailbot" in text and "MAILBOT_WEB_HOST=0.0.0.0" in text
    # The dependency layer comes before the code, so a code change reuses it.
    assert text.index("COPY constraints.txt") < text.index("COPY mailbot")


def test_the_image_commands_and_the_units_commands_are_mailbots_own() -> None:
    parser = build_parser()
    assert parser.parse_args(["run", "--upgrade"]).upgrade is True
    assert parser.parse_args(["web"]).func.__name__ == "cmd_web"
    for unit in UNITS:
        [start] = re.findall(r"^ExecStart=\S+/mailbot (.+)$", (DEPLOY / "systemd" / unit).read_text(), re.M)
        parser.parse_args(start.split())


def test_constraints_pin_every_runtime_dependency_and_the_build_backend() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    needed = {_name(r) for r in pyproject["project"]["dependencies"]} | {"hatchling"}
    pinned = {}
    for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            pinned[_name(name)] = version
    assert needed <= set(pinned), f"run `make constraints`: {sorted(needed - set(pinned))} not pinned"
    assert all(pinned.values()), "every line pins one version (name==version)"


def test_the_docker_ignore_file_sends_the_build_only_what_the_image_needs() -> None:
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert lines[lines.index("*")] == "*"
    assert {"!constraints.txt", "!mailbot/", "!templates/", "!migrations/", "!pyproject.toml"} <= set(lines)


def test_the_units_restart_run_as_their_own_user_and_take_secrets_from_an_environment_file() -> None:
    for unit in UNITS:
        text = (DEPLOY / "systemd" / unit).read_text(encoding="utf-8")
        for directive in ("User=mailbot", "Restart=on-failure", "EnvironmentFile=/etc/mailbot/mailbot.env"):
            assert re.search(rf"^{re.escape(directive)}$", text, re.M), (unit, directive)


def test_the_proxy_examples_terminate_tls_forward_the_scheme_and_let_no_client_name_a_user() -> None:
    nginx = (DEPLOY / "nginx" / "mailbot.conf").read_text(encoding="utf-8")
    assert "listen 443 ssl" in nginx and "proxy_pass http://127.0.0.1:8025" in nginx
    assert "proxy_set_header X-Forwarded-Proto $scheme" in nginx
    assert 'proxy_set_header X-Remote-User ""' in nginx
    caddy = (DEPLOY / "Caddyfile").read_text(encoding="utf-8")
    assert "reverse_proxy web:8025" in caddy and "header_up -X-Remote-User" in caddy


def test_the_systemd_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        missing("systemd-analyze is not installed")
    assert analyze is not None
    # verify wants the program to exist and the environment file to be readable: this checkout's.
    mailbot = Path(sys.executable).parent / "mailbot"
    env = tmp_path / "mailbot.env"
    env.write_text((DEPLOY / "mailbot.env.example").read_text(encoding="utf-8"), encoding="utf-8")
    paths = []
    for unit in UNITS:
        text = (DEPLOY / "systemd" / unit).read_text(encoding="utf-8")
        text = text.replace("/opt/mailbot/venv/bin/mailbot", str(mailbot)).replace("/etc/mailbot/mailbot.env", str(env))
        (tmp_path / unit).write_text(text, encoding="utf-8")
        paths.append(str(tmp_path / unit))
    done = subprocess.run([analyze, "verify", *paths], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert not [line for line in done.stderr.splitlines() if "mailbot" in line], done.stderr


def _compose_copy(tmp_path: Path) -> Path:
    """deploy/ with the files an operator makes (mailbot.env, .env, config/) and the Dockerfile above it."""
    shutil.copy(ROOT / "Dockerfile", tmp_path / "Dockerfile")
    deploy = tmp_path / "deploy"
    shutil.copytree(DEPLOY, deploy)
    shutil.copy(deploy / "mailbot.env.example", deploy / "mailbot.env")
    (deploy / ".env").write_text("MAILBOT_DB_PASSWORD=secret-for-the-test\n", encoding="utf-8")
    (deploy / "config").mkdir()
    return deploy


def _docker_compose() -> str | None:
    docker = shutil.which("docker")
    if docker is None:
        return None
    done = subprocess.run([docker, "compose", "version"], capture_output=True, text=True, timeout=60)
    return docker if done.returncode == 0 else None


def test_the_compose_file_is_valid_and_runs_the_bot_and_the_workbench_on_one_volume(tmp_path: Path) -> None:
    deploy = _compose_copy(tmp_path)
    docker = _docker_compose()
    if docker is not None:
        done = subprocess.run([docker, "compose", "config"], cwd=deploy, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        out = done.stdout
        assert "postgresql+psycopg://mailbot:secret-for-the-test@db:5432/mailbot" in out
        assert "/var/lib/mailbot" in out and "/config" in out
        return
    podman_compose = shutil.which("podman-compose")
    if podman_compose is None:
        missing("neither `docker compose` nor podman-compose is installed")
    assert podman_compose is not None
    # podman-compose 1.0.3 has no `config`: a dry run with a podman that does nothing prints
    # every command it would run, after reading and interpolating the file.
    done = subprocess.run(
        [podman_compose, "--podman-path", "/bin/true", "--dry-run", "up", "-d"],
        cwd=deploy,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    runs = {
        m.group(1): line
        for line in done.stdout.splitlines()
        if (m := re.search(r"^/\S*true run .*com\.docker\.compose\.service=(\w+)", line))
    }
    assert {"db", "bot", "web"} <= set(runs), done.stdout
    for service in ("bot", "web"):
        line = runs[service]
        assert f"-v {deploy}/config:/config:ro" in line and "_mailbot-data:/var/lib/mailbot" in line, line
        assert "MAILBOT_DATABASE_URL=postgresql+psycopg://mailbot:secret-for-the-test@db:5432/mailbot" in line
        assert f"--env-file {deploy}/mailbot.env" in line
    assert runs["bot"].endswith("localhost/mailbot:latest run --upgrade")
    assert runs["web"].endswith("localhost/mailbot:latest web")
    assert "-p 127.0.0.1:8025:8025" in runs["web"]
