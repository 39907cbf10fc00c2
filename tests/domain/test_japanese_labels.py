"""Charset labels as Japanese mailers write them, and what each one makes of the bytes.

Every label is checked through the decoded text (and whether the parser would
note "declared X but decoded as Y"), not through the table it sits in: a label
the decoder did not recognise still decodes many texts by guessing, so each
test uses a text that only the right reading gets right.
"""

from __future__ import annotations

import pytest

from mailbot.domain.japanese import DecodeResult, canonical_charset, decode_bytes, decode_bytes_detailed

# "10～20日 ①" as Windows (CP932) writes it: ～ is 81 60, which Shift_JIS
# proper reads as 〜 (WAVE DASH), and ① (87 40) is not in Shift_JIS at all.
WINDOWS_SJIS = "工事 10～20日".encode("cp932")
# A filename from an old phone mailer: one stray 8-bit byte under a JIS label.
STRAY_BYTE_FILENAME = b"01 Dij\x8aat.mp3"
# "月額≒5,000円" in Windows EUC (CP51932): ≒ is NEC row 13 (AD F0), which
# neither EUC-JP nor EUC-JIS-2004 has.
WINDOWS_EUC = "月額".encode("euc_jp") + b"\xad\xf0" + "5,000円".encode("euc_jp")
# "グループ失敗" from an Exchange bounce: GBK bytes (ー = A9 60, 敗 = 94 A1).
EXCHANGE_GBK = bytes.fromhex("a5b0a5eba960a5d7caa794a1")

SJIS_LABELS = [
    "shift_jis", "Shift-JIS", "sjis", "s_jis", "x-sjis", "X-SJIS", "x_sjis", "shiftjis", "csShiftJIS",
    "MS_Kanji", "ms932", "cp932", "Windows-31J", "windows_31j", "x-ms-cp932", "IBM-943",
    "cp943", "cp943c",
]  # fmt: skip
JIS_LABELS = [
    "ISO-2022-JP", "iso2022-jp", "iso_2022_jp", "iso2022jp", "csISO2022JP", "jis",
    "iso-2022-jp-1", "iso-2022-jp-2", "iso-2022-jp-3", "iso-2022-jp-2004", "iso-2022-jp-ext",
    "x-windows-iso2022jp", "cp50220", "cp50221", "cp50222", "iso-2022-jp-ms", "csISO2022JP2",
]  # fmt: skip
EUC_LABELS = [
    "EUC-JP", "euc_jp", "eucjp", "x-euc-jp", "x-euc", "csEUCPkdFmtJapanese", "ujis", "u-jis",
    "euc-jis-2004", "euc_jis_2004", "euc-jisx0213", "cp51932", "eucJP-ms", "eucjp-open",
    "eucJP-win",
]  # fmt: skip
GB_LABELS = ["gb2312", "GBK", "x-gbk", "cp936", "ms936", "windows-936", "euc-cn", "x-euc-cn", "x-gb2312", "GB18030"]


def test_windows_sjis_text_decodes_as_typed_under_the_plain_shift_jis_codec_too() -> None:
    # Why the labels matter: the stdlib shift_jis codec turns Windows' ～ into 〜.
    assert WINDOWS_SJIS.decode("shift_jis") == "工事 10〜20日"


@pytest.mark.parametrize("label", SJIS_LABELS)
def test_every_shift_jis_label_reads_windows_text_as_typed_and_without_a_guess(label: str) -> None:
    assert decode_bytes_detailed(WINDOWS_SJIS, label) == DecodeResult("工事 10～20日", "cp932", lossy=False)


@pytest.mark.parametrize("label", JIS_LABELS)
def test_every_iso_2022_jp_label_reads_an_outlook_wave_dash_as_typed(label: str) -> None:
    data = b"10\x1b$B!A\x1b(B20"
    assert decode_bytes_detailed(data, label) == DecodeResult("10～20", "iso-2022-jp-cp932", lossy=False)


