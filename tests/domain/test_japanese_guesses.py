"""Mislabelled and unlabelled Japanese text: which reading wins, whether it is a guess, what is replaced.

``guessed`` is what makes the parser note "text part declared X but decoded
as Y"; ``lossy`` what makes it note an undecodable part. Each test uses bytes
that only one candidate codec reads right, so the order of the candidates is
what is under test.
"""

from __future__ import annotations

import pytest

from mailbot.domain.japanese import DecodeResult, decode_bytes, decode_bytes_detailed

SHIFT_JIS_REQUEST = "申込書を送ります".encode("cp932")
# Valid UTF-8 that is invalid CP932 and EUC-JP (it ends on a lone CP932 lead byte).
UTF8_REQUEST = "申込書です".encode()
# EUC-JP whose trail byte FE (◇ is A1 FE) CP932 reads only as a private-use stray.
EUC_REQUEST = "◇申込書".encode("euc_jp")
# "月額≒5,000円" in Windows EUC (CP51932): ≒ (AD F0) is NEC row 13.
WINDOWS_EUC = "月額".encode("euc_jp") + b"\xad\xf0" + "5,000円".encode("euc_jp")


# --- Shift_JIS labels ---------------------------------------------------------


def test_a_mac_shift_jis_2004_kanji_under_a_shift_jis_label_is_read() -> None:
    # 俱 (87 9F) is JIS X 0213:2004: CP932 has no character there.
    result = decode_bytes_detailed("俱楽部".encode("shift_jis_2004"), "Shift_JIS")
    assert result == DecodeResult("俱楽部", "shift_jis_2004", lossy=False)


def test_euc_jp_text_under_a_shift_jis_label_is_read_as_euc_and_noted() -> None:
    assert decode_bytes_detailed(EUC_REQUEST, "Shift_JIS") == DecodeResult(
        "◇申込書", "euc_jp", lossy=False, guessed=True
    )


# --- EUC-JP labels --------------------------------------------------------------


def test_a_jis_x0213_kanji_under_an_euc_jp_label_is_read() -> None:
    result = decode_bytes_detailed("俱楽部".encode("euc_jis_2004"), "EUC-JP")
    assert result == DecodeResult("俱楽部", "euc_jis_2004", lossy=False)


# "山﨑 髙橋" as Windows writes it in EUC (CP51932): 﨑 (F9 F5) and 髙 (FC E2)
# are NEC-selected IBM extensions, rows 89-92, where JIS X 0213 has other kanji.
WINDOWS_EUC_NAMES = "山".encode("euc_jp") + b"\xf9\xf5 \xfc\xe2" + "橋".encode("euc_jp")


def _euc_of_cp932_pair(lead: int, trail: int) -> bytes:
    # Shift_JIS -> JIS X 0208 row and cell, with the high bit set: how
    # CP51932 stores the same character (written out here, not imported).
    row = ((lead - (0xC1 if lead >= 0xE0 else 0x81)) << 1) + 0x21
    if trail >= 0x9F:
        row, cell = row + 1, trail - 0x7E
    else:
        cell = trail - (0x20 if trail >= 0x80 else 0x1F)
    return bytes((row | 0x80, cell | 0x80))


def test_windows_ibm_extension_kanji_under_an_euc_jp_label_are_the_kanji_windows_wrote() -> None:
    # EUC-JIS-2004 reads these bytes as 粼 and 郄: a wrong name, and no note.
    assert decode_bytes_detailed(WINDOWS_EUC_NAMES, "EUC-JP") == DecodeResult("山﨑 髙橋", "cp51932", lossy=False)


def test_every_nec_selected_ibm_extension_under_an_euc_jp_label_reads_as_cp932_has_it() -> None:
    # CP932 ED40-EEFC (纊 ... ＂), 374 characters, derived from the cp932 codec.
    checked = 0
    for lead in (0xED, 0xEE):
        for trail in [*range(0x40, 0x7F), *range(0x80, 0xFD)]:
            try:
                expected = bytes((lead, trail)).decode("cp932")
            except UnicodeDecodeError:
                continue
            euc = _euc_of_cp932_pair(lead, trail)
            assert decode_bytes(euc, "euc-jp") == expected, (hex(lead), hex(trail), euc.hex())
            checked += 1
    assert checked == 374


