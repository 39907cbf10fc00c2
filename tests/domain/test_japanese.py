"""Decoding helpers: Japanese charsets, RFC 2047 words, comparison form.

Byte literals are written out by hand (JIS codes from the JIS X 0208 / NEC
row 13 tables) so these tests do not depend on the mail factory.
"""

from __future__ import annotations

from email.header import Header

import pytest

from mailbot.domain import japanese
from mailbot.domain.japanese import (
    canonical_charset,
    decode_bytes,
    decode_bytes_detailed,
    decode_header_value,
    decode_header_value_detailed,
    decode_iso2022jp_cp932,
    normalize,
)

ESC_KANJI = b"\x1b$B"
ESC_ASCII = b"\x1b(B"
# JIS codes: ㈱ = 2D 6A (NEC row 13), ① = 2D 21, ～ = 21 41, ― = 21 3D,
# テスト = 25 46 25 39 25 48, 髙 = 7C 62 (NEC-selected IBM extension).
KABU = b"-j"
MARU1 = b"-!"
TILDE = b"!A"
BAR = b"!="
TESUTO = b"%F%9%H"


def test_module_exports_an_explicit_all() -> None:
    assert "decode_header_value" in japanese.__all__
    assert "normalize" in japanese.__all__
    assert all(hasattr(japanese, name) for name in japanese.__all__)


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("ISO-2022-JP", "iso-2022-jp"),
        ("iso-2022-jp-2", "iso-2022-jp"),
        ('"iso-2022-jp"', "iso-2022-jp"),
        ("Shift_JIS", "cp932"),
        ("x-sjis", "cp932"),
        ("windows-31j", "cp932"),
        ("sjis", "cp932"),
        ("EUC-JP", "euc-jp"),
        ("utf-8", "utf-8"),
        ("us-ascii", None),
        ("x-unknown-charset", None),
        ("base64", None),
        (None, None),
    ],
)
def test_charset_labels_map_to_their_practical_codec(label: str | None, expected: str | None) -> None:
    assert canonical_charset(label) == expected


def test_iso2022jp_with_nec_row13_characters_decodes_as_cp932() -> None:
    data = ESC_KANJI + KABU + MARU1 + TILDE + BAR + TESUTO + ESC_ASCII
    assert decode_bytes(data, "ISO-2022-JP") == "㈱①～―テスト"


def test_kabushiki_kaisha_system_decodes_beside_a_nec_row13_character() -> None:
    # ム is JIS 25 60: on an odd row, trail 0x60 + 0x1F = 0x7F must skip to 0x80
    # in Shift_JIS (0x7F is no trail byte). "㈱システム" forces the CP932 route.
    data = ESC_KANJI + KABU + b"%7%9%F%`" + ESC_ASCII
    assert decode_bytes(data, "ISO-2022-JP") == "㈱システム"


@pytest.mark.parametrize("text", ["ム", "園", "項", "準", "操"])
def test_every_jis_pair_with_trail_0x60_on_an_odd_row_decodes_like_the_stdlib(text: str) -> None:
    jis = text.encode("iso2022_jp")
    assert decode_iso2022jp_cp932(jis) == text
    # The same character after ① (which only the CP932 route knows) still decodes.
    assert decode_bytes(ESC_KANJI + MARU1 + jis[3:], "ISO-2022-JP") == "①" + text


WINDOWS_FORMS = {"〜": "～", "‖": "∥", "−": "－", "¢": "￠", "£": "￡", "¬": "￢"}


def test_the_hand_rolled_route_agrees_with_cp932_on_every_jis_x0208_pair() -> None:
    # Every JIS X 0208 pair that CP932 has, through the JIS -> Shift_JIS arithmetic.
    for j1 in range(0x21, 0x7F):
        for j2 in range(0x21, 0x7F):
            try:
                expected = bytes((0x1B, 0x24, 0x42, j1, j2)).decode("iso2022_jp")
            except UnicodeDecodeError:
                continue
            got = decode_iso2022jp_cp932(ESC_KANJI + bytes((j1, j2)))
            # CP932 maps exactly six JIS symbols to the forms Windows users type.
            assert got == WINDOWS_FORMS.get(expected, expected), (hex(j1), hex(j2))