@pytest.mark.parametrize("label", JIS_LABELS)
def test_every_iso_2022_jp_label_refuses_to_invent_a_kanji_from_a_stray_byte(label: str) -> None:
    result = decode_bytes_detailed(STRAY_BYTE_FILENAME, label)
    assert result.text == "01 Dij\ufffdat.mp3"
    assert result.lossy


@pytest.mark.parametrize("label", EUC_LABELS)
def test_every_euc_jp_label_reads_windows_euc_with_nec_row13(label: str) -> None:
    assert decode_bytes_detailed(WINDOWS_EUC, label) == DecodeResult("月額≒5,000円", "cp51932", lossy=False)


@pytest.mark.parametrize("label", GB_LABELS)
def test_every_chinese_label_reads_the_gbk_bytes_of_an_exchange_bounce(label: str) -> None:
    assert decode_bytes_detailed(EXCHANGE_GBK, label) == DecodeResult("グループ失敗", "gb18030", lossy=False)


@pytest.mark.parametrize(
    "label",
    [" Shift_JIS ", '"Shift_JIS"', "'shift_jis'", ' "Shift_JIS" ', '" Shift_JIS "', "SHIFT_JIS", "Shift_JIS*ja"],
)
def test_quotes_spaces_case_and_a_language_suffix_around_a_label_are_ignored(label: str) -> None:
    assert decode_bytes_detailed(WINDOWS_SJIS, label) == DecodeResult("工事 10～20日", "cp932", lossy=False)


@pytest.mark.parametrize("label", ["unknown-8bit", "x-unknown", "unknown", "8bit", "x-user-defined", "", None])
def test_labels_that_name_no_charset_leave_the_bytes_to_be_sniffed(label: str | None) -> None:
    assert canonical_charset(label) is None
    assert decode_bytes(WINDOWS_SJIS, label) == "工事 10～20日"


def test_a_label_with_a_nul_byte_names_no_charset() -> None:
    # A hostile mail; codecs.lookup raises ValueError, not LookupError, on it.
    assert canonical_charset("utf-8\x00") is None
    assert decode_bytes(WINDOWS_SJIS, "utf-8\x00") == "工事 10～20日"


def test_a_label_that_names_no_codec_is_a_guess_even_when_the_guess_is_utf8() -> None:
    # The parser notes "declared x-no-such-charset but decoded as utf-8".
    result = decode_bytes_detailed("渋谷支店".encode(), "x-no-such-charset")
    assert result == DecodeResult("渋谷支店", "utf-8", lossy=False, guessed=True)


def test_no_label_at_all_is_no_guess() -> None:
    result = decode_bytes_detailed("渋谷支店".encode(), None)
    assert result == DecodeResult("渋谷支店", "utf-8", lossy=False, guessed=False)


@pytest.mark.parametrize(
    ("label", "data"),
    [
        # Codecs that would interpret the payload rather than map it: a body
        # of "\u6e0b" must not become 渋, nor an ASCII label xn--... a domain.
        ("unicode_escape", b"\\u6e0b\\u8c37"),
        ("raw_unicode_escape", b"\\u6e0b\\u8c37"),
        ("idna", b"xn--wgv71a"),
        ("punycode", b"wgv71a"),
        # A codec that refuses everything.
        ("undefined", b"wgv71a"),
        # Bytes-to-bytes codecs.
        ("base64", b"5riL6LC3"),
        ("hex", b"e6b88be8b0b7"),
        ("rot13", b"jtI71n"),
    ],
)
def test_a_label_naming_a_codec_that_interprets_the_bytes_leaves_them_as_written(label: str, data: bytes) -> None:
    assert canonical_charset(label) is None
    assert decode_bytes(data, label) == data.decode("ascii")


def test_us_ascii_label_on_eight_bit_text_is_sniffed_instead_of_replaced() -> None:
    result = decode_bytes_detailed("申込書".encode("cp932"), "us-ascii")
    assert result == DecodeResult("申込書", "cp932", lossy=False, guessed=True)


def test_a_python_codec_label_outside_japan_is_used_as_declared() -> None:
    assert decode_bytes_detailed("Привет".encode("koi8_r"), "KOI8-R") == DecodeResult("Привет", "koi8-r", lossy=False)
