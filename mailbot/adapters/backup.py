"""Backups: a consistent copy of the database and the raw-mail directory, with a manifest.

The database is copied while the bot runs: SQLite through its online backup API
(a snapshot of one moment, even mid-write), PostgreSQL with ``pg_dump`` (one
transaction's view). The raw-mail directory is copied after the database, so every
file a copied row names is there (files are written before their row commits); a
file newer than the copy is harmless, it is simply not referred to.

A restore goes into an empty database and an empty raw-mail directory only, checks
the dump against the manifest's checksum first and the row counts after.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Mapping
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from mailbot.adapters.errors import BackupError

__all__ = ["MANIFEST", "BackupError", "BackupResult", "backup", "restore"]

MANIFEST = "manifest.json"
FORMAT = 1
SQLITE_FILE = "database.sqlite3"
PG_FILE = "database.dump"
RAW_DIR = "raw"
# The tables whose row counts the manifest records and a restore compares.
COUNTED = ("cases", "case_events", "inbound", "raw_messages", "outbox", "users", "unis_rows")


@dataclass(frozen=True)
class BackupResult:
    directory: Path
    manifest: Mapping[str, Any]

    def lines(self) -> list[str]:
        m = self.manifest
        db = m["database"]
        counts = ", ".join(f"{n} {t}" for t, n in m["counts"].items())
        out = [f"database ({db['backend']}, schema {db['schema']}): {db['file']}; {counts}"]
        raw = m.get("raw")
        out.append(f"raw mail: {raw['files']} file(s), {raw['bytes']} bytes in {raw['directory']}/" if raw else
                   "raw mail: no raw-mail directory configured (raw mail is in the database)")  # fmt: skip
        return out


# -- backup ---------------------------------------------------------------------------------
def backup(database_url: str, raw_dir: Path | None, target: Path, *, now: datetime) -> BackupResult:
    """Write the database dump, the raw-mail directory and the manifest into ``target`` (new or empty)."""
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise BackupError(f"{target}: exists and is not an empty directory; give a new one")
    url = make_url(database_url)
    backend = url.get_backend_name()
    target.mkdir(parents=True, exist_ok=True)
    if backend == "sqlite":
        schema, counts = _sqlite_backup(_sqlite_path(url), target / SQLITE_FILE)
        file = SQLITE_FILE
    elif backend == "postgresql":
        schema, counts = _pg_dump(url, target / PG_FILE)
        file = PG_FILE
    else:
        raise BackupError(f"cannot back up a {backend} database")
    raw = None
    if raw_dir is not None and raw_dir.is_dir():
        files, size = _copy_tree(raw_dir, target / RAW_DIR)
        raw = {"directory": RAW_DIR, "source": str(raw_dir), "files": files, "bytes": size}
    manifest = {
        "format": FORMAT,
        "mailbot_version": _version(),
        "created_at": now.isoformat(),
        "database": {"backend": backend, "file": file, "schema": schema, "sha256": _sha256(target / file)},
        "counts": counts,
        "raw": raw,
    }
    (target / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return BackupResult(target, manifest)


def _sqlite_path(url: URL) -> Path:
    if not url.database or url.database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up")
    return Path(url.database)


def _sqlite_backup(source: Path, destination: Path) -> tuple[str | None, dict[str, int]]:
    if not source.is_file():
        raise BackupError(f"database unavailable: {source} does not exist")
    try:
        # Read-only: a backup never creates or changes the database it copies.
        _sqlite_copy(f"file:{source}?mode=ro", destination)
        with closing(sqlite3.connect(destination)) as copy:
            return _sqlite_facts(copy)
    except sqlite3.Error as exc:
        raise BackupError(f"database unavailable: {source}: {exc}") from None


def _sqlite_copy(source_uri: str, destination: Path) -> None:
    with closing(sqlite3.connect(source_uri, uri=True)) as src, closing(sqlite3.connect(destination)) as dst:
        src.backup(dst)


def _sqlite_facts(conn: sqlite3.Connection) -> tuple[str | None, dict[str, int]]:
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    schema = None
    if "alembic_version" in tables:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        schema = row[0] if row else None
    counts = {t: int(conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]) for t in COUNTED if t in tables}
    return schema, counts


def _libpq(url: URL) -> tuple[str, dict[str, str]]:
    """A libpq connection string without the password, and the environment that carries it (never argv)."""
    port = str(url.port) if url.port else None
    parts = {"host": url.host, "port": port, "user": url.username, "dbname": url.database}
    for key, value in url.query.items():
        parts[key] = value if isinstance(value, str) else value[-1]
    conninfo = " ".join(f"{k}='{_quote(v)}'" for k, v in parts.items() if v)
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    return conninfo, env


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def _run(tool: str, args: list[str], env: Mapping[str, str]) -> None:
    program = os.environ.get(f"MAILBOT_{tool.upper()}", tool)  # e.g. MAILBOT_PG_DUMP=/usr/lib/postgresql/16/bin/pg_dump
    if shutil.which(program) is None:
        raise BackupError(
            f"{program} not found: install the PostgreSQL client of the server's major version"
            f" (or set MAILBOT_{tool.upper()} to its path)"
        )
    done = subprocess.run([program, *args], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        raise BackupError(f"{tool} failed: {lines[-1] if lines else f'exit status {done.returncode}'}")


def _pg_dump(url: URL, destination: Path) -> tuple[str | None, dict[str, int]]:
    conninfo, env = _libpq(url)
    # Custom format: compressed, and pg_restore can restore it into a database of another name.
    _run("pg_dump", ["--format=custom", "--no-owner", "--no-privileges", f"--file={destination}", conninfo], env)
    return _pg_facts(url)


def _reason(exc: SQLAlchemyError) -> str:
    """The driver's own words where there are some (a DBAPIError wraps them), on one line."""
    reason = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    return " ".join(str(reason).split())


