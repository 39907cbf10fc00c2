"""The hand-rolled ISO-2022-JP decoder (CP50220/50221/50222) on what mailers really send.

Byte literals are JIS codes written out by hand: 申込書 is 3F 3D 39 7E 3D 71
(込 ends on 0x7E, the last trail byte), 渋谷 is 3D 42 43 2B, the ideographic
space is 21 21 (the first trail byte), テスト is 25 46 25 39 25 48.
"""

from __future__ import annotations

import pytest

from mailbot.domain.japanese import DecodeResult, decode_bytes, decode_bytes_detailed, decode_iso2022jp_cp932

KANJI = b"\x1b$B"
ASCII = b"\x1b(B"
MOUSHIKOMISHO = b"?=9~=q"
SHIBUYA = b"=BC+"
IDEOGRAPHIC_SPACE = b"!!"
TESUTO = b"%F%9%H"


def test_the_first_and_last_trail_bytes_of_a_jis_pair_decode() -> None:
    data = KANJI + SHIBUYA + IDEOGRAPHIC_SPACE + MOUSHIKOMISHO + ASCII
    assert decode_iso2022jp_cp932(data) == "渋谷\u3000申込書"


@pytest.mark.parametrize(
    ("escape", "name"),
    [
        (b"\x1b$@", "JIS C 6226-1978 (ESC $ @)"),
        (b"\x1b$B", "JIS X 0208-1983 (ESC $ B)"),
        (b"\x1b&@\x1b$B", "JIS X 0208-1990 (ESC & @ ESC $ B)"),
        (b"\x1b$(B", "JIS X 0208 in the four-byte form (ESC $ ( B)"),
        (b"\x1b$(@", "JIS C 6226 in the four-byte form (ESC $ ( @)"),
    ],
)
def test_every_designation_of_jis_x0208_old_mailers_write_reads_kanji(escape: bytes, name: str) -> None:
    assert decode_iso2022jp_cp932(b"FE " + escape + MOUSHIKOMISHO + ASCII + b".pdf") == "FE 申込書.pdf", name


@pytest.mark.parametrize("escape", [b"\x1b(B", b"\x1b(J", b"\x1b(H"])
def test_every_designation_of_ascii_returns_to_plain_text(escape: bytes) -> None:
    # ESC ( J is JIS X 0201 Roman and ESC ( H an obsolete Swedish set: mail means ASCII by both.
    assert decode_iso2022jp_cp932(KANJI + SHIBUYA + escape + b"Re: [FE-2026-00001]") == "渋谷Re: [FE-2026-00001]"


def test_halfwidth_katakana_with_the_semi_voiced_mark_decodes() -> None:
    # ﾊﾟｿｺﾝ: ﾟ is 0x5F, the last JIS X 0201 katakana byte.
    assert decode_iso2022jp_cp932(b"\x1b(IJ_?:]" + ASCII) == "ﾊﾟｿｺﾝ"


def test_so_si_katakana_after_ascii_text_decode() -> None:
    assert decode_iso2022jp_cp932(b"FE \x0eLZ/B\x0f!") == "FE ﾌﾚｯﾂ!"


def test_so_si_katakana_return_to_ascii_at_a_line_break() -> None:
    # A sloppy CP50222 encoder forgets the SI before the line break.
    assert decode_iso2022jp_cp932(b"\x0eLZ/B\nFLETS") == "ﾌﾚｯﾂ\nFLETS"


@pytest.mark.parametrize("newline", [b"\n", b"\r"])
def test_a_bare_line_break_returns_to_ascii(newline: bytes) -> None:
    # The parser hands over LF-only text; old Macs wrote CR alone.
    data = KANJI + SHIBUYA + newline + b"FLETS" + KANJI + TESUTO + ASCII
    assert decode_iso2022jp_cp932(data) == "渋谷" + newline.decode() + "FLETSテスト"


def test_spaces_and_tabs_inside_kanji_text_stand_for_themselves() -> None:
    assert decode_iso2022jp_cp932(KANJI + SHIBUYA + b" \t" + TESUTO + ASCII) == "渋谷 \tテスト"


def test_a_del_byte_inside_kanji_text_stands_for_itself() -> None:
    # 0x7F is no JIS lead byte; the arithmetic would turn it into a private-use character.
    assert decode_iso2022jp_cp932(KANJI + b"%F\x7f%9" + ASCII) == "テ\x7fス"


# --- what strict mode reports: the codec's contract, like the stdlib's -------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"FE\x1b$(Q!!", "can't decode byte 0x1b in position 2: unsupported escape sequence"),
        (KANJI + b"%F\x8a%9", "can't decode byte 0x8a in position 5: 8-bit byte in 7-bit ISO-2022-JP"),
        (b"\x1b(IJ`", "can't decode byte 0x60 in position 4: byte outside JIS X 0201 katakana"),
        (KANJI + b"%F%", "can't decode byte 0x25 in position 5: truncated JIS X 0208 pair"),
        (KANJI + b"%\n", "can't decode byte 0x25 in position 3: truncated JIS X 0208 pair"),
        (KANJI + b"BjL>v^", "can't decode bytes in position 7-8: JIS pair not in CP932"),
    ],
)
def test_strict_decoding_names_the_bytes_that_are_not_iso_2022_jp(data: bytes, message: str) -> None:
    with pytest.raises(UnicodeDecodeError) as caught:
        decode_iso2022jp_cp932(data)
    assert str(caught.value) == "'iso-2022-jp-cp932' codec " + message