def test_jis_x0213_text_a_windows_table_cannot_read_keeps_its_kanji_in_rows_89_to_92() -> None:
    # 硃 (F9 A1) is where Windows has 纊, but 俱 (AE A1) is JIS X 0213 only,
    # so the text is not Windows EUC and 硃 stays 硃.
    assert decode_bytes_detailed("硃俱".encode("euc_jis_2004"), "EUC-JP") == DecodeResult(
        "硃俱", "euc_jis_2004", lossy=False
    )


def test_windows_euc_with_halfwidth_katakana_and_nec_row13_is_read() -> None:
    # ﾊﾟｿｺﾝ｡ spans the whole half-width range (8E A1 ... 8E DF); ◇ (A1 FE)
    # the first lead and the last trail byte.
    data = "ﾊﾟｿｺﾝ｡ ◇".encode("euc_jp") + WINDOWS_EUC
    assert decode_bytes_detailed(data, "euc-jp") == DecodeResult("ﾊﾟｿｺﾝ｡ ◇月額≒5,000円", "cp51932", lossy=False)


def test_shift_jis_text_under_an_euc_jp_label_is_read_and_noted() -> None:
    assert decode_bytes_detailed(SHIFT_JIS_REQUEST, "euc-jp") == DecodeResult(
        "申込書を送ります", "cp932", lossy=False, guessed=True
    )


def test_utf8_text_under_an_euc_jp_label_is_read_and_noted() -> None:
    assert decode_bytes_detailed(UTF8_REQUEST, "euc-jp") == DecodeResult(
        "申込書です", "utf-8", lossy=False, guessed=True
    )


def test_broken_windows_euc_keeps_every_character_around_the_bad_bytes() -> None:
    # A stray 0x80, a lead byte cut off at the end, and SS2 (8E) before a
    # byte that is no half-width katakana: each bad byte becomes one U+FFFD.
    data = WINDOWS_EUC + b"\x80 " + b"\x8e\xe0 " + b"\xb7\xa0 " + b"\xb7"
    result = decode_bytes_detailed(data, "euc-jp")
    assert result == DecodeResult(
        "月額≒5,000円\ufffd \ufffd\ufffd \ufffd\ufffd \ufffd", "euc-jp", lossy=True, guessed=True
    )


def test_windows_euc_with_halfwidth_katakana_after_ascii_and_at_the_end_is_read() -> None:
    # ﾌﾚｯﾂ follows a space and ends the text; ◆ (A2 A1) has the first trail byte.
    data = WINDOWS_EUC + "◆ ﾌﾚｯﾂ".encode("euc_jp")
    assert decode_bytes_detailed(data, "euc-jp") == DecodeResult("月額≒5,000円◆ ﾌﾚｯﾂ", "cp51932", lossy=False)


def test_a_windows_euc_pair_no_windows_table_has_is_replaced_and_the_text_read_on() -> None:
    # FE A1 (JIS row 94) has no CP932 character: the whole pair is one U+FFFD.
    # B7 FF is a lead byte before a byte no EUC pair has: two bad bytes, two U+FFFD.
    assert decode_bytes(WINDOWS_EUC + b"\xfe\xa1" + "円".encode("euc_jp"), "euc-jp") == "月額≒5,000円\ufffd円"
    assert decode_bytes(WINDOWS_EUC + b"\xb7\xff", "euc-jp") == "月額≒5,000円\ufffd\ufffd"
    # FF is no lead byte either: the ideographic space after it is kept.
    assert decode_bytes(WINDOWS_EUC + b"\xff\xa1\xa1", "euc-jp") == "月額≒5,000円\ufffd\u3000"


def test_an_unmapped_windows_euc_pair_does_not_leak_a_letter_into_the_text() -> None:
    # A9 A1 (JIS row 9, empty in CP932) goes through Shift_JIS 85 40; the
    # CP932 codec's replace mode would give U+FFFD and then "@" for the 40.
    assert decode_bytes(WINDOWS_EUC + b"\xa9\xa1" + "円".encode("euc_jp"), "euc-jp") == "月額≒5,000円\ufffd円"


def test_windows_euc_cut_off_after_ss2_keeps_the_text_before_it() -> None:
    assert decode_bytes(WINDOWS_EUC + b"\x8e", "euc-jp") == "月額≒5,000円\ufffd"


