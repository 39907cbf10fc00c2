"""Decoding helpers for the Japanese mail the desk receives.

Everything here is pure: bytes or header strings in, ``str`` out, no I/O.

Two facts about real Japanese mail drive the design:

* Outlook (and most Windows clients) label mail ``iso-2022-jp`` but encode it
  with Microsoft's CP50220 tables, i.e. CP932 squeezed into 7-bit JIS. That
  puts NEC row 13 (``㈱ ① Ⅰ``) and the IBM extensions into rows Python's
  ``iso2022_jp`` codec rejects, and maps ``～ ― －`` to code points the
  standard codec decodes as different characters (``〜 — −``).
* Shift_JIS labels almost always mean CP932 in practice.

So ISO-2022-JP is decoded first by converting each JIS X 0208 pair to its
Shift_JIS bytes and decoding those as CP932, which gives back exactly what a
Windows sender typed; the stdlib ISO-2022-JP codecs are the fallback for the
escapes that conversion does not cover (JIS X 0212, ISO-2022-JP-2 charsets).
"""

from __future__ import annotations

import base64
import codecs
import re
import unicodedata
from dataclasses import dataclass
from email.header import Header
from email.header import decode_header as _stdlib_decode_header

__all__ = [
    "DecodeResult",
    "canonical_charset",
    "decode_bytes",
    "decode_bytes_detailed",
    "decode_header_value",
    "decode_header_value_detailed",
    "decode_iso2022jp_cp932",
    "normalize",
]

_ESC = 0x1B
_SO = 0x0E
_SI = 0x0F


@dataclass(frozen=True)
class DecodeResult:
    """Decoded text, the codec that produced it, and whether anything was lost."""

    text: str
    codec: str
    # U+FFFD had to be inserted: the bytes are invalid in every candidate codec.
    lossy: bool
    # A charset was declared but the bytes only decoded as something else.
    guessed: bool = False


_SJIS_ALIASES = frozenset(
    {
        "shift_jis", "shift-jis", "sjis", "s_jis", "x-sjis", "x_sjis", "shiftjis",
        "csshiftjis", "ms_kanji", "ms932", "cp932", "windows-31j", "windows_31j",
        "x-ms-cp932", "ibm-943", "cp943", "cp943c",
    }
)  # fmt: skip
_JIS_ALIASES = frozenset(
    {
        "iso-2022-jp", "iso2022-jp", "iso_2022_jp", "iso2022jp", "csiso2022jp", "jis",
        "iso-2022-jp-1", "iso-2022-jp-2", "iso-2022-jp-3", "iso-2022-jp-2004",
        "iso-2022-jp-ext", "x-windows-iso2022jp", "cp50220", "cp50221", "cp50222",
        "iso-2022-jp-ms", "csiso2022jp2",
    }
)  # fmt: skip
_EUC_ALIASES = frozenset(
    {
        "euc-jp", "euc_jp", "eucjp", "x-euc-jp", "x-euc", "cseucpkdfmtjapanese", "ujis",
        "u-jis", "euc-jis-2004", "euc_jis_2004", "euc-jisx0213", "cp51932", "eucjp-ms",
        "eucjp-open", "eucjp-win",
    }
)  # fmt: skip

# Chinese codecs whose bytes are, in practice, GBK (or GB18030); gb18030
# itself needs no mapping.
_GB_FAMILY = frozenset({"gb2312", "gbk"})


def canonical_charset(charset: str | None) -> str | None:
    """Map a MIME charset label to one of 'iso-2022-jp', 'cp932', 'euc-jp',
    a Python text codec name, or None when the label is absent or unknown."""
    if not charset:
        return None
    label = charset.strip().strip("\"'").strip().lower()
    # RFC 2231 allows a language suffix on encoded-word charsets.
    label = label.partition("*")[0]
    if label in _JIS_ALIASES:
        return "iso-2022-jp"
    if label in _SJIS_ALIASES:
        return "cp932"
    if label in _EUC_ALIASES:
        return "euc-jp"
    # Chinese labels Python has no codec for (cp936 and ms936 it knows as gbk).
    if label in {"x-gbk", "windows-936", "x-euc-cn", "x-gb2312"}:
        return "gb18030"
    # Labels that name no charset (unknown-8bit, x-user-defined...) are no
    # codec either, so the lookup refuses them.
    try:
        info = codecs.lookup(label)
    except (LookupError, ValueError):
        return None
    # Refuse bytes-to-bytes codecs (base64, zlib...; every CodecInfo has
    # _is_text_encoding, True unless the codec says otherwise) and codecs that
    # would interpret the payload (unicode_escape) rather than map it. These
    # are the names codecs.lookup gives, which spell the escape codecs with hyphens.
    if not info._is_text_encoding or info.name in {
        "unicode-escape", "raw-unicode-escape", "undefined", "idna", "punycode",
    }:  # fmt: skip
        return None
    if info.name in _GB_FAMILY:
        # Exchange writes Japanese bounces in GB2312 and slips GBK bytes (the
        # long vowel mark ー as A9 60, 敗 as 94 A1) under that label; GB18030
        # is the superset that reads them all.
        return "gb18030"
    if info.name == "ascii":
        # Mail labelled us-ascii that carries 8-bit bytes is common; guessing
        # beats replacement characters, and pure ASCII decodes the same anyway.
        return None
    return info.name