def test_an_unknown_error_handler_is_refused_like_the_stdlib_codecs_refuse_it() -> None:
    with pytest.raises(LookupError):
        decode_iso2022jp_cp932(KANJI + TESUTO + ASCII, errors="REPLACE")


@pytest.mark.parametrize(
    ("data", "text"),
    [
        # ESC $ ( Q (JIS X 0213) is not read: the escape alone is replaced.
        (b"FE\x1b$(Q!!", "FE\ufffd$(Q!!"),
        (KANJI + b"%F\x8a%9" + ASCII, "テ\ufffdス"),
        (b"FE\x80 ok", "FE\ufffd ok"),
        (b"\x1b(IJ`J" + ASCII, "ﾊ\ufffdﾊ"),
        (KANJI + b"%F%", "テ\ufffd"),
        (KANJI + b"%\nFLETS", "\ufffd\nFLETS"),
        # DEL is no trail byte: the lead is replaced and DEL kept.
        (KANJI + b"%\x7f" + ASCII, "\ufffd\x7f"),
        # 題名 and an au emoji (JIS 76 5E) no codec maps.
        (KANJI + b"BjL>v^L>" + ASCII + b"!", "題名\ufffd名!"),
    ],
)
def test_replace_mode_replaces_each_bad_sequence_once_and_reads_on(data: bytes, text: str) -> None:
    assert decode_iso2022jp_cp932(data, errors="replace") == text


def test_a_subject_with_an_au_emoji_is_read_around_it_with_the_windows_tables() -> None:
    # 【至急】 keeps its brackets (21 5A / 21 5B) and ～ stays Windows' ～.
    data = KANJI + b"!Z;j5^![" + ASCII + b"10" + KANJI + b"!A" + ASCII + b"20 " + KANJI + b"v^" + ASCII
    result = decode_bytes_detailed(data, "iso-2022-jp")
    assert result.text == "【至急】10～20 \ufffd"
    assert result.codec == "iso-2022-jp-cp932"
    assert result.lossy


def test_raw_shift_jis_under_a_jis_label_is_read_but_noted_as_a_guess() -> None:
    # Old phone mailers label raw Shift_JIS as ISO-2022-JP.
    result = decode_bytes_detailed("申込書を送ります".encode("cp932"), "iso-2022-jp")
    assert result.text == "申込書を送ります"
    assert result.codec == "cp932"
    assert result.guessed


def test_two_kanji_under_a_jis_label_are_real_shift_jis_text() -> None:
    assert decode_bytes("渋谷".encode("cp932"), "iso-2022-jp") == "渋谷"


def test_one_kana_under_a_jis_label_is_real_shift_jis_text() -> None:
    # A single wide character is believed when it is kana (here ﾃ, half-width).
    assert decode_bytes(b"No.\xc3", "iso-2022-jp") == "No.ﾃ"
    assert decode_bytes("No.あ".encode("cp932"), "iso-2022-jp") == "No.あ"


@pytest.mark.parametrize(("byte", "kana"), [(b"\xa6", "ｦ"), (b"\xdf", "ﾟ")])
def test_the_first_and_last_halfwidth_katakana_alone_under_a_jis_label_are_believed(byte: bytes, kana: str) -> None:
    assert decode_bytes(b"No." + byte, "iso-2022-jp") == "No." + kana


def test_one_symbol_under_a_jis_label_is_not_believed() -> None:
    # ※ (81 A6) is no kana: alone, it is as likely a stray byte pair as text.
    assert decode_bytes(b"No.\x81\xa6", "iso-2022-jp") == "No.\ufffd\ufffd"


def test_a_del_control_beside_one_kanji_under_a_jis_label_does_not_make_it_believable() -> None:
    assert decode_bytes(b"No.\x7f\x8aa", "iso-2022-jp") == "No.\x7f\ufffda"


def test_one_kanji_under_a_jis_label_is_not_believed() -> None:
    # 蛎 (8A 61) alone is what a stray byte before "a" makes.
    assert decode_bytes(b"No.\x8aa", "iso-2022-jp") == "No.\ufffda"


def test_unlabelled_jis_that_never_returns_to_ascii_is_read_without_loss() -> None:
    # Sloppy encoders end a line in kanji mode: only ESC $ is in the data.
    assert decode_bytes_detailed(KANJI + TESUTO + b"\r\n", None) == DecodeResult(
        "テスト\r\n", "iso-2022-jp-cp932", lossy=False
    )


def test_unlabelled_halfwidth_katakana_in_jis_is_read_without_loss() -> None:
    # Only ESC ( is in the data: ﾌﾚｯﾂ, then back to ASCII.
    assert decode_bytes_detailed(b"\x1b(ILZ/B\x1b(B FE", None) == DecodeResult(
        "ﾌﾚｯﾂ FE", "iso-2022-jp-cp932", lossy=False
    )
