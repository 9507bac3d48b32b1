"""Inbound SMS replies (two-way SMS): is a lead's text an opt-out, a HELP request, an opt-in,
a more-jobs request or an ordinary reply, and the automatic answer to each keyword.

US carriers (CTIA Messaging Principles) and the TCPA make STOP and its synonyms binding however
they are typed, yet an ordinary reply must never unsubscribe anyone. The rules:

1. Normalise (`reply_words`): Unicode NFKC, upper case; every character that is not a letter,
   digit or joiner (hyphens, underscore, apostrophes) separates words, so punctuation and emoji
   vanish; joiners inside a word are dropped: "opt-out", "Opt_out" -> OPTOUT, "don't" -> DONT.
2. Words are read as keywords, neighbours being joined when together they spell one (up to
   MAX_JOINED_WORDS of them): "OPT OUT" -> OPTOUT, "STOP ALL" -> STOPALL, "UN SUBSCRIBE" ->
   UNSUBSCRIBE, "sto p" -> STOP. The whole message with its spaces removed counts too when it
   is short ("S T O P").
3. A keyword reply has at most MAX_REPLY_WORDS words (joined words count once, and so does a
   word repeated in a row: "STOP STOP STOP"), at least one keyword, and nothing but
   FILLER_WORDS besides (please, thanks, me, texting, now, ...).
   Hence "STOP thank you", "please stop", "STOP STOP", "unsubscribe me please" are opt-outs,
   but "Stop by the office tomorrow at noon?", "I can't stop thinking about the nursing job",
   "When does the job end?" and "more or less" are ordinary replies: one word outside the
   filler vocabulary makes the message a sentence, not a keyword. This is sturdier than a
   word count alone.
4. YES opts in only when it is the whole message; next to other words it is filler
   ("yes stop" -> stop, "yes please" -> other), since "yes" answers many questions.
5. Misspellings are accepted for opt-out words only, and only where the result cannot be
   ordinary English (NEAR_MISSES is the explicit deny list, KNOWN_VARIANTS the allow list):
   STOP with one adjacent transposition or repeated letters ("stpo", "sotp", "tsop", "stopp",
   "stooop"); CANCEL, OPTOUT, REVOKE, STOPALL within Damerau-Levenshtein (optimal string
   alignment) distance 1; UNSUBSCRIBE within 2 ("unsubscibe", "unsubcribe"). A misspelt word
   needs at least MIN_MISSPELT_LETTERS letters. END and QUIT are never fuzzy ("and", "send",
   "quiz", "quite" stay words), nor are HELP/START/more keywords.
6. When several kinds appear in one keyword reply: stop > start > help > more.

`ReplyIntent.keyword` is the recognised word in canonical spelling: the member of STOP_WORDS,
START_WORDS or HELP_WORDS ("opt-out" -> "OPTOUT", "stpo" -> "STOP", "info" -> "INFO"), or the
tenant's more-jobs keyword normalised and upper-cased.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

ReplyKind = Literal["stop", "help", "start", "more", "other"]

STOP_WORDS = ("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE")
HELP_WORDS = ("HELP", "INFO")
START_WORDS = ("START", "UNSTOP", "YES", "SUBSCRIBE")  # opt back in
LONE_ONLY_WORDS = frozenset({"YES"})  # a keyword only as the whole message, filler otherwise

MAX_REPLY_WORDS = 8
MAX_JOINED_WORDS = 4
MAX_SPACED_LETTERS = 12  # "S T O P", "U N S U B S C R I B E": the whole message, spaces removed

FILLER_WORDS = frozenset("""
    PLEASE PLS PLZ THANKS THANK THANKYOU THX TY YOU U NOW ME MY IT THIS ALL THESE THOSE THE
    TEXTS TEXT TEXTING TXT TXTS MESSAGE MESSAGES MESSAGING MSG MSGS SMS SENDING ALERT ALERTS
    JOB JOBS SUBSCRIPTION ASAP OK OKAY SORRY BYE GOODBYE HI HEY ALREADY IMMEDIATELY AGAIN