# --- ISO-2022-JP via CP932 -------------------------------------------------


def _jis_pair_to_sjis(j1: int, j2: int) -> bytes:
    # The standard JIS X 0208 -> Shift_JIS arithmetic (row pair -> lead byte,
    # odd/even row selects the trail byte range).
    s1 = ((j1 - 0x21) >> 1) + 0x81
    if s1 > 0x9F:
        s1 += 0x40
    if j1 & 1:
        s2 = j2 + 0x1F
        if s2 >= 0x7F:
            s2 += 1
    else:
        s2 = j2 + 0x7E
    return bytes((s1, s2))


_ESCAPES: dict[bytes, str] = {
    b"(B": "ascii",
    b"(J": "ascii",  # JIS X 0201 Roman: only \ and ~ differ; mail means ASCII
    b"(H": "ascii",  # obsolete Swedish designation some old mailers emit
    b"(I": "kana",
    b"$@": "jis",
    b"$B": "jis",
    b"&@\x1b$B": "jis",  # JIS X 0208-1990 announcer followed by $B
    b"$(B": "jis",
    b"$(@": "jis",
}


def decode_iso2022jp_cp932(data: bytes, errors: str = "strict") -> str:
    """Decode ISO-2022-JP the way Windows does (CP50220/50221/50222).

    Each JIS X 0208 pair is turned into its Shift_JIS bytes and decoded as
    CP932, so NEC row 13 (㈱ ①), the NEC-selected IBM extensions and the
    Microsoft mappings of ～ ― － come out as the sender typed them.
    Half-width katakana are accepted both as ``ESC ( I`` and as SO/SI.
    With ``errors="strict"`` an unsupported escape, an 8-bit byte or an
    unmapped pair raises ``UnicodeDecodeError``; with ``"replace"`` they
    become U+FFFD.
    """
    # An unknown handler name fails here as it does in the stdlib codecs,
    # rather than being taken for "replace".
    codecs.lookup_error(errors)
    strict = errors == "strict"
    out: list[str] = []
    mode = "ascii"
    shifted = False  # SO/SI half-width katakana (CP50222)
    i = 0
    n = len(data)

    def fail(pos: int, end: int, why: str) -> None:
        if strict:
            raise UnicodeDecodeError("iso-2022-jp-cp932", data, pos, end, why)
        out.append("\ufffd")

    while i < n:
        b = data[i]
        if b == _ESC:
            for seq, new_mode in _ESCAPES.items():
                if data.startswith(seq, i + 1):
                    mode = new_mode
                    i += 1 + len(seq)
                    break
            else:
                fail(i, i + 1, "unsupported escape sequence")
                i += 1
            continue
        if b == _SO:
            shifted = True
            i += 1
            continue
        if b == _SI:
            shifted = False
            i += 1
            continue
        if b >= 0x80:
            fail(i, i + 1, "8-bit byte in 7-bit ISO-2022-JP")
            i += 1
            continue
        if b < 0x21 or b == 0x7F:
            # Controls and space stand for themselves in every mode; a line
            # break always returns to ASCII (RFC 1468 requires that anyway and
            # sloppy encoders forget the ESC ( B).
            out.append(chr(b))
            if b in (0x0A, 0x0D):
                mode = "ascii"
                shifted = False
            i += 1
            continue
        if shifted or mode == "kana":
            if b <= 0x5F:
                # JIS X 0201 katakana 21-5F are U+FF61-FF9F in the same order.
                out.append(chr(b + 0xFF40))
            else:
                fail(i, i + 1, "byte outside JIS X 0201 katakana")
            i += 1
            continue
        if mode == "ascii":
            out.append(chr(b))
            i += 1
            continue
        # JIS X 0208 pair
        if i + 1 >= n or not 0x21 <= data[i + 1] <= 0x7E:
            fail(i, i + 1, "truncated JIS X 0208 pair")
            i += 1
            continue
        try:
            out.append(_jis_pair_to_sjis(b, data[i + 1]).decode("cp932"))
        except UnicodeDecodeError:
            fail(i, i + 2, "JIS pair not in CP932")
        i += 2
    return "".join(out)


