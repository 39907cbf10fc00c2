import io
import itertools
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mailbot.adapters.database.engine import make_engine, make_sessionmaker
from mailbot.adapters.database.schema import UnisRow
from mailbot.adapters.database.store import DbUnisLookup
from mailbot.adapters.unis_csv import DB_COLUMNS, FULL_HEADER, HEADER, UnisFileError, UnisReader, read_unis_csv
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
        ("顧客CD,顧客名\r\n1,a\r\n".encode("cp932"), "line 1: the header lacks 顧客区分, 顧客状態, 支店, 契約No"),
        (csv(ROW, "123,足りない列"), "line 3: expected 11 columns"),
        (csv(ROW, ROW.replace("123456789", "ABC")), "line 3: 顧客CD"),
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


# --- issue 9: exports as people really produce them ----------------------------------

ZERO_ROW = ROW.replace("123456789", "012345678")


def test_a_customer_code_that_lost_its_leading_zero_in_excel_is_zero_padded_and_counted() -> None:
    reader = UnisReader(io.BytesIO(csv(ROW, ZERO_ROW.replace("012345678", "12345678"), "1" + ROW[9:])), digits=9)
    codes = [r.customer_code for r in reader]
    assert codes == ["123456789", "012345678", "000000001"]
    assert reader.report.padded_codes == 2 and reader.report.padded_lines == [3, 4]
    assert "2 顧客CD zero-padded" in reader.report.notes()[0]


def test_a_code_with_as_many_digits_as_configured_is_left_alone() -> None:
    reader = UnisReader(io.BytesIO(csv(ROW)), digits=9)
    assert [r.customer_code for r in reader] == ["123456789"]
    assert reader.report.padded_codes == 0 and reader.report.notes() == []


def test_a_malformed_due_date_is_stored_empty_and_counted_not_refused() -> None:
    reader = UnisReader(
        io.BytesIO(csv(ROW, ROW.replace("2026/12/10", "来週"), ROW.replace("2026/12/10", "2026/13/40")))
    )
    records = list(reader)
    assert [r.due_date for r in records] == [date(2026, 12, 10), None, None]
    assert reader.report.bad_due_dates == 2 and reader.report.bad_due_date_lines == [3, 4]


def excel_unicode_text(*rows: str, bom: bool = True) -> bytes:
    # Excel "Unicode text (*.txt)": UTF-16 LE with BOM, tab-separated, CRLF.
    lines = ["\t".join(HEADER), *(r.replace(",", "\t") for r in rows)]
    data = ("\r\n".join(lines) + "\r\n").encode("utf-16-le")
    return (b"\xff\xfe" if bom else b"") + data


@pytest.mark.parametrize("bom", [True, False])
def test_an_excel_unicode_text_export_is_read(bom: bool) -> None:
    reader = UnisReader(io.BytesIO(excel_unicode_text(ROW.replace("株式会社", "㈱"), ZERO_ROW[1:], bom=bom)))
    records = list(reader)
    assert [(r.customer_code, r.customer_name) for r in records] == [
        ("123456789", "㈱さくら商事"),
        ("012345678", "株式会社さくら商事"),
    ]
    assert (reader.report.encoding, reader.report.delimiter, reader.report.padded_codes) == ("UTF-16", "\t", 1)


def test_a_tab_separated_utf8_export_is_read_too() -> None:
    data = ("\r\n".join(["\t".join(HEADER), ROW.replace(",", "\t")]) + "\r\n").encode("utf-8")
    [record] = read_unis_csv(data)
    assert record.customer_name == "株式会社さくら商事"


def test_a_bad_byte_is_reported_at_its_real_line() -> None:
    # A UTF-8 export with one CP932 byte pair on line 1,502: the old whole-file
    # fallback to CP932 then failed on line 2 and said so.
    data = (
        csv(*[ROW] * 1501, encoding="utf-8") + "987654321,株式会社".encode() + "ｻｸﾗ".encode("cp932") + ROW[22:].encode()
    )
    with pytest.raises(
        UnisFileError, match=r"line 1503: byte 0xbb is not UTF-8 text \(the lines before it are UTF-8\)"
    ):
        read_unis_csv(data, "export.csv")


def test_a_bad_byte_in_a_cp932_export_is_reported_at_its_line() -> None:
    data = csv(ROW, ROW, encoding="cp932") + b"987654321,\x81\x7f" + ROW[9:].encode("cp932")
    with pytest.raises(UnisFileError, match="line 4: byte 0x81 is not CP932"):
        read_unis_csv(data)