# --- Shift_JIS text no reading gets right -------------------------------------

# 87 77 is a well-formed Shift_JIS pair that neither CP932 nor Shift_JIS-2004
# maps (a gap in NEC row 13); its trail byte 77 alone would read as "w".
UNMAPPED_SJIS_PAIR = b"\x87\x77"


@pytest.mark.parametrize(("label", "codec"), [("Shift_JIS", "cp932"), ("Shift_JIS-2004", "shift_jis_2004")])
def test_an_unmapped_shift_jis_pair_is_one_replacement_character_not_a_leaked_letter(label: str, codec: str) -> None:
    data = "申込書".encode("cp932") + UNMAPPED_SJIS_PAIR + b"abc"
    assert decode_bytes_detailed(data, label) == DecodeResult("申込書\ufffdabc", codec, lossy=True, guessed=True)


def test_a_pair_cp932_lacks_beside_broken_bytes_is_replaced_whole() -> None:
    # EF 40 (JIS row 95) is no CP932 character; the lead byte cut off at the
    # end makes every reading fail, so CP932 replaces. Its trail byte 40 must
    # not come out as "@". 81 20 is a lead byte before a space: only the lead goes.
    data = b"No." + b"\xef\x40" + b"\x81 FE" + b"\x81"
    assert decode_bytes_detailed(data, "Shift_JIS") == DecodeResult(
        "No.\ufffd\ufffd FE\ufffd", "cp932", lossy=True, guessed=True
    )


@pytest.mark.parametrize("stray", [b"\x80", b"\xa0", b"\xfd", b"\xfe", b"\xff"])
def test_a_stray_byte_in_replaced_shift_jis_text_shows_as_damaged_not_as_a_private_use_character(
    stray: bytes,
) -> None:
    # cp932 maps these single bytes to U+0080 and U+F8F0-F8F3, which a clerk sees as nothing
    # or a box; a byte no Shift_JIS text holds is damage, shown as U+FFFD like the rest.
    data = "申込書".encode("cp932") + stray + "です".encode("cp932") + b"\x81"
    assert decode_bytes_detailed(data, "Shift_JIS") == DecodeResult(
        "申込書\ufffdです\ufffd", "cp932", lossy=True, guessed=True
    )


# --- ISO-2022-JP labels ---------------------------------------------------------


def test_utf8_text_under_an_iso_2022_jp_label_is_read_and_noted() -> None:
    result = decode_bytes_detailed(UTF8_REQUEST, "iso-2022-jp")
    assert result == DecodeResult("申込書です", "utf-8", lossy=False, guessed=True)


def test_jis_x0213_escapes_under_an_iso_2022_jp_label_are_read_by_the_stdlib() -> None:
    # 森鷗外 with 鷗 as ESC $ ( O (JIS X 0213:2000), 俱楽部 with 俱 as ESC $ ( Q (2004).
    ogai = b"\x1b$B?9\x1b$(O~e\x1b$B30\x1b(B"
    kurabu = b"\x1b$(Q.!\x1b$B3ZIt\x1b(B"
    assert decode_bytes_detailed(ogai, "ISO-2022-JP") == DecodeResult("森鷗外", "iso2022_jp_3", lossy=False)
    assert decode_bytes_detailed(kurabu, "ISO-2022-JP") == DecodeResult("俱楽部", "iso2022_jp_2004", lossy=False)


def test_halfwidth_katakana_beside_jis_x0212_under_an_iso_2022_jp_label_is_read() -> None:
    # ﾌﾚｯﾂ (ESC ( I) and 丂 (JIS X 0212, ESC $ ( D): only iso2022_jp_ext has both.
    data = b"\x1b(ILZ/B\x1b$(D0!\x1b(B"
    assert decode_bytes_detailed(data, "ISO-2022-JP") == DecodeResult("ﾌﾚｯﾂ丂", "iso2022_jp_ext", lossy=False)


def test_a_nec_row13_subject_with_a_stray_byte_keeps_its_windows_characters() -> None:
    # ㈱渋谷 then a stray 8-bit byte: replaced by the CP932 route, so ㈱ survives.
    data = b"\x1b$B-j=BC+\x1b(B \x8a"
    result = decode_bytes_detailed(data, "ISO-2022-JP")
    assert result == DecodeResult("㈱渋谷 \ufffd", "iso-2022-jp", lossy=True, guessed=True)