def _decode_euc_cp51932(data: bytes) -> str:
    # Windows EUC (CP51932): EUC pairs are JIS pairs with the high bit set,
    # so the same JIS -> Shift_JIS -> CP932 route covers NEC row 13 there too,
    # and rows 89-92 (F9-FC) land on CP932's NEC-selected IBM extensions (ED/EE).
    # Bad bytes become U+FFFD, which CP51932 cannot encode: so the text holds
    # one exactly when the bytes were not CP51932 (_try relies on that).
    out: list[str] = []
    i = 0
    n = len(data)
    while i < n:
        b = data[i]
        if b < 0x80:
            out.append(chr(b))
            i += 1
        elif b == 0x8E and i + 1 < n and 0xA1 <= data[i + 1] <= 0xDF:
            # SS2 + A1-DF: half-width katakana U+FF61-FF9F in the same order.
            out.append(chr(data[i + 1] + 0xFEC0))
            i += 2
        elif 0xA1 <= b <= 0xFE and i + 1 < n and 0xA1 <= data[i + 1] <= 0xFE:
            try:
                out.append(_jis_pair_to_sjis(b - 0x80, data[i + 1] - 0x80).decode("cp932"))
            except UnicodeDecodeError:
                # One pair, one U+FFFD: CP932's own replace mode would keep
                # the converted trail byte (40-7E) as an ASCII letter.
                out.append("\ufffd")
            i += 2
        else:
            out.append("\ufffd")
            i += 1
    return "".join(out)


# --- byte decoding with fallbacks -------------------------------------------


def _try(codec: str, data: bytes) -> str | None:
    try:
        if codec == "iso-2022-jp-cp932":
            return decode_iso2022jp_cp932(data)
        if codec == "cp51932":
            euc = _decode_euc_cp51932(data)
            return None if "\ufffd" in euc else euc
        text = data.decode(codec)
    except (UnicodeDecodeError, LookupError):
        return None
    if codec == "cp932" and _CP932_STRAYS.search(text):
        return None
    if "\x1b" in text and _JIS_DESIGNATION.search(data):
        # UTF-8, CP932 and friends "decode" 7-bit ISO-2022-JP unchanged; text
        # still holding its escape sequences was not decoded at all.
        return None
    return text


def _plausible_cp932_under_jis_label(text: str) -> bool:
    # Mail labelled ISO-2022-JP but carrying raw Shift_JIS is real (old phone
    # mailers), but a single stray 8-bit byte also pairs up with the next ASCII
    # letter into some kanji. Real Japanese text has kana or several characters.
    wide = [ch for ch in text if ord(ch) > 0x7F]
    return len(wide) >= 2 or any("\u3040" <= ch <= "\u30ff" or "\uff66" <= ch <= "\uff9f" for ch in wide)


_JIS_DESIGNATION = re.compile(rb"\x1b[$(]")


# Python's cp932 decodes the single bytes 0x80, 0xA0, 0xFD-0xFF (which never
# occur in real Shift_JIS text) to these; finding one means a wrong guess.
_CP932_STRAYS = re.compile("[\u0080\uf8f0-\uf8f3]")


def _candidates(canonical: str | None, data: bytes) -> list[str]:
    if canonical == "iso-2022-jp":
        return [
            "iso-2022-jp-cp932", "iso2022_jp_2", "iso2022_jp_ext", "iso2022_jp_3",
            "iso2022_jp_2004", "cp932", "utf-8",
        ]  # fmt: skip
    if canonical == "cp932":
        return ["cp932", "shift_jis_2004", "utf-8", "euc_jp"]
    if canonical == "euc-jp":
        # Windows EUC before EUC-JIS-2004: both read rows 89-92, Windows as
        # the NEC-selected IBM extensions (纊 髙 﨑) and JIS X 0213 as other
        # kanji (硃 郄 粼). Windows and most mailers write the former. Any
        # character CP51932 lacks (most of JIS X 0213's additions) makes the
        # Windows reading refuse the whole text, which then goes to EUC-JIS-2004.
        return ["euc_jp", "cp51932", "euc_jis_2004", "cp932", "utf-8"]
    if canonical is not None:
        return [canonical, *_sniff_order(data)]
    return _sniff_order(data)