def test_the_reader_streams_the_export_instead_of_reading_it_whole() -> None:
    class Endless(io.RawIOBase):
        """A 'file' of unbounded size that counts what was read from it."""

        def __init__(self) -> None:
            self.given = 0
            self.pending = (HEADER_LINE + "\r\n").encode("cp932")

        def readable(self) -> bool:
            return True

        def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
            while len(self.pending) < len(buffer):
                self.pending += (ROW + "\r\n").encode("cp932")
            n = len(buffer)
            buffer[:n], self.pending = self.pending[:n], self.pending[n:]
            self.given += n
            return n

    source = Endless()
    records = itertools.islice(UnisReader(io.BufferedReader(source)), 10_000)
    assert sum(1 for _ in records) == 10_000
    assert source.given < 4 * 1024 * 1024  # about 1 MB of the file in hand, not all of it


def test_a_bad_line_after_many_batches_leaves_the_previous_snapshot(db_url: str) -> None:
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    first = datetime(2026, 11, 20, tzinfo=UTC)
    import_unis(sessions, csv(ROW), name="good.csv", as_of=first, now=first)
    rows = [f"{200000000 + i}" + ROW[9:] for i in range(12_000)]
    with pytest.raises(UnisFileError, match="line 12002: 顧客CD"):
        import_unis(sessions, csv(*rows, "ABC" + ROW[9:]), name="bad.csv", as_of=first, now=first)
    with sessions() as session:
        lookup = DbUnisLookup(session)
        assert lookup.as_of == first
        assert lookup.customer("123456789") is not None
        assert lookup.customer("200000000") is None
        assert session.scalar(select(func.count()).select_from(UnisRow)) == 1
    engine.dispose()


def test_an_import_reports_its_repairs_and_counts_customers_in_the_database(db_url: str, tmp_path: Path) -> None:
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    now = datetime(2026, 11, 20, tzinfo=UTC)
    path = tmp_path / "export.txt"
    path.write_bytes(excel_unicode_text(ROW, ROW, ZERO_ROW[1:], ROW.replace("2026/12/10", "未定")))
    result = import_unis(sessions, path, name=path.name, as_of=now, now=now, digits=9)
    assert (result.rows, result.customers, result.padded_codes, result.bad_due_dates) == (4, 2, 1, 1)
    with sessions() as session:
        assert DbUnisLookup(session).customer("012345678") is not None
    engine.dispose()


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="peak RSS is read from /proc")
def test_a_unis_import_of_200000_rows_stays_far_below_150_mb(tmp_path: Path) -> None:
    # The figure: 200,000 rows (21.7 MB) peaked at 944 MB. Measured in
    # a fresh interpreter so nothing else in the test run counts; the manual's
    # full export (27 columns, as `make bench` writes it), the widest rows read.
    from bench.unis_bench import write_export

    path = tmp_path / "export.csv"
    write_export(path, 200_000, full=True)
    script = (
        "import sys; from datetime import UTC, datetime; from pathlib import Path\n"
        "from mailbot.adapters.database.engine import make_engine, make_sessionmaker, upgrade\n"
        "from mailbot.service.unis_import import import_unis\n"
        "engine = make_engine(sys.argv[2]); upgrade(engine); now = datetime.now(UTC)\n"
        "result = import_unis(make_sessionmaker(engine), Path(sys.argv[1]), name='x', as_of=now, now=now)\n"
        # VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the (large) forking test process.
        "peak = next(int(x.split()[1]) for x in open('/proc/self/status') if x.startswith('VmHWM'))\n"
        "print(result.rows, peak // 1024)\n"
    )
    url = f"sqlite:///{tmp_path / 'rss.sqlite3'}"
    done = subprocess.run([sys.executable, "-c", script, str(path), url], capture_output=True, text=True, check=True)
    rows, peak_mb = map(int, done.stdout.split())
    assert rows == 200_000
    assert peak_mb < 150


# --- the manual's full export ------------------------------------------------------------------

FULL_ROW = {
    "顧客CD": "123456789",
    "顧客名": "株式会社さくら商事",
    "顧客区分": "1 業務用",
    "顧客状態": "有効",
    "顧客処理区分": "0 新設",
    "顧客契約種類": "01-01 新設 新設",
    "支店": "渋谷支店",
    "契約No": "C0001",
    "商品区分": "0 通常",
    "支払方法": "9 UNIS売上対象外",
    "請求期間": "1",
    "明細No": "002",
    "明細処理区分": "2 契約変更",
    "明細契約種類": "11-99 増設 その他",
    "契約品目": "Z200214",
    "品目名": "NTTフレッツ光取次",
    "明細状態": "受注",
    "受注登録日": "2026/11/20",
    "開始年月": "202611",
    "完成予定日": "20261120",
    "契約担当者": "山田 花子",
    "ランニング": "0",
    "シリアルNO": "",
    "確定日": "",
    "解約日": "",
    "解約事由": "",
    "明細備考": "加入前顧客コード:012345678",
}


