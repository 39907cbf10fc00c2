"""Header values as Japanese mailers fold, split and mislabel them.

The encoded words are written out by hand (base64 of the JIS or UTF-8
bytes) so each test shows what was on the wire.
"""

from __future__ import annotations

from email.header import Header

import pytest

from mailbot.domain.japanese import decode_header_value, decode_header_value_detailed

# 渋谷 in UTF-8 (B: 5riL6LC3) and テスト in ISO-2022-JP (B: GyRCJUYlOSVIGyhC).
SHIBUYA_B = "=?UTF-8?B?5riL6LC3?="
TESUTO_JIS_B = "=?ISO-2022-JP?B?GyRCJUYlOSVIGyhC?="


# --- Header objects (the public API; email.header builds them) ---------------


def test_a_header_object_in_a_japanese_charset_decodes_with_that_charset() -> None:
    # EUC-JP テスト would read as half-width junk (･ﾆ･ｹ･ﾈ) if sniffed as CP932.
    assert decode_header_value_detailed(Header("テスト", charset="euc-jp")) == ("テスト", False)


def test_a_header_object_of_several_chunks_joins_them_in_order() -> None:
    header = Header("FE ", charset="us-ascii")
    header.append("渋谷支店", charset="utf-8")
    header.append(" 申込書", charset="iso-2022-jp")
    assert decode_header_value_detailed(header) == ("FE 渋谷支店 申込書", False)


def test_an_ascii_chunk_of_a_header_object_has_its_encoded_words_decoded() -> None:
    header = Header("Re: " + SHIBUYA_B, charset="us-ascii")
    assert decode_header_value_detailed(header) == ("Re: 渋谷", False)


def test_an_empty_header_object_is_empty_text_and_not_lossy() -> None:
    assert decode_header_value_detailed(Header()) == ("", False)


def test_one_undecodable_chunk_makes_the_whole_header_object_lossy() -> None:
    header = Header(
        "\udcff".encode("utf-8", "surrogateescape").decode("ascii", "surrogateescape"), charset="unknown-8bit"
    )
    header.append(" 渋谷", charset="utf-8")
    assert decode_header_value_detailed(header) == ("\ufffd 渋谷", True)


# --- encoded words ------------------------------------------------------------


def test_adjacent_words_in_different_charsets_are_decoded_each_on_its_own() -> None:
    # Joining their bytes would feed UTF-8 to the JIS decoder.
    assert decode_header_value(SHIBUYA_B + " " + TESUTO_JIS_B) == "渋谷テスト"


def test_adjacent_words_whose_charsets_differ_only_in_case_are_joined() -> None:
    # "あ" = E3 81 82 split across two words by a careless mailer.
    assert decode_header_value("=?utf-8?Q?=E3=81?= =?UTF-8?Q?=82?=") == "あ"


def test_a_language_suffix_does_not_keep_adjacent_words_apart() -> None:
    assert decode_header_value("=?UTF-8*ja?Q?=E3=81?= =?UTF-8?Q?=82?=") == "あ"


def test_text_between_words_is_kept_and_ends_the_run_of_words() -> None:
    assert decode_header_value("=?UTF-8?Q?=E3=81=82?= x =?UTF-8?Q?=E3=81=84?=") == "あ x い"


def test_plain_text_before_after_and_between_words_is_kept() -> None:
    value = "【至急】" + SHIBUYA_B + "支店 " + TESUTO_JIS_B + " [FE-2026-00001]"
    assert decode_header_value(value) == "【至急】渋谷支店 テスト [FE-2026-00001]"


def test_an_undecodable_word_beside_a_good_one_makes_the_value_lossy() -> None:
    assert decode_header_value_detailed("=?UTF-8?B?/w==?= " + TESUTO_JIS_B) == ("\ufffdテスト", True)


def test_a_value_of_good_words_is_not_lossy() -> None:
    assert decode_header_value_detailed(SHIBUYA_B + " " + TESUTO_JIS_B) == ("渋谷テスト", False)


def test_a_lossy_raw_header_stays_lossy_after_its_words_decode() -> None:
    raw = b"\xff ".decode("ascii", "surrogateescape") + SHIBUYA_B
    assert decode_header_value_detailed(raw) == ("\ufffd 渋谷", True)