def _sniff_order(data: bytes) -> list[str]:
    if b"\x1b$" in data or b"\x1b(" in data:
        # No utf-8 or cp932 here: both keep the escapes, which _try refuses.
        return ["iso-2022-jp-cp932", "iso2022_jp_2", "iso2022_jp_3", "iso2022_jp_2004"]
    return ["utf-8", *_SNIFFED_8BIT]


# The 8-bit guesses, in order: the Windows tables before the JIS X 0213 ones
# (rows the two disagree on are written by Windows far more often), which
# only read what the others refuse (俱 and the rest of JIS X 0213's additions).
_SJIS_FAMILY = ("cp932", "shift_jis_2004")
_EUC_FAMILY = ("euc_jp", "cp51932", "euc_jis_2004")
_SNIFFED_8BIT = ("cp932", "euc_jp", "cp51932", "shift_jis_2004", "euc_jis_2004")

# Kana and Japanese punctuation (、。「」・ー...). Read as Shift_JIS, EUC-JP
# text is half-width katakana (テスト -> ･ﾆ･ｹ･ﾈ: A5, the katakana row, is ･),
# and Shift_JIS bytes with kana are no EUC at all: so a guess that has none
# of these loses to one that has.
_JAPANESE_MARKS = re.compile("[\u3001-\u30ff]")


def _second_look(later: list[str], codec: str, text: str, data: bytes) -> tuple[str, str, bool]:
    """For a sniffed reading without kana: a later reading of the other
    family (EUC against Shift_JIS) with kana wins; otherwise the reading
    stands, doubtful if the other family reads the bytes too.

    Within a family the order stands: CP932 and Shift_JIS-2004 differ only
    where Windows and JIS map a code differently (～ against 〜)."""
    family = _EUC_FAMILY if codec in _EUC_FAMILY else _SJIS_FAMILY
    others = [(c, t) for c in later if c in _SNIFFED_8BIT and c not in family and (t := _try(c, data)) is not None]
    for other, other_text in others:
        if _JAPANESE_MARKS.search(other_text):
            return other, other_text, False
    return codec, text, bool(others)


def decode_bytes_detailed(data: bytes, charset: str | None = None) -> DecodeResult:
    """Decode ``data`` declared as ``charset`` (may be wrong, unknown or None).

    Tries the declared charset with its Japanese supersets, then guesses among
    UTF-8 / CP932 / EUC-JP / ISO-2022-JP (Windows tables first, JIS X 0213
    where those fail), preferring a guess that reads as kana, and only as a
    last resort inserts U+FFFD (``lossy=True``).
    """
    canonical = canonical_charset(charset)
    order = _candidates(canonical, data)
    for index, codec in enumerate(order):
        text = _try(codec, data)
        if text is not None and canonical == "iso-2022-jp" and codec == "cp932":
            text = text if _plausible_cp932_under_jis_label(text) else None
        if text is not None:
            is_guess = index >= _primary_count(canonical)
            doubtful = False
            if is_guess and codec in _SNIFFED_8BIT and not _JAPANESE_MARKS.search(text):
                codec, text, doubtful = _second_look(order[index + 1 :], codec, text, data)
            # A declared charset that failed makes this a guess worth noting;
            # so does a guess that another reading of the bytes could replace.
            guessed = (bool(charset) and is_guess and not data.isascii()) or doubtful
            return DecodeResult(text, codec, lossy=False, guessed=guessed)
    # Replace within the declared codec when there is a meaningful one.
    fallback = order[0] if canonical is None else canonical
    if _JIS_DESIGNATION.search(data) and data.isascii():
        # 7-bit ISO-2022-JP whatever the label says: replace only the pairs no
        # codec knows (au emoji, JIS rows 0x75-0x76), never leave escapes.
        fallback = "iso-2022-jp-cp932"
    return DecodeResult(_decode_replace(data, fallback), fallback, lossy=True, guessed=True)