# --- UTF-8 labels and no label ------------------------------------------------


def test_iso_2022_jp_text_under_a_utf8_label_is_read() -> None:
    result = decode_bytes_detailed(b"\x1b$B%F%9%H\x1b(B", "utf-8")
    assert result == DecodeResult("テスト", "iso-2022-jp-cp932", lossy=False)


def test_cp932_bytes_under_a_utf8_label_are_read_and_noted() -> None:
    assert decode_bytes_detailed(SHIFT_JIS_REQUEST, "utf-8") == DecodeResult(
        "申込書を送ります", "cp932", lossy=False, guessed=True
    )


def test_a_single_shift_jis_kanji_under_a_utf8_label_is_read_and_noted() -> None:
    # Only a JIS label makes a lone kanji suspect (a stray byte would pair up the same way).
    assert decode_bytes_detailed("済".encode("cp932"), "utf-8") == DecodeResult(
        "済", "cp932", lossy=False, guessed=True
    )


def test_euc_jp_text_under_a_utf8_label_is_read_and_noted() -> None:
    assert decode_bytes_detailed(EUC_REQUEST, "utf-8") == DecodeResult("◇申込書", "euc_jp", lossy=False, guessed=True)


def test_unlabelled_euc_jp_is_read_as_euc_not_as_cp932_strays() -> None:
    assert decode_bytes_detailed(EUC_REQUEST, None) == DecodeResult("◇申込書", "euc_jp", lossy=False)


def test_unlabelled_euc_jp_katakana_is_read_as_euc_not_as_halfwidth_katakana() -> None:
    # テスト is A5 C6 A5 B9 A5 C8: every byte is also a CP932 half-width
    # katakana, so CP932 "reads" it as ･ﾆ･ｹ･ﾈ. Only the EUC reading has kana.
    assert decode_bytes_detailed("テスト".encode("euc_jp"), None) == DecodeResult("テスト", "euc_jp", lossy=False)


def test_an_unlabelled_euc_jp_sentence_that_cp932_also_reads_is_read_as_euc() -> None:
    # 見積をお願いします。: EUC kanji, hiragana and 。, all CP932 half-width bytes.
    text = "見積をお願いします。"
    assert decode_bytes_detailed(text.encode("euc_jp"), None) == DecodeResult(text, "euc_jp", lossy=False)


def test_unlabelled_kanji_only_euc_jp_that_also_reads_as_halfwidth_katakana_is_a_noted_guess() -> None:
    # 渋谷支店 (BD C2 C3 AB BB D9 C5 B9) without kana gives neither reading an
    # edge: CP932's is kept, as before, but the parser must say it guessed.
    assert decode_bytes_detailed("渋谷支店".encode("euc_jp"), None) == DecodeResult(
        "ｽﾂﾃｫｻﾙﾅｹ", "cp932", lossy=False, guessed=True
    )


def test_unlabelled_halfwidth_katakana_that_is_also_valid_euc_is_read_as_typed_but_noted() -> None:
    # ｶﾀｶﾅ (B6 C0 B6 C5) is also two EUC kanji: CP932 stays first, noted.
    assert decode_bytes_detailed("ｶﾀｶﾅ".encode("cp932"), None) == DecodeResult(
        "ｶﾀｶﾅ", "cp932", lossy=False, guessed=True
    )


def test_unlabelled_shift_jis_is_read_as_cp932() -> None:
    assert decode_bytes_detailed(SHIFT_JIS_REQUEST, None) == DecodeResult("申込書を送ります", "cp932", lossy=False)


def test_unlabelled_jis_x0212_is_read_by_the_stdlib() -> None:
    assert decode_bytes_detailed(b"\x1b$(D0!\x1b(B", None) == DecodeResult("丂", "iso2022_jp_2", lossy=False)


def test_unlabelled_jis_x0213_is_read_by_the_stdlib() -> None:
    ogai = b"\x1b$B?9\x1b$(O~e\x1b$B30\x1b(B"
    assert decode_bytes_detailed(ogai, None) == DecodeResult("森鷗外", "iso2022_jp_3", lossy=False)


