"""A reply's own text stops where the history it quotes begins."""

from mailbot.domain.replies import own_text


def test_gmail_quoting_after_an_on_wrote_line_is_cut() -> None:
    body = "顧客CDはどこで確認できますか?\n\n2026年12月2日(水) 3:00 f-desk <f-desk@usen.co.jp>:\n> 顧客CD 123456789 は"
    assert own_text(body) == "顧客CDはどこで確認できますか?"


def test_outlook_header_blocks_in_japanese_and_english_end_the_reply() -> None:
    japanese = "確認します。\n\n差出人: 納品デスク <f-desk@usen.co.jp>\n送信日時: 2026年12月2日 3:00\n件名: RE: x"
    english = "OK\r\n-----Original Message-----\r\nFrom: desk\r\n顧客CD:123456789"
    assert own_text(japanese) == "確認します。"
    assert own_text(english) == "OK"


def test_lines_quoted_with_a_bracket_are_dropped_but_the_rest_is_kept() -> None:
    assert own_text("> 引用\n本文です\n>> さらに引用\n以上") == "本文です\n以上"


def test_a_mail_without_history_is_kept_whole() -> None:
    assert own_text("顧客CD:123456789\nよろしくお願いします") == "顧客CD:123456789\nよろしくお願いします"