def test_a_bare_line_break_left_in_a_value_becomes_a_space() -> None:
    assert decode_header_value("FE\r\nRe:\nFwd:\rx") == "FE Re: Fwd: x"


@pytest.mark.parametrize("fold", ["\r\n ", "\n ", "\r\n\t", "\n\t"])
def test_a_fold_inside_a_word_is_removed_however_it_is_written(fold: str) -> None:
    assert decode_header_value("=?UTF-8?B?5riL" + fold + "6LC3?=") == "渋谷"


def test_an_euc_jp_word_is_decoded_with_its_charset() -> None:
    # Sniffed, EUC-JP テスト (A5 C6 A5 B9 A5 C8) would read as CP932 half-width junk.
    assert decode_header_value("=?EUC-JP?B?pcaluaXI?=") == "テスト"


def test_a_lower_case_b_marks_a_base64_word_too() -> None:
    assert decode_header_value("=?utf-8?b?5riL6LC3?=") == "渋谷"


def test_a_plain_ascii_value_is_not_lossy() -> None:
    assert decode_header_value_detailed("Re: [FE-2026-00001]") == ("Re: [FE-2026-00001]", False)
    assert decode_header_value_detailed(None) == ("", False)


# --- Q encoding -----------------------------------------------------------------


def test_q_underscores_are_spaces() -> None:
    assert decode_header_value("=?UTF-8?Q?FE_=E6=B8=8B=E8=B0=B7_2026?=") == "FE 渋谷 2026"


def test_q_hex_escapes_in_either_case_decode() -> None:
    assert decode_header_value("=?UTF-8?Q?=e6=b8=8b=E8=B0=B7?=") == "渋谷"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("=?UTF-8?Q?100=25_OK?=", "100% OK"),
        ("=?UTF-8?Q?a=G1b?=", "a=G1b"),
        ("=?UTF-8?Q?a=1?=", "a=1"),
        ("=?UTF-8?Q?=XX?=", "=XX"),
        ("=?UTF-8?Q?a=?=", "a="),
    ],
)
def test_q_equals_signs_that_are_no_escape_are_kept(value: str, text: str) -> None:
    assert decode_header_value(value) == text


def test_whitespace_inside_a_q_word_is_dropped() -> None:
    assert decode_header_value("=?UTF-8?Q?=E6=B8 =8B=E8\t=B0=B7?=") == "渋谷"


# --- B encoding -----------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        "5riL6LC3",  # exact
        "5riL6LC3=",  # one pad too many
        "5riL6L C3",  # a space in the middle
        "5riL6LC3A",  # one stray character: 4n+1 cannot be base64
        "5riL6LC3!",  # junk outside the base64 alphabet
    ],
)
def test_b_words_with_sloppy_padding_or_junk_still_decode(payload: str) -> None:
    assert decode_header_value(f"=?UTF-8?B?{payload}?=") == "渋谷"


def test_b_words_missing_their_padding_decode() -> None:
    # テスト = E3 83 86 E3 82 B9 E3 83 88: nine bytes, twelve characters, no pad;
    # あ = E3 81 82 with its one pad dropped (44GC).
    assert decode_header_value("=?UTF-8?B?44OG44K544OI?=") == "テスト"
    assert decode_header_value("=?UTF-8?B?44GC44GC?=") == "ああ"
    assert decode_header_value("=?UTF-8?B?5riL6LC35pSv?=") == "渋谷支"


# --- raw bytes in a header -------------------------------------------------------


@pytest.mark.parametrize("byte", [b"\x80", b"\xff"])
def test_a_lone_raw_byte_at_either_end_of_the_8_bit_range_is_replaced_not_kept_as_a_surrogate(byte: bytes) -> None:
    # A surrogate left in the text would fail later, when the subject is stored as UTF-8.
    text, lossy = decode_header_value_detailed((b"FE " + byte + b" ok").decode("ascii", "surrogateescape"))
    assert (text, lossy) == ("FE \ufffd ok", True)
    assert text.encode("utf-8")


def test_raw_jis_escapes_in_a_header_without_8_bit_bytes_are_decoded() -> None:
    assert decode_header_value_detailed("FE \x1b$B%F%9%H\x1b(B") == ("FE テスト", False)
