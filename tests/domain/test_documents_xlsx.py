"""The customer code in an .xlsx form, read from the workbook's own XML as Excel writes it."""

from __future__ import annotations

import io
import zipfile

from mailbot.domain.documents import customer_codes_in_xlsx
from mailbot.domain.model import Attachment
from mailbot.domain.policy import Limits
from tests.domain.builders import xlsx_form

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
LABELS = ("顧客CD", "顧客コード")


def excel_workbook(sheets: list[tuple[str, str]], shared: list[str], order: list[int] | None = None) -> bytes:
    """A workbook as Excel saves it: shared strings, one part per sheet, the order in workbook.xml.

    ``sheets`` are (name, <sheetData> inner XML); ``shared`` the <si> items' inner XML.
    """
    order = order if order is not None else list(range(len(sheets)))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        entries = "".join(f'<sheet name="{sheets[i][0]}" sheetId="{i + 1}" r:id="rId{i + 1}"/>' for i in order)
        archive.writestr(
            "xl/workbook.xml",
            f'<workbook xmlns="{MAIN}" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
            f"<sheets>{entries}</sheets></workbook>",
        )
        rels = "".join(
            f'<Relationship Id="rId{i + 1}" Target="worksheets/sheet{i + 1}.xml" '
            'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet"/>'
            for i in range(len(sheets))
        )
        archive.writestr(
            "xl/_rels/workbook.xml.rels",
            f'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">{rels}</Relationships>',
        )
        items = "".join(f"<si>{item}</si>" for item in shared)
        archive.writestr("xl/sharedStrings.xml", f'<sst xmlns="{MAIN}">{items}</sst>')
        for i, (_name, data) in enumerate(sheets):
            archive.writestr(
                f"xl/worksheets/sheet{i + 1}.xml",
                f'<worksheet xmlns="{MAIN}"><sheetData>{data}</sheetData></worksheet>',
            )
    return buffer.getvalue()


def codes(payload: bytes) -> list[str]:
    return customer_codes_in_xlsx(
        Attachment("回線単品申込書.xlsx", "application/octet-stream", payload), LABELS, 9, Limits()
    )


def test_a_code_right_of_a_shared_string_label_is_found_as_excel_writes_numbers() -> None:
    sheet = '<row r="3"><c r="A3" t="s"><v>0</v></c><c r="B3"><v>123456789</v></c></row>'
    assert codes(excel_workbook([("申込書", sheet)], ["<t>顧客CD</t>"])) == ["123456789"]


def test_the_furigana_excel_keeps_beside_a_japanese_label_is_not_part_of_the_label() -> None:
    # Japanese Excel stores the reading of typed kanji as an rPh run inside the string item.
    label = '<r><t>顧客</t></r><r><t>CD</t></r><rPh sb="0" eb="2"><t>コキャク</t></rPh>'
    sheet = '<row r="2"><c r="B2" t="s"><v>0</v></c></row><row r="3"><c r="B3" t="s"><v>1</v></c></row>'
    assert codes(excel_workbook([("申込書", sheet)], [label, "<t>987654321</t>"])) == ["987654321"]


def test_codes_of_several_sheets_come_in_the_workbooks_order_not_the_part_names() -> None:
    first = '<row r="1"><c r="A1" t="inlineStr"><is><t>顧客コード：111111111</t></is></c></row>'
    second = '<row r="1"><c r="A1" t="inlineStr"><is><t>顧客コード：222222222</t></is></c></row>'
    workbook = excel_workbook([("後", first), ("先", second)], [], order=[1, 0])
    assert codes(workbook) == ["222222222", "111111111"]


def test_cells_beyond_the_forms_corner_are_not_read() -> None:
    far_down = '<row r="501"><c r="A501" t="s"><v>0</v></c><c r="B501"><v>123456789</v></c></row>'
    far_right = '<row r="2"><c r="BI2" t="s"><v>0</v></c><c r="BJ2"><v>987654321</v></c></row>'
    inside = '<row r="500"><c r="BH500" t="s"><v>0</v></c></row><row r="501"><c r="BH501"><v>555555555</v></c></row>'
    assert codes(excel_workbook([("a", far_right + far_down)], ["<t>顧客CD</t>"])) == []
    # A label on the corner's last row finds nothing below it: row 501 is outside the corner.
    assert codes(excel_workbook([("a", inside)], ["<t>顧客CD</t>"])) == []


def test_a_label_on_the_corners_edge_takes_its_neighbour_inside_the_corner() -> None:
    sheet = '<row r="500"><c r="BG500" t="s"><v>0</v></c><c r="BH500"><v>444444444</v></c></row>'
    assert codes(excel_workbook([("a", sheet)], ["<t>顧客CD</t>"])) == ["444444444"]


def test_a_workbook_whose_sheet_xml_is_broken_names_no_code() -> None:
    broken = '<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1"><v>123456789</v>'
    assert codes(excel_workbook([("a", broken)], ["<t>顧客CD</t>"])) == []


def test_a_zip_that_is_no_workbook_names_no_code() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("readme.txt", "顧客CD 123456789")
    assert codes(buffer.getvalue()) == []


def test_a_form_saved_by_openpyxl_reads_the_same_as_one_saved_by_excel() -> None:
    assert codes(xlsx_form("顧客CD", 123456789)) == ["123456789"]
    assert codes(xlsx_form("顧客コード", "１２３４５６７８９", below=True)) == ["123456789"]


def test_rows_and_cells_without_a_reference_take_their_place_from_their_order() -> None:
    # The format lets a writer leave out r= on rows and cells; their position is then their order.
    sheet = (
        "<row><c><v>1</v></c></row>"
        '<row><c t="s"><v>0</v></c><c><v>123456789</v></c></row>'
        '<row r="5"><c r="C5" t="s"><v>0</v></c><c t="inlineStr"><is><t>987654321</t></is></c></row>'
    )
    assert codes(excel_workbook([("a", sheet)], ["<t>顧客CD</t>"])) == ["123456789", "987654321"]


def test_a_label_whose_code_is_below_it_on_a_row_without_a_reference_is_found() -> None:
    sheet = '<row><c t="s"><v>0</v></c></row><row><c t="s"><v>1</v></c></row>'
    assert codes(excel_workbook([("a", sheet)], ["<t>顧客CD</t>", "<t>555555555</t>"])) == ["555555555"]