def _primary_count(canonical: str | None) -> int:
    # How many leading candidates count as "the declared charset itself".
    # For ISO-2022-JP that is the first five, but they (the CP932 route and
    # the stdlib ISO-2022-JP codecs) refuse every 8-bit byte, and 7-bit data
    # is never a guess: counting only the first says the same.
    if canonical is None:
        return 0
    return {"cp932": 2, "euc-jp": 3}.get(canonical, 1)


def _replace_sjis_pair(exc: UnicodeError) -> tuple[str, int]:
    # Python's CP932 codec reports an unmapped pair as its lead byte alone,
    # so "replace" turns EF 40 into U+FFFD and then "@". A lead byte followed
    # by a trail byte is one character the sender wrote: replace both.
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    data, start = exc.object, exc.start
    if start + 1 < len(data) and _is_sjis_lead(data[start]) and _is_sjis_trail(data[start + 1]):
        return "\ufffd", start + 2
    return "\ufffd", exc.end


def _is_sjis_lead(b: int) -> bool:
    return 0x81 <= b <= 0x9F or 0xE0 <= b <= 0xFC


def _is_sjis_trail(b: int) -> bool:
    return 0x40 <= b <= 0x7E or 0x80 <= b <= 0xFC


_SJIS_PAIR_REPLACE = "mailbot-sjis-pair-replace"
codecs.register_error(_SJIS_PAIR_REPLACE, _replace_sjis_pair)


def _decode_replace(data: bytes, codec: str) -> str:
    if codec == "iso-2022-jp":
        codec = "iso-2022-jp-cp932"
    if codec == "euc-jp":
        codec = "cp51932"
    if codec == "iso-2022-jp-cp932":
        return decode_iso2022jp_cp932(data, errors="replace")
    if codec == "cp51932":
        return _decode_euc_cp51932(data)
    if codec in {"cp932", "shift_jis_2004", "shift_jisx0213"}:
        text = data.decode(codec, errors=_SJIS_PAIR_REPLACE)
        # cp932 gives the stray bytes a character of their own (U+0080, private
        # use); a damaged byte is shown as damaged, like every other one here.
        return _CP932_STRAYS.sub("\ufffd", text) if codec == "cp932" else text
    # Every other codec here is a name codecs.lookup gave canonical_charset, or
    # utf-8, so it exists.
    return data.decode(codec, errors="replace")


def decode_bytes(data: bytes, charset: str | None = None) -> str:
    """Decode ``data`` declared as ``charset``; see :func:`decode_bytes_detailed`."""
    return decode_bytes_detailed(data, charset).text


# --- RFC 2047 header values ------------------------------------------------

# Encoded text may not contain "?" in either encoding, which keeps a lazy match
# from running into the next word. Whitespace is allowed inside because
# some mailers fold in the middle of a word.
_ENCODED_WORD = re.compile(
    r"=\?(?P<charset>[^?\s]+)\?(?P<enc>[bBqQ])\?(?P<text>[^?]*)\?=",
)
_FOLD = re.compile(r"\r?\n(?=[ \t])")
_STRAY_NEWLINE = re.compile(r"\r?\n|\r")


def _b_decode(text: str) -> bytes:
    # Only the base64 alphabet is left, so the text is ASCII.
    raw = re.sub(r"[^A-Za-z0-9+/]", "", text).encode()
    # 4n+1 characters cannot be base64: the last one is junk.
    raw = raw[: len(raw) - len(raw) % 4] if len(raw) % 4 == 1 else raw
    # b64decode (not validating) takes surplus padding, so two "=" complete
    # any remaining length, and it has nothing left to refuse.
    return base64.b64decode(raw + b"==")


def _q_decode(text: str) -> bytes:
    out = bytearray()
    # Anything non-ASCII inside a Q word is junk on the wire; keep its UTF-8
    # bytes. No surrogates are left here to escape: _decode_raw_header_text
    # has decoded every raw 8-bit byte of the value first.
    data = re.sub(r"\s+", "", text).encode()
    i = 0
    while i < len(data):
        c = data[i]
        if c == ord("_"):
            out.append(0x20)
        elif c == ord("=") and _is_hex(data[i + 1 : i + 3]):
            out.append(int(data[i + 1 : i + 3], 16))
            i += 2
        else:
            out.append(c)
        i += 1
    return bytes(out)


def _is_hex(pair: bytes) -> bool:
    return len(pair) == 2 and all(ch in b"0123456789abcdefABCDEF" for ch in pair)