def test_unlabelled_euc_jis_2004_is_read_not_replaced() -> None:
    # 俱 (AE A1) is JIS X 0213 row 14: no EUC-JP, Windows EUC or CP932 reading.
    assert decode_bytes_detailed("俱楽部".encode("euc_jis_2004"), None) == DecodeResult(
        "俱楽部", "euc_jis_2004", lossy=False
    )


def test_unlabelled_euc_jis_2004_with_kana_is_not_read_as_cp932_user_defined_characters() -> None:
    # 俱楽部です: CP932 reads F4 A4 as a user-defined (private-use) character
    # and the rest as half-width katakana; only EUC-JIS-2004 gives kana.
    assert decode_bytes_detailed("俱楽部です".encode("euc_jis_2004"), None) == DecodeResult(
        "俱楽部です", "euc_jis_2004", lossy=False
    )


def test_unlabelled_shift_jis_2004_is_read_not_replaced() -> None:
    # 俱 (87 9F) has no CP932 character.
    assert decode_bytes_detailed("俱楽部です".encode("shift_jis_2004"), None) == DecodeResult(
        "俱楽部です", "shift_jis_2004", lossy=False
    )


def test_unlabelled_iso_2022_jp_2004_is_read_not_replaced() -> None:
    # 俱 as ESC $ ( Q (JIS X 0213:2004 plane 1), which iso2022_jp_3 does not know.
    kurabu = b"\x1b$(Q.!\x1b$B3ZIt\x1b(B"
    assert decode_bytes_detailed(kurabu, None) == DecodeResult("俱楽部", "iso2022_jp_2004", lossy=False)


def test_unlabelled_windows_euc_ibm_extensions_are_not_read_as_jis_x0213() -> None:
    # Sniffing tries EUC-JIS-2004 now: the Windows reading must still come first.
    data = WINDOWS_EUC_NAMES + "さん".encode("euc_jp")
    assert decode_bytes_detailed(data, None) == DecodeResult("山﨑 髙橋さん", "cp51932", lossy=False)


def test_unlabelled_hopeless_bytes_are_replaced_as_utf8() -> None:
    result = decode_bytes_detailed(b"FE \xff\xfe\xfd\x80", None)
    assert result == DecodeResult("FE \ufffd\ufffd\ufffd\ufffd", "utf-8", lossy=True, guessed=True)


def test_a_label_outside_japan_replaces_within_its_own_codec() -> None:
    # Big5 declared (中文 is A4 A4 A4 E5), a stray FF no guess reads either.
    result = decode_bytes_detailed("中文".encode("big5") + b" \xff", "big5")
    assert result == DecodeResult("中文 \ufffd", "big5", lossy=True, guessed=True)


def test_utf8_under_a_utf8_label_is_read_as_declared() -> None:
    assert decode_bytes_detailed(UTF8_REQUEST, "UTF-8") == DecodeResult("申込書です", "utf-8", lossy=False)


def test_utf8_under_a_shift_jis_label_is_read_and_noted_as_utf8() -> None:
    # The note reads "declared Shift_JIS but decoded as utf-8".
    assert decode_bytes_detailed(UTF8_REQUEST, "Shift_JIS") == DecodeResult(
        "申込書です", "utf-8", lossy=False, guessed=True
    )


def test_plain_euc_jp_under_an_euc_jp_label_is_read_by_the_euc_jp_codec() -> None:
    assert decode_bytes_detailed("渋谷支店".encode("euc_jp"), "EUC-JP") == DecodeResult(
        "渋谷支店", "euc_jp", lossy=False
    )


def test_jis_x0212_under_a_utf8_label_is_read_by_the_stdlib() -> None:
    assert decode_bytes_detailed(b"\x1b$(D0!\x1b(B", "utf-8") == DecodeResult("丂", "iso2022_jp_2", lossy=False)


def test_a_utf8_sig_label_drops_the_byte_order_mark() -> None:
    assert decode_bytes_detailed("\ufeff渋谷".encode(), "utf-8-sig") == DecodeResult("渋谷", "utf-8-sig", lossy=False)


def test_utf8_under_a_label_outside_japan_is_read_and_noted() -> None:
    # Big5 declared: the first guess after it, UTF-8, is already a guess.
    assert decode_bytes_detailed(UTF8_REQUEST, "big5") == DecodeResult("申込書です", "utf-8", lossy=False, guessed=True)
