from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from mailbot.adapters.database.engine import SchemaOutOfDate, check_schema, make_engine
from mailbot.adapters.database.schema import SEARCH_INDEXES, Base


def _not_a_search_index(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    # Migration 0005's trigram indexes exist on PostgreSQL only (where pg_trgm could be had).
    return not (type_ == "index" and name in SEARCH_INDEXES)


def test_the_models_and_the_migrations_agree(db_url: str) -> None:
    engine = make_engine(db_url)
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_object": _not_a_search_index}
        )
        differences = compare_metadata(context, Base.metadata)
    engine.dispose()
    assert differences == []


def test_the_migrated_database_has_every_table(db_url: str) -> None:
    engine = make_engine(db_url)
    tables = set(inspect(engine).get_table_names())
    engine.dispose()
    assert set(Base.metadata.tables) <= tables
    assert "alembic_version" in tables


def test_an_unmigrated_database_is_refused_with_a_hint(tmp_path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    try:
        check_schema(engine)
    except SchemaOutOfDate as exc:
        assert "mailbot db upgrade" in str(exc)
    else:
        raise AssertionError("an empty database must be refused")
    finally:
        engine.dispose()


def test_a_sqlite_database_holding_cases_from_the_first_schema_upgrades_to_the_last_with_every_row(tmp_path) -> None:
    # Migrations 0002 and 0003 rebuild `cases` (copy, DROP, rename), which rows of
    # inbound, case_events and outbox point to: with foreign keys on, SQLite refused the DROP.
    from mailbot.adapters.database.engine import upgrade

    engine = make_engine(f"sqlite:///{tmp_path / 'desk.sqlite3'}")
    upgrade(engine, "0001")
    with engine.begin() as connection:
        for statement in (
            "INSERT INTO raw_messages (sha256, size, data) VALUES ('ab', 1, x'00')",
            "INSERT INTO cases (case_no, year, seq, branch, customer_code, customer_name, status, defects,"
            " return_count, created_at, updated_at) VALUES ('FE-2026-00001', 2026, 1, '渋谷支店', '123456789',"
            " '株式会社さくら', 'accepted', '[]', 0, '2026-01-05', '2026-01-05')",
            "INSERT INTO inbound (source, source_key, identity, message_id, subject, sender, disposition, reason,"
            " case_id, raw_id, defects, problems, received_at, processed_at) VALUES ('maildir:x', 'k1', '<a@b>',"
            " '<a@b>', 'フレッツエスカ 渋谷支店', 'taro@usen.co.jp', 'case', 'new_request', 1, 1, '[]', '[]',"
            " '2026-01-05', '2026-01-05')",
            "INSERT INTO case_events (case_id, at, status, defects, reason)"
            " VALUES (1, '2026-01-05', 'accepted', '[]', 'new_request')",
            "INSERT INTO outbox (kind, case_id, inbound_id, to_addrs, cc_addrs, subject, message_id, raw, status,"
            " attempts, next_attempt_at, created_at) VALUES ('receipt', 1, 1, '[]', '[]', 'RE: ', '<m@x>', x'00',"
            " 'sent', 1, '2026-01-05', '2026-01-05')",
        ):
            connection.exec_driver_sql(statement)

    before, after = upgrade(engine)

    assert before == "0001" and after is not None and after != before
    check_schema(engine)
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT case_no, stage, sender FROM cases").all() == [
            ("FE-2026-00001", "accepted", "taro@usen.co.jp")
        ]
        assert connection.exec_driver_sql("SELECT count(*) FROM case_events WHERE case_id = 1").scalar() == 1
        assert connection.exec_driver_sql("SELECT copy_pending FROM outbox").scalar() == 0
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1, "on again after the upgrade"
    engine.dispose()


def test_a_case_in_a_stage_this_version_does_not_know_is_refused_at_start_up_not_in_a_poll(harness) -> None:
    import pytest
    from sqlalchemy import update

    from mailbot.adapters.database.schema import Case
    from mailbot.bootstrap import build_app
    from mailbot.config import load_config
    from tests.service.test_desk import returned_case

    returned_case(harness)
    with harness.app.sessions.begin() as session:
        session.execute(update(Case).values(stage="archived"))  # written by a newer mailbot
    with pytest.raises(SchemaOutOfDate, match="archived"):
        build_app(load_config(harness.config_path), clock=harness.clock)


def test_postgresql_gets_the_trigram_indexes_for_the_boards_searches(db_url: str) -> None:
    engine = make_engine(db_url)
    indexes = {i["name"] for table in ("inbound", "cases") for i in inspect(engine).get_indexes(table)}
    dialect = engine.dialect.name
    engine.dispose()
    if dialect == "postgresql":
        assert indexes >= SEARCH_INDEXES
    else:
        assert not SEARCH_INDEXES & indexes


def test_downgrading_below_0006_writes_zstd_rows_back_as_zlib_and_refuses_to_drop_stored_files(
    harness, tmp_path
) -> None:
    import zlib

    import pytest
    from alembic import command
    from sqlalchemy import select, text, update

    from mailbot.adapters.database.engine import alembic_config, upgrade
    from mailbot.adapters.database.schema import RawMessage
    from tests.service.test_intake import request

    raw = request()
    harness.deliver(raw)
    harness.poll()
    engine = harness.app.engine

    def downgrade() -> None:
        config = alembic_config()
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0005")

    with harness.app.sessions.begin() as session:
        session.execute(update(RawMessage).values(location="directory"))
    with pytest.raises(RuntimeError, match="1 raw messages are in the directory store or thinned by retention"):
        downgrade()
    with harness.app.sessions.begin() as session:
        session.execute(update(RawMessage).values(location="database"))
        assert session.scalar(select(RawMessage.data))[:4] == b"\x28\xb5\x2f\xfd"
    downgrade()
    with engine.connect() as connection:
        assert zlib.decompress(connection.scalar(text("SELECT data FROM raw_messages"))) == raw
    upgrade(engine)
