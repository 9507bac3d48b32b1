"""SMS length: GSM-7 vs UCS-2 encoding, segment counting, fitting, GSM-safe punctuation and
punctuation joined once (a company "Acme Co." ending a sentence is not "Acme Co..").

Tables from 3GPP TS 23.038 (GSM 03.38): the 7-bit default alphabet (one septet each; 0x1B is
the escape, not a character) and its extension table (escape + code: two septets each).
0x09 is the capital C-cedilla as in the 3GPP table (Unicode's mapping file says small ç).
A message with any other character is sent as UCS-2, counted in UTF-16 code units.
"""
from __future__ import annotations

import re
import unicodedata

GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = frozenset("\f^{}\\[]~|€")  # each costs the escape septet plus its own

GSM7, UCS2 = "GSM-7", "UCS-2"
_SINGLE = {GSM7: 160, UCS2: 70}
_MULTI = {GSM7: 153, UCS2: 67}  # the rest of each 140-byte segment is the concatenation header

# Typographic look-alikes that would push a whole message into UCS-2 (70 chars, not 160).
_TO_GSM = str.maketrans({
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'", "\u00b4": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"',
    "\u00ab": '"', "\u00bb": '"',
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2015": "-",
    "\u2212": "-",
    "\u2026": "...",
    "\u00a0": " ", "\u2002": " ", "\u2003": " ", "\u2007": " ", "\u2009": " ", "\u200a": " ",
    "\u202f": " ", "\t": " ",
    "\u200b": None, "\u2060": None, "\ufeff": None,  # invisible, yet each one forces UCS-2
})


def normalise_for_gsm(text: str) -> str:
    """Smart quotes, dashes, ellipsis and odd spaces replaced by their GSM-7 equivalents."""
    return text.translate(_TO_GSM)


def encoding(text: str) -> str:
    """"GSM-7" when every character is in the GSM 03.38 tables, else "UCS-2"."""
    for ch in text:
        if ch not in GSM_BASIC and ch not in GSM_EXTENSION:
            return UCS2
    return GSM7


def _unit_widths(text: str, enc: str) -> list[int]:
    if enc == GSM7:
        return [2 if ch in GSM_EXTENSION else 1 for ch in text]
    return [2 if ord(ch) > 0xFFFF else 1 for ch in text]  # astral: a UTF-16 surrogate pair


def _segment_count(widths: list[int], per_segment: int) -> int:
    # An escape pair or surrogate pair is never split across segments, so pack greedily.
    count, room = 1, per_segment
    for w in widths:
        if w > room:
            count, room = count + 1, per_segment
        room -= w
    return count


def segments(text: str) -> tuple[int, int, int]:
    """(n_segments, units_used, units_per_segment): septets for GSM-7, UTF-16 units for UCS-2."""
    enc = encoding(text)
    widths = _unit_widths(text, enc)
    used = sum(widths)
    if used <= _SINGLE[enc]:
        return (1 if used else 0), used, _SINGLE[enc]
    return _segment_count(widths, _MULTI[enc]), used, _MULTI[enc]


def _ellipsis(body: str) -> str:
    return "..." if encoding(body) == GSM7 else "\u2026"  # "…" alone would force UCS-2


def _shortened(text: str, n: int) -> str:
    """The first n characters cut back to a word boundary, with an ellipsis."""
    body = text[:n]
    if n < len(text) and not text[n].isspace() and any(c.isspace() for c in body):
        body = body[: max(i for i, c in enumerate(body) if c.isspace())]
    body = body.rstrip(" \t\n\r,;:-")
    return body + _ellipsis(body)


def _fits(candidate: str, max_segments: int) -> bool:
    return segments(candidate)[0] <= max_segments


def _longest(lo: int, hi: int, ok) -> int:
    """The largest n in [lo, hi] with ok(n), given ok is monotone (true then false); lo-1 if none."""
    best = lo - 1
    while lo <= hi:
        mid = (lo + hi) // 2
        if ok(mid):
            best, lo = mid, mid + 1
        else:
            hi = mid - 1
    return best


def fit(text: str, max_segments: int) -> str:
    """The text itself if it fits in max_segments, else shortened at a word boundary with an
    ellipsis ("..." in GSM-7, "…" in UCS-2) so it does."""
    if max_segments < 1:
        raise ValueError(f"max_segments must be at least 1, got {max_segments}")
    if _fits(text, max_segments):
        return text
    # Prefixes before the first non-GSM character are GSM-7, longer ones UCS-2: within each
    # range a longer prefix never costs less, so each can be bisected on its own.
    first_ucs2 = next((i for i, ch in enumerate(text) if encoding(ch) == UCS2), len(text))
    raw_fits = lambda n: _fits(text[:n] + _ellipsis(text[:n]), max_segments)  # noqa: E731
    n = _longest(first_ucs2 + 1, len(text), raw_fits)
    if n <= first_ucs2:
        n = _longest(0, first_ucs2, raw_fits)
    # Cutting back to a word can change the encoding and the ellipsis: check, and step back if needed.
    while n > 0 and not _fits(_shortened(text, n), max_segments):
        n -= 1
    return _shortened(text, n) if n > 0 else "..."


_DOUBLED_STOP = re.compile(r"(?<![.])\.\.(?![.])")  # exactly two: "Co.." (three is an ellipsis)
_LONG_DOTS = re.compile(r"\.{4,}")  # an ellipsis followed by a sentence's full stop
_SPACE_BEFORE_STOP = re.compile(r"(?<=\w) +(?=[.,;:!?](?:\s|$))")
_STOP_AFTER_MARK = re.compile(r"(?<=[!?])\.(?!\.)")  # "Now hiring!." -> "Now hiring!"


def tidy_punctuation(text: str) -> str:
    """Punctuation joined as a person writes it: an abbreviation's or an ellipsis' full stop
    also ends the sentence ("Acme Co." + "." -> "Acme Co.", "..." + "." -> "..."), "!" or "?"
    takes no stop after it, and no space goes before a stop or comma. URLs keep their dots
    (they have no doubled ones)."""
    text = _LONG_DOTS.sub("...", text)
    text = _DOUBLED_STOP.sub(".", text)
    text = _STOP_AFTER_MARK.sub("", text)
    return _SPACE_BEFORE_STOP.sub("", text)


def shorten_words(text: str, limit: int) -> str:
    """text cut to at most `limit` characters at a word boundary with "..." (GSM-7; "…" if the
    text is UCS-2 anyway); text itself when short enough."""
    if limit < 4:
        raise ValueError(f"limit must be at least 4, got {limit}")
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    return _shortened(text, limit - 3)


def fold_to_gsm(text: str) -> str:
    """text with each character outside the GSM 03.38 tables replaced by its unaccented form
    when that one is in them ("Zoë" -> "Zoe", "Łukasz" stays): the last resort before cutting
    words from a message that one UCS-2 letter would make cost double."""
    out = []
    for ch in text:
        if ch in GSM_BASIC or ch in GSM_EXTENSION:
            out.append(ch)
            continue
        base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
        out.append(base if base and all(c in GSM_BASIC for c in base) else ch)
    return "".join(out)
