"""A plain `pip install .` (not only an editable one) must find its templates and migrations."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_built_wheel_carries_templates_and_migrations(tmp_path: Path) -> None:
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"), str(ROOT)], check=True
    )
    [wheel] = (tmp_path / "dist").glob("mailbot-*.whl")
    target = tmp_path / "site"
    subprocess.run([*pip, "install", "--no-deps", "--target", str(target), str(wheel)], check=True)
    config = tmp_path / "config.toml"
    config.write_text(
        '[desk]\naddress = "f-desk@mxb.usen.co.jp"\ninternal_domains = ["usen.co.jp"]\n'
        '[mailbox]\npath = "Maildir"\n[delivery]\npath = "outbox"\n',
        encoding="utf-8",
    )
    script = (
        "import mailbot, sys\n"
        "from mailbot.resources import templates_dir, migrations_dir\n"
        "from mailbot.entrypoints.cli.main import main\n"
        "print(mailbot.__file__, templates_dir(), migrations_dir())\n"
        "sys.exit(main(['--config', sys.argv[1], 'db', 'upgrade']))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(config)],
        cwd=tmp_path,
        env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    module, templates, migrations = result.stdout.split()[:3]
    assert module.startswith(str(target))
    assert templates == str(target / "mailbot" / "_data" / "templates")
    assert migrations == str(target / "mailbot" / "_data" / "migrations")
    assert (tmp_path / "mailbot.sqlite3").exists()