""".split())

MIN_MISSPELT_LETTERS = 4
MISSPELLING_DISTANCE = {"STOPALL": 1, "UNSUBSCRIBE": 2, "CANCEL": 1, "OPTOUT": 1, "REVOKE": 1}
KNOWN_VARIANTS = {"UNSUB": "UNSUBSCRIBE"}  # common forms no edit distance reaches
NEAR_MISSES = frozenset("""
    TOP TOPS SPOT POST POTS STEP SHOP SLOP STOW STOOL STOOP STOMP STROP ATOP SWOP STOPS
    AND SEND ENDS QUIZ QUITE QUIET CANCER CHANCEL EVOKE REVOTE RESUBSCRIBE
""".split())  # ordinary English near a stop word: never an opt-out by misspelling

_PRIORITY = {"stop": 0, "start": 1, "help": 2, "more": 3}
# \w keeps letters, digits and "_"; the rest are apostrophes and hyphens (U+2011 is non-breaking).
_SEPARATORS = re.compile(r"[^\w'\u2018\u2019\u2010\u2011-]+")
_JOINERS = re.compile(r"['\u2018\u2019\u2010\u2011_-]+")
_FILLER, _WORD = "filler", "word"


@dataclass(frozen=True)
class ReplyIntent:
    """What an inbound SMS asks for, the keyword recognised ("" for other) and why."""

    kind: ReplyKind
    keyword: str
    reason: str


@dataclass(frozen=True)
class _Read:
    role: str  # a ReplyKind other than "other", or _FILLER / _WORD
    keyword: str = ""
    spelled: str = ""  # the word as the lead typed it (normalised), for misspellings
    how: str = "exact"  # "exact", "misspelling" or "variant"


def reply_words(text: str) -> tuple[str, ...]:
    """The message's words: NFKC, upper case, punctuation and emoji gone, inner joiners dropped."""
    words = []
    for raw in _SEPARATORS.split(unicodedata.normalize("NFKC", text).upper()):
        word = _JOINERS.sub("", raw)
        if word:
            words.append(word)
    return tuple(words)


def _without_repeats(words: tuple[str, ...]) -> tuple[str, ...]:
    """A word repeated in a row kept once ("STOP STOP STOP" -> ("STOP",))."""
    return tuple(w for i, w in enumerate(words) if i == 0 or w != words[i - 1])


def _squeeze(word: str) -> str:
    """Runs of one repeated letter collapsed to one ("STOPPP" -> "STOP")."""
    return "".join(ch for i, ch in enumerate(word) if i == 0 or ch != word[i - 1])


def _osa_distance(a: str, b: str, limit: int) -> int:
    """Damerau-Levenshtein (optimal string alignment) distance, or limit + 1 if it exceeds limit."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        if min(cur) > limit:
            return limit + 1
        prev2, prev = prev, cur
    return min(prev[-1], limit + 1)


def _is_transposition(word: str, target: str) -> bool:
    """Whether word is target with exactly two adjacent letters swapped."""
    if len(word) != len(target) or word == target:
        return False
    diff = [i for i in range(len(word)) if word[i] != target[i]]
    return (len(diff) == 2 and diff[1] == diff[0] + 1
            and word[diff[0]] == target[diff[1]] and word[diff[1]] == target[diff[0]])


def misspelt_stop_word(word: str) -> tuple[str, str] | None:
    """(stop word, "misspelling" | "variant") when a normalised word is a recognised misspelling
    of an opt-out word (rule 5 of the module docstring), else None."""
    if word in NEAR_MISSES or len(word) < MIN_MISSPELT_LETTERS or not word.isalpha():
        return None
    if word in KNOWN_VARIANTS:
        return KNOWN_VARIANTS[word], "variant"
    squeezed = _squeeze(word)
    if squeezed == "STOP" or _is_transposition(squeezed, "STOP"):
        return "STOP", "misspelling"
    for target, limit in MISSPELLING_DISTANCE.items():
        if (_osa_distance(word, target, limit) <= limit
                or _osa_distance(squeezed, _squeeze(target), limit) <= limit):
            return target, "misspelling"
    return None


def _lexicon(more_keywords: Sequence[str]) -> tuple[dict[str, tuple[str, str]], int]:
    """Keyword spelled without spaces -> (kind, canonical keyword); and the most words a keyword
    may be typed as. Carrier keywords win over a tenant's more-jobs keyword spelled the same."""
    lexicon: dict[str, tuple[str, str]] = {}
    for kind, words in (("stop", STOP_WORDS), ("start", START_WORDS), ("help", HELP_WORDS)):
        for word in words:
            lexicon[word] = (kind, word)
    longest = MAX_JOINED_WORDS
    for keyword in more_keywords:
        words = reply_words(keyword)
        if words:
            lexicon.setdefault("".join(words), ("more", " ".join(words)))
            longest = max(longest, len(words))
    return lexicon, longest


