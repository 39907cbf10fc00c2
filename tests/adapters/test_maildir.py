from pathlib import Path

import pytest

from mailbot.adapters.maildir import MaildirSource
from mailbot.service.ports import SourceError


def maildir(tmp_path: Path) -> Path:
    for sub in ("new", "cur", "tmp"):
        (tmp_path / sub).mkdir()
    return tmp_path


def test_new_messages_are_yielded_with_size_and_lazy_body(tmp_path: Path) -> None:
    root = maildir(tmp_path)
    (root / "new" / "1.a.host").write_bytes(b"Subject: x\r\n\r\nbody")
    [item] = list(MaildirSource(root).fetch_new(lambda keys: set()))
    assert (item.key, item.size) == ("1.a.host", 18)
    assert item.load() == b"Subject: x\r\n\r\nbody"


def test_mail_in_cur_is_read_only_when_the_ledger_does_not_know_it(tmp_path: Path) -> None:
    root = maildir(tmp_path)
    (root / "cur" / "1.old.host:2,S").write_bytes(b"old")
    (root / "cur" / "2.moved-by-client.host:2,").write_bytes(b"new to us")
    asked: list[str] = []

    def known(keys):
        asked.extend(keys)
        return {"1.old.host"}

    items = list(MaildirSource(root).fetch_new(known))
    assert [i.key for i in items] == ["2.moved-by-client.host"]
    assert sorted(asked) == ["1.old.host", "2.moved-by-client.host"]


def test_marking_moves_from_new_to_cur_without_flags(tmp_path: Path) -> None:
    root = maildir(tmp_path)
    (root / "new" / "1.a.host").write_bytes(b"x")
    source = MaildirSource(root)
    [item] = list(source.fetch_new(lambda keys: set()))
    source.mark(item, "ignored", None)
    source.mark(item, "ignored", None)  # idempotent
    assert [p.name for p in (root / "cur").iterdir()] == ["1.a.host:2,"]


def test_a_message_moved_by_a_client_after_listing_is_still_read(tmp_path: Path) -> None:
    root = maildir(tmp_path)
    (root / "new" / "1.a.host").write_bytes(b"x")
    [item] = list(MaildirSource(root).fetch_new(lambda keys: set()))
    (root / "new" / "1.a.host").rename(root / "cur" / "1.a.host:2,S")
    assert item.load() == b"x"


def test_a_folder_that_is_not_a_maildir_is_a_clear_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="not a Maildir"):
        list(MaildirSource(tmp_path / "missing").fetch_new(lambda keys: set()))


def test_a_long_running_source_asks_the_ledger_about_each_old_name_once(tmp_path: Path) -> None:
    root = maildir(tmp_path)
    for i in range(1200):
        (root / "cur" / f"{i}.old.host:2,S").write_bytes(b"x")
    asked: list[int] = []

    def known(keys):
        asked.append(len(keys))
        return set(keys)

    source = MaildirSource(root)
    assert list(source.fetch_new(known)) == []
    assert sum(asked) == 1200
    asked.clear()
    (root / "new" / "9999.fresh.host").write_bytes(b"y")
    assert [i.key for i in source.fetch_new(known)] == ["9999.fresh.host"]
    assert asked == [], "old mail costs a directory entry, not a query"


def test_marking_moves_plain_names_and_names_with_an_info_suffix(tmp_path: Path) -> None:
    root = maildir(tmp_path)
    for i in range(50):
        (root / "new" / f"{i}.m.host").write_bytes(b"x")
    (root / "new" / "77.odd.host:2,F").write_bytes(b"x")  # a client already added info here
    source = MaildirSource(root)
    for item in list(source.fetch_new(lambda keys: set())):
        source.mark(item, "case", "accepted")
    assert not list((root / "new").iterdir())
    assert len(list((root / "cur").iterdir())) == 51


# --- issue 9: never follow a symlink out of the Maildir ------------------------------


def _maildir_in(tmp_path: Path) -> Path:
    root = tmp_path / "Maildir"
    root.mkdir()
    return maildir(root)


def _secret(tmp_path: Path) -> Path:
    secret = tmp_path / "outside" / "shadow"
    secret.parent.mkdir()
    secret.write_bytes(b"Subject: root:$6$secret-hash\r\n\r\nroot:$6$secret-hash:19000:0:99999:7:::\r\n")
    return secret


@pytest.mark.parametrize("folder", ["new", "cur"])
def test_a_symlink_in_the_maildir_is_skipped_with_a_warning_and_never_read(
    tmp_path: Path, folder: str, caplog: pytest.LogCaptureFixture
) -> None:
    root = _maildir_in(tmp_path)
    secret = _secret(tmp_path)
    link = root / folder / ("1.evil.host" + (":2," if folder == "cur" else ""))
    link.symlink_to(secret)
    (root / folder / ("2.good.host" + (":2," if folder == "cur" else ""))).write_bytes(b"Subject: ok\r\n\r\nok")
    source = MaildirSource(root)
    items = list(source.fetch_new(lambda keys: set()))
    assert [i.key for i in items] == ["2.good.host"]
    assert any("symlink" in r.getMessage() and str(link) in r.getMessage() for r in caplog.records)
    assert link.is_symlink()  # left where it is, not moved to cur/
    caplog.clear()
    list(source.fetch_new(lambda keys: set()))
    assert not caplog.records  # warned once per process, not on every poll


def test_a_file_swapped_for_a_symlink_after_listing_is_not_followed(tmp_path: Path) -> None:
    root = _maildir_in(tmp_path)
    secret = _secret(tmp_path)
    path = root / "new" / "1.a.host"
    path.write_bytes(b"Subject: x\r\n\r\nbody")
    [item] = list(MaildirSource(root).fetch_new(lambda keys: set()))
    path.unlink()
    path.symlink_to(secret)
    with pytest.raises(OSError):
        item.load()
    assert item.load_headers is not None
    with pytest.raises(OSError):
        item.load_headers()


def test_a_new_folder_that_is_a_symlink_out_of_the_maildir_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "Maildir"
    (root / "cur").mkdir(parents=True)
    elsewhere = tmp_path / "etc"
    elsewhere.mkdir()
    (root / "new").symlink_to(elsewhere)
    with pytest.raises(SourceError, match="symlink out of the Maildir"):
        list(MaildirSource(root).fetch_new(lambda keys: set()))


def test_a_poll_never_stores_what_a_symlink_in_new_points_at(tmp_path: Path, db_url: str) -> None:
    from sqlalchemy import select

    from mailbot.adapters.database.schema import Inbound, RawMessage
    from tests.fixtures.bot import make_harness

    harness = make_harness(tmp_path / "bot", db_url)
    secret = _secret(tmp_path)
    (harness.maildir / "new" / "1700000000.evil.host").symlink_to(secret)
    report = harness.poll()
    assert report.processed == 0
    assert harness.messages() == []
    with harness.app.sessions() as session:
        assert session.scalars(select(Inbound)).all() == []
        assert session.scalars(select(RawMessage)).all() == []
    assert (harness.maildir / "new" / "1700000000.evil.host").is_symlink()
    harness.app.close()