def test_an_iso2022jp_wave_dash_decodes_as_windows_fullwidth_tilde() -> None:
    # Outlook writes "10～20" (U+FF5E) in ISO-2022-JP as JIS 21 41; the stdlib
    # codec would give U+301C. The CP932 route must come before it.
    data = b"10" + ESC_KANJI + TILDE + ESC_ASCII + b"20"
    assert decode_bytes(data, "ISO-2022-JP") == "10～20"
    assert decode_bytes(data, None) == "10～20"


def test_a_shift_jis_wave_dash_decodes_as_windows_fullwidth_tilde() -> None:
    # 0x8160 is ～ in CP932 but 〜 in Shift_JIS-2004: the label means CP932.
    assert decode_bytes(b"10\x81\x6020", "Shift_JIS") == "10～20"


def test_stdlib_iso2022jp_codec_really_refuses_nec_row13() -> None:
    # The reason the CP932 route exists; if Python ever learns this, fine.
    with pytest.raises(UnicodeDecodeError):
        (ESC_KANJI + KABU + ESC_ASCII).decode("iso2022_jp")


def test_iso2022jp_ibm_extension_kanji_decodes() -> None:
    assert decode_bytes(ESC_KANJI + b"|b" + ESC_ASCII, "iso-2022-jp") == "髙"


def test_iso2022jp_halfwidth_katakana_escape_decodes() -> None:
    # ESC ( I selects JIS X 0201 katakana: 0x4C 0x5A 0x2F 0x42 = ﾌﾚｯﾂ
    assert decode_bytes(b"\x1b(ILZ/B\x1b(B", "iso-2022-jp") == "ﾌﾚｯﾂ"


def test_iso2022jp_so_si_katakana_decodes() -> None:
    assert decode_bytes(b"\x0eLZ/B\x0f!", "iso-2022-jp") == "ﾌﾚｯﾂ!"


def test_iso2022jp_missing_return_to_ascii_at_line_end_is_tolerated() -> None:
    data = ESC_KANJI + TESUTO + b"\r\nabc"
    assert decode_bytes(data, "iso-2022-jp") == "テスト\r\nabc"


def test_iso2022jp_with_jis_x0212_falls_back_to_stdlib_codec() -> None:
    # ESC $ ( D designates JIS X 0212, which only iso2022_jp_2 knows: 0x30 0x21 = 丂
    data = b"\x1b$(D0!\x1b(B"
    result = decode_bytes_detailed(data, "iso-2022-jp")
    assert result.text == "丂"
    assert result.codec == "iso2022_jp_2"
    assert not result.lossy


def test_hand_rolled_decoder_strict_mode_rejects_eight_bit_bytes() -> None:
    with pytest.raises(UnicodeDecodeError):
        decode_iso2022jp_cp932(b"abc\xff")
    assert decode_iso2022jp_cp932(b"abc\xff", errors="replace") == "abc\ufffd"


def test_shift_jis_label_decodes_cp932_extensions_and_halfwidth_katakana() -> None:
    data = b"\xcc\xda\xaf\xc2\xb4\xbd\xb6 \x8fa\x92J\x8ex\x93X \x87@"
    assert decode_bytes(data, "Shift_JIS") == "ﾌﾚｯﾂｴｽｶ 渋谷支店 ①"


def test_euc_jp_decodes_and_nec_row13_falls_back_to_cp51932() -> None:
    assert decode_bytes("渋谷支店".encode("euc_jp"), "euc-jp") == "渋谷支店"
    # ㈱ in Windows EUC is JIS 2D 6A with the high bit set.
    assert decode_bytes(b"\xad\xea", "euc-jp") == "㈱"


def test_mislabelled_utf8_is_recovered_and_reported_as_a_guess() -> None:
    # Valid UTF-8 that is invalid CP932 (ends on a lone lead byte).
    result = decode_bytes_detailed("申込書です".encode(), "shift_jis")
    assert result.text == "申込書です"
    assert result.guessed
    assert not result.lossy


def test_cp932_bytes_labelled_utf8_are_recovered() -> None:
    result = decode_bytes_detailed("テスト".encode("cp932"), "utf-8")
    assert result.text == "テスト"
    assert result.codec == "cp932"