def _pg_facts(url: URL) -> tuple[str | None, dict[str, int]]:
    engine = create_engine(url.set(drivername="postgresql+psycopg"))
    try:
        with engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
            versioned = "alembic_version" in tables
            schema = conn.scalar(text("SELECT version_num FROM alembic_version")) if versioned else None
            counts = {t: int(conn.scalar(text(f'SELECT count(*) FROM "{t}"')) or 0) for t in COUNTED if t in tables}
    except SQLAlchemyError as exc:
        raise BackupError(f"database unavailable: {_reason(exc)}") from None
    finally:
        engine.dispose()
    return schema, counts


def _copy_tree(source: Path, destination: Path) -> tuple[int, int]:
    shutil.copytree(source, destination, copy_function=shutil.copy2)
    files = [p for p in destination.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _version() -> str:
    try:
        return metadata.version("mailbot")
    except metadata.PackageNotFoundError:
        return "unknown"


# -- restore --------------------------------------------------------------------------------
def read_manifest(source: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((source / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BackupError(f"{source}: no {MANIFEST}; not a mailbot backup") from None
    except (OSError, ValueError) as exc:
        raise BackupError(f"{source / MANIFEST}: unreadable: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{source / MANIFEST}: not a mailbot backup of format {FORMAT}")
    return manifest


def restore(source: Path, database_url: str, raw_dir: Path | None) -> BackupResult:
    """Restore the backup in ``source`` into an empty database and an empty raw-mail directory."""
    manifest = read_manifest(source)
    db = manifest["database"]
    dump = source / db["file"]
    if not dump.is_file():
        raise BackupError(f"{dump}: missing")
    if _sha256(dump) != db["sha256"]:
        raise BackupError(f"{dump}: does not match the manifest's checksum; the backup is damaged")
    url = make_url(database_url)
    backend = url.get_backend_name()
    if backend != db["backend"]:
        raise BackupError(f"the backup is of a {db['backend']} database; the config names a {backend} one")
    raw = manifest.get("raw")
    if raw:
        if raw_dir is None:
            raise BackupError("the backup holds a raw-mail directory; set [storage] path to where it goes")
        if raw_dir.exists() and (not raw_dir.is_dir() or any(raw_dir.iterdir())):
            raise BackupError(f"{raw_dir}: the raw-mail directory is not empty; restore only into an empty one")
    counts = _sqlite_restore(dump, _sqlite_path(url)) if backend == "sqlite" else _pg_restore(dump, url)
    if raw:
        assert raw_dir is not None
        raw_dir.mkdir(parents=True, exist_ok=True)
        shutil.copytree(source / raw["directory"], raw_dir, copy_function=shutil.copy2, dirs_exist_ok=True)
    if counts != manifest["counts"]:
        raise BackupError(f"restored rows differ from the manifest: {counts} != {manifest['counts']}")
    return BackupResult(source, manifest)


def _sqlite_restore(dump: Path, target: Path) -> dict[str, int]:
    if target.exists() and target.stat().st_size > 0:
        with closing(sqlite3.connect(f"file:{target}?mode=ro", uri=True)) as existing:
            if existing.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]:
                raise BackupError(f"{target}: the database is not empty; restore only into a new one")
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        _sqlite_copy(f"file:{dump}?mode=ro", target)
        with closing(sqlite3.connect(target)) as restored:
            return _sqlite_facts(restored)[1]
    except sqlite3.Error as exc:
        raise BackupError(f"{target}: {exc}") from None


def _pg_restore(dump: Path, url: URL) -> dict[str, int]:
    engine = create_engine(url.set(drivername="postgresql+psycopg"))
    try:
        with engine.connect() as conn:
            tables = inspect(conn).get_table_names()
    except SQLAlchemyError as exc:
        raise BackupError(f"database unavailable: {_reason(exc)}") from None
    finally:
        engine.dispose()
    if tables:
        raise BackupError(f"database {url.database}: not empty ({len(tables)} tables); restore only into a new one")
    conninfo, env = _libpq(url)
    args = ["--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction", f"--dbname={conninfo}"]
    _run("pg_restore", [*args, str(dump)], env)
    return _pg_facts(url)[1]