def full_csv(rows: list[dict[str, str]], header: list[str] | None = None) -> bytes:
    names = header or list(FULL_HEADER)
    lines = [",".join(names)] + [",".join(row.get(name, "") for name in names) for row in rows]
    return ("\r\n".join(lines) + "\r\n").encode("cp932")


def test_the_full_export_is_read_with_every_value_the_manual_sets() -> None:
    reader = UnisReader(io.BytesIO(full_csv([FULL_ROW])), "full.csv")
    [record] = list(reader)
    assert (record.line_process, record.line_contract_kind) == ("2 契約変更", "11-99 増設 その他")
    assert (record.order_date, record.due_date) == (date(2026, 11, 20), date(2026, 11, 20))
    assert record.start_month == "2026/11"
    assert (record.staff, record.running, record.payment_method) == ("山田 花子", "0", "9 UNIS売上対象外")
    assert record.remark == "加入前顧客コード:012345678"
    assert reader.report.columns == frozenset(DB_COLUMNS)
    assert reader.report.missing_columns == ()


def test_columns_are_found_by_header_in_any_order_and_unknown_ones_are_ignored() -> None:
    header = ["その他", *reversed(FULL_HEADER)]
    [record] = read_unis_csv(full_csv([{**FULL_ROW, "その他": "x"}], header))
    assert (record.customer_code, record.contract_no, record.line_no) == ("123456789", "C0001", "002")


def test_the_standard_export_reports_the_manuals_columns_it_lacks() -> None:
    reader = UnisReader(io.BytesIO(csv(ROW)), "standard.csv")
    [record] = list(reader)
    assert record.line_process is None and record.order_date is None
    assert "明細処理区分" in reader.report.missing_columns and "顧客CD" not in reader.report.missing_columns


def test_a_renamed_column_is_read_through_unis_columns() -> None:
    header = [("受注日" if name == "受注登録日" else name) for name in FULL_HEADER]
    row = {**FULL_ROW, "受注日": "2026/11/21"}
    [record] = read_unis_csv(full_csv([row], header), columns={"order_date": "受注日"})
    assert record.order_date == date(2026, 11, 21)
    [unmapped] = read_unis_csv(full_csv([row], header))
    assert unmapped.order_date is None


@pytest.mark.parametrize(("cell", "month"), [("2026/12", "2026/12"), ("202612", "2026/12"), ("2026年12月", "2026/12")])
def test_a_start_month_is_read_as_unis_writes_it(cell: str, month: str) -> None:
    [record] = read_unis_csv(full_csv([{**FULL_ROW, "開始年月": cell}]))
    assert record.start_month == month


def test_a_bad_date_in_another_column_is_stored_empty_and_counted_with_its_line() -> None:
    reader = UnisReader(io.BytesIO(full_csv([FULL_ROW, {**FULL_ROW, "受注登録日": "未定", "開始年月": "13月"}])))
    records = list(reader)
    assert records[1].order_date is None and records[1].start_month is None
    assert reader.report.bad_dates == {"受注登録日": (1, [3]), "開始年月": (1, [3])}
    assert any("受注登録日 not a date" in note for note in reader.report.notes())


def test_the_full_export_is_stored_and_read_back_with_its_columns(db_url: str) -> None:
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    now = datetime(2026, 11, 24, tzinfo=UTC)
    import_unis(sessions, full_csv([FULL_ROW]), name="full.csv", as_of=now, now=now)
    with sessions() as session:
        lookup = DbUnisLookup(session)
        customer = lookup.customer("123456789")
        assert customer is not None
        [line] = customer.lines
        assert (line.line_process, line.order_date, line.start_month) == ("2 契約変更", date(2026, 11, 20), "2026/11")
        assert customer.customer_contract_kind == "01-01 新設 新設"
        assert "order_date" in lookup.columns and "remark" in lookup.columns
    import_unis(sessions, csv(ROW), name="standard.csv", as_of=now, now=now)
    with sessions() as session:
        assert "order_date" not in DbUnisLookup(session).columns
    engine.dispose()


def test_a_line_state_that_is_none_of_the_four_is_kept_counted_and_never_taken_for_one() -> None:
    rows = [FULL_ROW, {**FULL_ROW, "明細状態": "受注済み"}, {**FULL_ROW, "明細状態": "1 受注"}]
    reader = UnisReader(io.BytesIO(full_csv(rows)))
    records = list(reader)
    assert [r.line_state for r in records] == ["受注", "受注済み", "1 受注"]
    assert (reader.report.unknown_states, reader.report.unknown_state_lines) == (1, [3])
    assert any("明細状態 not 受注/確定/解約/キャンセル (受注済み)" in note for note in reader.report.notes())