def _read_word(word: str, lexicon: dict[str, tuple[str, str]]) -> _Read:
    if word in lexicon:
        kind, keyword = lexicon[word]
        return _Read(kind, keyword, word)
    if word in FILLER_WORDS:
        return _Read(_FILLER)
    misspelt = misspelt_stop_word(word)
    if misspelt:
        return _Read("stop", misspelt[0], word, misspelt[1])
    return _Read(_WORD)


def _read(words: tuple[str, ...], lexicon: dict[str, tuple[str, str]], longest: int) -> list[_Read] | None:
    """Each word (or run of words spelling one keyword) read; None once the message can only be
    an ordinary reply: a non-filler word, or more than MAX_REPLY_WORDS words."""
    spaced = "".join(words)
    if len(words) > 1 and len(spaced) <= MAX_SPACED_LETTERS and spaced in lexicon:
        kind, keyword = lexicon[spaced]
        return [_Read(kind, keyword, spaced)]
    reads: list[_Read] = []
    i = 0
    while i < len(words):
        for n in range(min(longest, len(words) - i), 1, -1):
            joined = "".join(words[i:i + n])
            if joined in lexicon:
                kind, keyword = lexicon[joined]
                reads.append(_Read(kind, keyword, joined))
                i += n
                break
        else:
            reads.append(_read_word(words[i], lexicon))
            i += 1
        if reads[-1].role == _WORD or len(reads) > MAX_REPLY_WORDS:
            return None
    return reads


def _reason(chosen: _Read, reads: list[_Read]) -> str:
    if chosen.how == "misspelling":
        return f"misspelling of {chosen.keyword} ({chosen.spelled.lower()})"
    if chosen.how == "variant":
        return f"variant of {chosen.keyword} ({chosen.spelled.lower()})"
    if all(r.role == chosen.role and r.keyword == chosen.keyword for r in reads):
        return f"exact {chosen.keyword}"
    outranked = [r.keyword for r in reads if r.role in _PRIORITY and r.role != chosen.role]
    if outranked:
        return f"{chosen.keyword} outranks {', '.join(dict.fromkeys(outranked))}"
    if reads[0] is chosen:
        return f"first word {chosen.keyword}"
    return f"{chosen.keyword} with filler"


def classify_reply(text: str, more_keywords: Sequence[str] = ("MORE",)) -> ReplyIntent:
    """The intent of an inbound SMS (rules in the module docstring); more_keywords are the
    tenant's more-jobs keywords, matched case-insensitively, possibly several words each."""
    words = _without_repeats(reply_words(text))
    if not words:
        return ReplyIntent("other", "", "no words")
    lexicon, longest = _lexicon(more_keywords)
    reads = _read(words, lexicon, longest)
    if reads is not None and not all(r.keyword in LONE_ONLY_WORDS for r in reads):
        reads = [_Read(_FILLER) if r.keyword in LONE_ONLY_WORDS else r for r in reads]
    keywords = [r for r in reads or () if r.role in _PRIORITY]
    if not keywords:
        return ReplyIntent("other", "", "ordinary reply")
    best = min(_PRIORITY[r.role] for r in keywords)
    of_kind = [r for r in keywords if _PRIORITY[r.role] == best]
    chosen = next((r for r in of_kind if r.how == "exact"), of_kind[0])
    return ReplyIntent(chosen.role, chosen.keyword, _reason(chosen, reads))  # type: ignore[arg-type]


def confirmation_text(intent: ReplyIntent, brand: str, help_contact: str = "") -> str | None:
    """The SMS answering the intent, or None for "other" (no automatic answer)."""
    if intent.kind == "stop":
        return f"{brand}: You are unsubscribed and will receive no more messages. Reply START to resubscribe."
    if intent.kind == "help":
        contact = help_contact.strip()
        tail = f" Help: {contact}" if contact else ""
        return f"{brand} job alerts. Msg&data rates may apply. Reply STOP to opt out.{tail}"
    if intent.kind == "start":
        return f"{brand}: You are subscribed to job alerts again. Reply STOP to opt out."
    if intent.kind == "more":
        return f"{brand}: More jobs are on their way."
    return None