def test_unknown_charset_label_is_sniffed() -> None:
    assert decode_bytes("渋谷".encode(), "x-no-such-charset") == "渋谷"
    assert decode_bytes(ESC_KANJI + TESUTO + ESC_ASCII, None) == "テスト"


def test_hopeless_bytes_decode_with_replacement_and_say_so() -> None:
    result = decode_bytes_detailed(b"\xff\xfe\xfd\x80", "utf-8")
    assert "\ufffd" in result.text
    assert result.lossy


def test_pure_ascii_under_a_wrong_label_is_not_reported_as_a_guess() -> None:
    assert not decode_bytes_detailed(b"hello", "us-ascii").guessed


# --- headers ---------------------------------------------------------------


def test_outlook_b_word_with_cp932_extension_decodes() -> None:
    assert decode_header_value("=?ISO-2022-JP?B?GyRCLWo9QkMrGyhC?=") == "㈱渋谷"


def test_encoded_word_glued_to_plain_text_decodes() -> None:
    # Outlook's filename="=?ISO-2022-JP?B?...?=" often has the extension outside.
    assert decode_header_value("=?ISO-2022-JP?B?GyRCPz05fj1xLWobKEI=?=.pdf") == "申込書㈱.pdf"
    assert decode_header_value("=?ISO-2022-JP?B?GyRCPz05fj1xLWobKEIucGRm?=") == "申込書㈱.pdf"


def test_words_split_across_folded_lines_join_without_the_fold_space() -> None:
    value = "=?ISO-2022-JP?B?GyRCJVUlbCVDJUQlKCU5JSsbKEI=?=\r\n =?ISO-2022-JP?B?GyRCPUJDKxsoQg==?="
    assert decode_header_value(value) == "フレッツエスカ渋谷"


def test_space_between_word_and_text_is_kept() -> None:
    value = "=?ISO-2022-JP?B?GyRCJVUlbCVDJUQlKCU5JSsbKEI=?= Re: =?UTF-8?B?5riL6LC3?="
    assert decode_header_value(value) == "フレッツエスカ Re: 渋谷"


def test_utf8_character_split_across_two_words_is_rejoined() -> None:
    # "あ" = E3 81 82, broken between two Q-words by a careless mailer.
    assert decode_header_value("=?UTF-8?Q?=E3=81?= =?UTF-8?Q?=82?=") == "あ"


def test_q_encoded_iso2022jp_word_decodes() -> None:
    value = "=?iso-2022-jp?q?=1B=24=42=25=46=25=39=25=48=1B=28=42?="
    assert decode_header_value(value) == "テスト"


def test_word_broken_inside_by_a_fold_still_decodes() -> None:
    assert decode_header_value("=?UTF-8?B?5riL\r\n 6LC3?=") == "渋谷"


def test_word_with_rfc2231_language_suffix_decodes() -> None:
    assert decode_header_value("=?UTF-8*ja?B?5riL6LC3?=") == "渋谷"


def test_word_with_bad_base64_padding_decodes() -> None:
    assert decode_header_value("=?UTF-8?B?5riL6LC3?=") == decode_header_value("=?UTF-8?B?5riL6LC3==?=")
    assert decode_header_value("=?UTF-8?B?44OG44K544OI?=") == "テスト"
    assert decode_header_value("=?UTF-8?B?44OG44K544OI=?=") == "テスト"


def test_raw_eight_bit_shift_jis_header_decodes() -> None:
    raw = "申込書 ﾃｽﾄ".encode("cp932").decode("ascii", "surrogateescape")
    assert decode_header_value(raw) == "申込書 ﾃｽﾄ"


def test_raw_unencoded_iso2022jp_in_header_decodes() -> None:
    raw = (ESC_KANJI + TESUTO + ESC_ASCII + b" ok").decode("ascii")
    assert decode_header_value(raw) == "テスト ok"


def test_header_object_from_compat32_decodes() -> None:
    header = Header("申込書".encode().decode("ascii", "surrogateescape"), charset="unknown-8bit")
    assert decode_header_value(header) == "申込書"


def test_undecodable_word_is_reported_lossy_but_never_left_encoded() -> None:
    text, lossy = decode_header_value_detailed("=?UTF-8?B?/w==?=")
    assert text == "\ufffd"
    assert lossy
    assert "=?" not in text