def _decode_raw_header_text(value: str) -> tuple[str, bool]:
    # Header text that was not ASCII on the wire: 8-bit bytes smuggled in
    # through surrogateescape, or raw (unencoded) ISO-2022-JP escapes.
    if any("\udc80" <= ch <= "\udcff" for ch in value) or "\x1b" in value:
        result = decode_bytes_detailed(value.encode(errors="surrogateescape"))
        return result.text, result.lossy
    return value, False


def decode_header_value_detailed(value: str | Header | None) -> tuple[str, bool]:
    """Like :func:`decode_header_value`, also saying whether U+FFFD was needed."""
    if value is None:
        return "", False
    if isinstance(value, Header):
        return _decode_header_object(value)
    text, lossy = _decode_raw_header_text(value)
    text = _FOLD.sub("", text)
    decoded, lossy2 = _decode_encoded_words(text)
    return _STRAY_NEWLINE.sub(" ", decoded), lossy or lossy2


def decode_header_value(value: str | Header | None) -> str:
    """Decode one header value to text.

    Handles RFC 2047 words anywhere (glued to plain text, inside quoted
    strings, split across folded lines, split mid-character across adjacent
    words), Japanese charsets with CP932 extensions, raw 8-bit or raw
    ISO-2022-JP header bytes, and ``email.header.Header`` objects.
    Never raises; undecodable bytes become U+FFFD.
    """
    return decode_header_value_detailed(value)[0]


def _decode_header_object(header: Header) -> tuple[str, bool]:
    parts: list[str] = []
    lossy = False
    # For a Header, decode_header returns each chunk as bytes with str() of
    # its Charset, a lower-case name and never None.
    for chunk, charset in _stdlib_decode_header(header):
        if charset == "us-ascii":
            # Header encoded this chunk as ASCII; it may hold RFC 2047 words.
            text, chunk_lossy = decode_header_value_detailed(chunk.decode())
        else:
            result = decode_bytes_detailed(chunk, charset)
            text, chunk_lossy = result.text, result.lossy
        parts.append(text)
        lossy = lossy or chunk_lossy
    return "".join(parts), lossy


def _decode_encoded_words(text: str) -> tuple[str, bool]:
    pieces: list[str] = []
    lossy = False
    # The bytes of a run of adjacent words in one charset, decoded together.
    pending: list[bytes] = []
    pending_charset = ""
    pos = 0

    def flush() -> None:
        nonlocal lossy
        if pending:
            result = decode_bytes_detailed(b"".join(pending), pending_charset)
            pieces.append(result.text)
            lossy = lossy or result.lossy
            pending.clear()

    for match in _ENCODED_WORD.finditer(text):
        between = text[pos : match.start()]
        # Whitespace between two adjacent encoded words is not text (RFC 2047 6.2).
        if not (pending and between.strip() == ""):
            flush()
            pieces.append(between)
        charset = match.group("charset").partition("*")[0]
        payload = match.group("text")
        data = _b_decode(payload) if match.group("enc").upper() == "B" else _q_decode(payload)
        # Adjacent words in the same charset are joined before decoding: some
        # mailers split a multi-byte character across two words.
        if charset.lower() != pending_charset.lower():
            flush()
        pending.append(data)
        pending_charset = charset
        pos = match.end()
    flush()
    pieces.append(text[pos:])
    return "".join(pieces), lossy


# --- comparison form -------------------------------------------------------

# Characters that the standard JIS tables and Microsoft's tables assign to the
# same JIS code; folded so text compares equal however its sender's client
# mapped it.
_JIS_VARIANT_FOLD = str.maketrans(
    {
        "\u301c": "~",  # WAVE DASH (JIS) vs FULLWIDTH TILDE (CP932, NFKC -> ~)
        "\u2016": "\u2225",  # DOUBLE VERTICAL LINE vs PARALLEL TO
        "\u2212": "-",  # MINUS SIGN vs FULLWIDTH HYPHEN-MINUS (NFKC -> -)
        "\u2014": "\u2015",  # EM DASH vs HORIZONTAL BAR
    }
)
_WHITESPACE = re.compile(r"\s+")


def normalize(s: str) -> str:
    """Comparison form: NFKC, JIS/CP932 variant folding, whitespace collapsed.

    ``ﾌﾚｯﾂｴｽｶ`` -> ``フレッツエスカ``, full-width digits/letters/spaces -> ASCII,
    runs of whitespace -> one space, leading/trailing whitespace removed.
    """
    folded = unicodedata.normalize("NFKC", s).translate(_JIS_VARIANT_FOLD)
    return _WHITESPACE.sub(" ", folded).strip()
