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


def test_quoted_lines_indented_or_written_with_a_full_width_bracket_are_dropped() -> None:
    assert own_text("了解です\n  > 顧客CD:987654321\n＞ 申込書を添付\n以上") == "了解です\n以上"


def test_blank_lines_around_the_reply_are_trimmed() -> None:
    assert own_text("\n\n  再送します  \n\n\n") == "再送します"


def test_an_outlook_rule_of_underscores_ends_the_reply() -> None:
    body = "添付します\n________________________________\n差出人: 納品デスク\n顧客CD:987654321"
    assert own_text(body) == "添付します"
