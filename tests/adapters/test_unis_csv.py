from datetime import UTC, date, datetime

import pytest

from mailbot.adapters.database.engine import make_engine, make_sessionmaker
from mailbot.adapters.database.store import DbUnisLookup
from mailbot.adapters.unis_csv import HEADER, UnisFileError, read_unis_csv
from mailbot.service.unis_import import import_unis

ROW = "123456789,株式会社さくら商事,1,有効,C0001,001,Z200214,NTTフレッツ光取次,受注,2026/12/10,渋谷支店"
HEADER_LINE = ",".join(HEADER)


def csv(*rows: str, encoding: str = "cp932", bom: bool = False) -> bytes:
    data = ("\r\n".join([HEADER_LINE, *rows]) + "\r\n").encode(encoding)
    return (b"\xef\xbb\xbf" if bom else b"") + data


@pytest.mark.parametrize(("encoding", "bom"), [("cp932", False), ("utf-8", False), ("utf-8", True)])
def test_an_export_is_read_in_cp932_or_utf8_with_or_without_bom(encoding: str, bom: bool) -> None:
    [record] = read_unis_csv(csv(ROW, encoding=encoding, bom=bom))
    assert record.customer_code == "123456789"
    assert record.customer_name == "株式会社さくら商事"
    assert record.item_code == "Z200214"
    assert record.line_state == "受注"
    assert record.due_date == date(2026, 12, 10)


def test_cp932_only_characters_survive() -> None:
    [record] = read_unis_csv(csv(ROW.replace("株式会社", "㈱"), encoding="cp932"))
    assert record.customer_name == "㈱さくら商事"


def test_full_width_codes_are_normalised() -> None:
    [record] = read_unis_csv(csv(ROW.replace("123456789", "１２３４５６７８９").replace("Z200214", "Ｚ２００２１４")))
    assert (record.customer_code, record.item_code) == ("123456789", "Z200214")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (csv(), "no customer rows"),
        ("顧客CD,顧客名\r\n1,a\r\n".encode("cp932"), "line 1: header"),
        (csv(ROW, "123,足りない列"), "line 3: expected 11 columns"),
        (csv(ROW, ROW.replace("123456789", "ABC")), "line 3: 顧客CD"),
        (csv(ROW.replace("2026/12/10", "来週")), "line 2: 完成予定日"),
        (b"\x81\x00\xff\xfe\x80", "neither UTF-8 nor CP932"),
    ],
)
def test_a_bad_file_is_refused_with_the_line_number(data: bytes, message: str) -> None:
    with pytest.raises(UnisFileError, match=message):
        read_unis_csv(data, "export.csv")


def test_a_bad_import_changes_nothing(db_url: str) -> None:
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    first = datetime(2026, 11, 20, tzinfo=UTC)
    import_unis(sessions, csv(ROW), name="good.csv", as_of=first, now=first)
    with pytest.raises(UnisFileError):
        import_unis(sessions, csv("987654321" + ROW[9:], "broken"), name="bad.csv", as_of=first, now=first)
    with sessions() as session:
        lookup = DbUnisLookup(session)
        assert lookup.as_of == first
        assert lookup.customer("123456789") is not None
        assert lookup.customer("987654321") is None
    engine.dispose()


def test_an_import_replaces_the_previous_snapshot(db_url: str) -> None:
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    t1, t2 = datetime(2026, 11, 20, tzinfo=UTC), datetime(2026, 11, 21, tzinfo=UTC)
    import_unis(sessions, csv(ROW), name="a.csv", as_of=t1, now=t1)
    import_unis(sessions, csv("987654321" + ROW[9:]), name="b.csv", as_of=t2, now=t2)
    with sessions() as session:
        lookup = DbUnisLookup(session)
        assert lookup.as_of == t2
        assert lookup.customer("123456789") is None
        found = lookup.customer("987654321")
        assert found is not None and found.open_brokerage_lines()
    engine.dispose()