def test_unknown_charset_in_word_is_sniffed_not_left_encoded() -> None:
    assert decode_header_value("=?x-bogus?B?5riL6LC3?=") == "渋谷"


def test_plain_text_that_merely_contains_equals_question_is_untouched() -> None:
    assert decode_header_value("a=?b c?=") == "a=?b c?="


def test_none_decodes_to_empty_string() -> None:
    assert decode_header_value(None) == ""


# --- normalize ---------------------------------------------------------------


def test_normalize_widens_halfwidth_katakana() -> None:
    assert normalize("ﾌﾚｯﾂｴｽｶ") == "フレッツエスカ"


def test_normalize_turns_fullwidth_digits_letters_and_spaces_into_ascii() -> None:
    assert normalize("フレッツエスカ　渋谷支店　１２３ＡＢ") == "フレッツエスカ 渋谷支店 123AB"


def test_normalize_collapses_and_trims_whitespace() -> None:
    assert normalize("  フレッツエスカ \t\r\n  渋谷支店  ") == "フレッツエスカ 渋谷支店"


def test_normalize_folds_jis_and_cp932_variants_of_the_same_code() -> None:
    assert normalize("10〜20") == normalize("10～20") == "10~20"
    assert normalize("A—B") == normalize("A―B")


def test_normalize_expands_enclosed_characters() -> None:
    assert normalize("㈱①") == "(株)1"


def test_non_ascii_junk_inside_a_q_encoded_word_does_not_raise() -> None:
    # Found by the fuzz test: a byte that compat32 had already turned into U+FFFD.
    assert decode_header_value("=?utf-8?Q?\ufffdate=3E2017?=").endswith("ate>2017")


# --- issue 9: findings scored against the peer corpus ---------------------------

# 題名 = 42 6A 4C 3E; 76 5E is an au emoji in JIS row 0x76, which no codec maps.
AU_SUBJECT = ESC_KANJI + b"BjL>v^" + ESC_ASCII


@pytest.mark.parametrize("charset", ["iso-2022-jp", None, "utf-8"])
def test_seven_bit_jis_with_a_pair_no_codec_knows_is_replaced_not_left_as_escapes(charset: str | None) -> None:
    result = decode_bytes_detailed(AU_SUBJECT, charset)
    assert result.text == "題名\ufffd"
    assert result.lossy


def test_an_encoded_word_holding_an_au_emoji_decodes_around_it() -> None:
    assert decode_header_value("=?ISO-2022-JP?B?GyRCQmpMPnZeGyhC?=") == "題名\ufffd"


def test_raw_jis_in_a_header_with_an_unknown_pair_does_not_keep_its_escapes() -> None:
    assert decode_header_value(AU_SUBJECT.decode("ascii")) == "題名\ufffd"


@pytest.mark.parametrize("label", ["gb2312", "GB2312", "gbk", "euc-cn", "x-gbk", "gb18030"])
def test_gb2312_labels_decode_as_gb18030(label: str) -> None:
    assert canonical_charset(label) == "gb18030"


def test_gbk_bytes_under_a_gb2312_label_decode_japanese_exchange_bounce_text() -> None:
    # グループ: ー is A9 60 (GBK only); 失敗: 敗 is 94 A1 (GBK only).
    data = bytes.fromhex("a5b0a5eba960a5d7") + bytes.fromhex("caa794a1")
    result = decode_bytes_detailed(data, "gb2312")
    assert result.text == "グループ失敗"
    assert not result.lossy


def test_a_stray_eight_bit_byte_under_an_iso_2022_jp_label_becomes_ufffd_not_a_kanji() -> None:
    # 0x8A followed by "a" is a valid Shift_JIS pair (蛎): an invented kanji.
    result = decode_bytes_detailed(b"01 Dij\x8aat.mp3", "iso-2022-jp")
    assert result.text == "01 Dij\ufffdat.mp3"
    assert result.lossy


def test_real_shift_jis_text_under_an_iso_2022_jp_label_is_still_read_as_cp932() -> None:
    assert decode_bytes("申込書です".encode("cp932"), "iso-2022-jp") == "申込書です"
