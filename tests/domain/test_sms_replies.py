import time

import pytest

from domain.sms_replies import (FILLER_WORDS, HELP_WORDS, MAX_REPLY_WORDS, NEAR_MISSES, START_WORDS,
                                STOP_WORDS, ReplyIntent, classify_reply, confirmation_text,
                                misspelt_stop_word, reply_words)
from domain.sms_text import encoding, segments


def kind_and_keyword(text: str, more=("MORE",)) -> tuple[str, str]:
    intent = classify_reply(text, more)
    return intent.kind, intent.keyword


# --- opt-out -------------------------------------------------------------------------------------

@pytest.mark.parametrize("word", STOP_WORDS)
@pytest.mark.parametrize("spelling", ["{w}", "{l}", "{t}", " {l} ", "{w}.", "{w}!!!", "{t}?", "\"{l}\"",
                                      "{w} 🛑", "🛑{l}🛑", "{l}\n", "\t{w}\t", "{w} {w}", "{l}, please",
                                      "please {l}", "{t} thank you", "{l} now"])
def test_every_stop_word_in_every_spelling_is_an_opt_out(word, spelling):
    text = spelling.format(w=word, l=word.lower(), t=word.title())
    assert kind_and_keyword(text) == ("stop", word)


@pytest.mark.parametrize("text, keyword", [
    ("Stop.", "STOP"), ("STOP!!!", "STOP"), (" stop ", "STOP"), ("Stop 🛑", "STOP"),
    ("ＳＴＯＰ", "STOP"),  # full-width letters, NFKC
    ("S.T.O.P.", "STOP"), ("S T O P", "STOP"), ("sto p", "STOP"), ("st\u200bop", "STOP"),
    ("OPT OUT", "OPTOUT"), ("opt-out", "OPTOUT"), ("Opt_out", "OPTOUT"), ("opt out please", "OPTOUT"),
    ("opt\u2011out", "OPTOUT"), ("opt\u2010out", "OPTOUT"),  # Unicode hyphens join like "-"
    ("STOP STOP STOP STOP STOP STOP STOP STOP STOP STOP", "STOP"), ("stop " * 2_000, "STOP"),
    ("STOP ALL", "STOPALL"), ("stop-all", "STOPALL"), ("Stop all these texts", "STOPALL"),
    ("UN-SUBSCRIBE", "UNSUBSCRIBE"), ("un subscribe", "UNSUBSCRIBE"), ("unsubscribe me", "UNSUBSCRIBE"),
    ("Unsubscribe me please", "UNSUBSCRIBE"), ("U N S U B S C R I B E", "UNSUBSCRIBE"),
    ("STOP thank you", "STOP"), ("stop please", "STOP"), ("Stop texting me", "STOP"),
    ("please stop", "STOP"), ("pls stop", "STOP"), ("plz stop!", "STOP"), ("STOP STOP", "STOP"),
    ("Stop it", "STOP"), ("stop sending me these", "STOP"), ("STOP. Thanks", "STOP"),
    ("sorry, stop please", "STOP"), ("stop messaging me already", "STOP"), ("stop asap", "STOP"),
    ("Please stop sending me these texts thank you", "STOP"),  # 8 words, all filler
    ("stop job alerts", "STOP"), ("ok stop", "STOP"), ("hey stop texting me", "STOP"),
    ("Cancel my subscription", "CANCEL"), ("cancel it", "CANCEL"), ("Quit texting me", "QUIT"),
    ("end", "END"), ("End.", "END"), ("quit", "QUIT"), ("revoke", "REVOKE"),
    ("unsub", "UNSUBSCRIBE"),
])
def test_opt_outs(text, keyword):
    assert kind_and_keyword(text) == ("stop", keyword)


@pytest.mark.parametrize("text, keyword", [
    ("stpo", "STOP"), ("sotp", "STOP"), ("tsop", "STOP"), ("stopp", "STOP"), ("Stoppp!", "STOP"),
    ("sstop", "STOP"), ("stooooop", "STOP"), ("STPO please", "STOP"), ("sotp texting me", "STOP"),
    ("unsubscibe", "UNSUBSCRIBE"), ("unsubcribe", "UNSUBSCRIBE"), ("unsusbcribe", "UNSUBSCRIBE"),
    ("unsubscrib", "UNSUBSCRIBE"), ("Unsubscribed", "UNSUBSCRIBE"), ("unsbscrbe", "UNSUBSCRIBE"),
    ("cancle", "CANCEL"), ("cancell", "CANCEL"), ("cancl", "CANCEL"), ("cansel", "CANCEL"),
    ("optuot", "OPTOUT"), ("optout", "OPTOUT"), ("otpout", "OPTOUT"), ("revoek", "REVOKE"),
    ("stopal", "STOPALL"), ("stoppall", "STOPALL"),
])
def test_misspellings_of_opt_out_words(text, keyword):
    assert kind_and_keyword(text) == ("stop", keyword)


def test_misspelling_reason_names_the_typed_word():
    assert classify_reply("Stpo!") == ReplyIntent("stop", "STOP", "misspelling of STOP (stpo)")
    assert classify_reply("unsubscibe") == ReplyIntent(
        "stop", "UNSUBSCRIBE", "misspelling of UNSUBSCRIBE (unsubscibe)")
    assert classify_reply("unsub") == ReplyIntent("stop", "UNSUBSCRIBE", "variant of UNSUBSCRIBE (unsub)")


@pytest.mark.parametrize("text, reason", [
    ("STOP", "exact STOP"), ("Stop.", "exact STOP"), ("STOP STOP", "exact STOP"), ("opt-out", "exact OPTOUT"),
    ("STOP thank you", "first word STOP"), ("please stop", "STOP with filler"),
    ("hi", "ordinary reply"), ("", "no words"),
])
def test_reasons(text, reason):
    assert classify_reply(text).reason == reason


# --- near misses and ordinary replies --------------------------------------------------------------

NEAR_MISS_TEXTS = ["shop", "step", "stoop", "top", "spot", "post", "pots", "tops", "slop", "stow", "stool",
                   "stomp", "strop", "atop", "stops", "cancer", "chancel", "send", "and", "quite", "quiet",
                   "quiz", "ends", "evoke", "revote", "resubscribe", "stp", "sto", "st", "s", "en", "qit",
                   "ned", "Shop!", "STEP."]


@pytest.mark.parametrize("text", NEAR_MISS_TEXTS)
def test_near_miss_english_words_are_not_opt_outs(text):
    assert classify_reply(text) == ReplyIntent("other", "", "ordinary reply")


@pytest.mark.parametrize("word", sorted(NEAR_MISSES))
def test_the_deny_list_is_never_read_as_a_misspelling(word):
    assert misspelt_stop_word(word) is None
    assert classify_reply(word.lower()).kind == "other"


def test_filler_words_are_not_misspellings_or_keywords():
    for word in FILLER_WORDS:
        assert misspelt_stop_word(word) is None
        assert classify_reply(word).kind == "other"


ORDINARY = [
    "I can't stop thinking about the nursing job",
    "Don't stop sending these!",
    "When does the job end?",
    "Is the position still open or did they cancel it?",
    "Thanks, I will apply",
    "What time is the interview",
    "quit my job last week, looking for new ones",
    "end of the month works",
    "Stop by the office tomorrow at noon?",
    "stop by the office?",
    "Please don't stop",
    "help me find a job in Boston",
    "Can you help me with my resume?",
    "I need more info about the warehouse job",
    "more or less",
    "Tell me more",
    "no more",
    "yes please",
    "Yes I am interested",
    "ok",
    "Thank you!",
    "Who is this?",
    "Is this a scam",
    "Where do I start?",
    "I start Monday, thanks!",
    "Cancel my interview",
    "The job sounds great, how do I apply",
    "Send me the link again",
    "I quit",
    "end it now please stop texting me about jobs in Austin",  # 'ABOUT', 'IN', 'AUSTIN' are words
    "please stop sending me these texts thank you now",  # more than MAX_REPLY_WORDS words
    "Quite a few jobs, thanks",
    "Top pay?",
    "Are you hiring drivers in Dallas",
    "k thx",
    "STOPWATCH",
    "unstoppable",
    "restart",
    "subscribed?",
]


@pytest.mark.parametrize("text", ORDINARY)
def test_ordinary_replies_are_other(text):
    assert classify_reply(text) == ReplyIntent("other", "", "ordinary reply")


@pytest.mark.parametrize("text", ["", " ", "\n\t ", "!!!", "🛑", "👍", "... ???", "\u200b"])
def test_empty_or_symbol_only_text_is_other(text):
    assert classify_reply(text) == ReplyIntent("other", "", "no words")


@pytest.mark.parametrize("text, kind", [
    ("x" * 10_000, "other"), ("🛑" * 10_000, "other"),
    ("I can't stop thinking about the nursing job " * 230, "other"),
    ("stpo sotp " * 1_000, "other"), ("please stop thanks " * 500, "other"), ("unsubscribr " * 900, "stop"),
    ("stop " * 2_000, "stop"), (("please " * 1_400) + "stop", "stop"), ("STOP" + "X" * 10_000, "other"),
    ("S" * 10_000 + "TOP", "stop"),  # an elongated STOP, however long
])
def test_very_long_text_is_fast(text, kind):
    assert len(text.encode()) >= 9_000
    start = time.perf_counter()
    assert classify_reply(text).kind == kind
    assert time.perf_counter() - start < 0.2


def test_word_limit():
    eight = "please stop sending me these texts thank you"
    assert len(reply_words(eight)) == MAX_REPLY_WORDS
    assert classify_reply(eight).kind == "stop"
    assert classify_reply(eight + " now").kind == "other"


# --- help, start, more -----------------------------------------------------------------------------

@pytest.mark.parametrize("text, keyword", [
    ("HELP", "HELP"), ("help", "HELP"), ("Help!", "HELP"), ("help?", "HELP"), (" Help. ", "HELP"),
    ("INFO", "INFO"), ("info?", "INFO"), ("Info please", "INFO"), ("help me", "HELP"), ("help please", "HELP"),
    ("HELP HELP", "HELP"), ("more info", "INFO"), ("h e l p", "HELP"),
])
def test_help(text, keyword):
    assert kind_and_keyword(text) == ("help", keyword)


@pytest.mark.parametrize("word", HELP_WORDS)
def test_every_help_word_alone(word):
    assert classify_reply(f"{word.lower()}.") == ReplyIntent("help", word, f"exact {word}")


@pytest.mark.parametrize("text, keyword", [
    ("START", "START"), ("start", "START"), ("Start.", "START"), ("START please", "START"),
    ("start again", "START"), ("unstop", "UNSTOP"), ("UNSTOP!", "UNSTOP"), ("un-stop", "UNSTOP"),
    ("un stop", "UNSTOP"), ("yes", "YES"), ("Yes!", "YES"), ("YES YES", "YES"), ("subscribe", "SUBSCRIBE"),
    ("Subscribe me", "SUBSCRIBE"), ("start texting me again", "START"),
])
def test_start(text, keyword):
    assert kind_and_keyword(text) == ("start", keyword)


@pytest.mark.parametrize("word", START_WORDS)
def test_every_start_word_alone(word):
    assert classify_reply(word.title()) == ReplyIntent("start", word, f"exact {word}")


def test_yes_opts_in_only_alone():
    assert kind_and_keyword("yes") == ("start", "YES")
    assert kind_and_keyword("yes please") == ("other", "")
    assert kind_and_keyword("yes more") == ("more", "MORE")
    assert kind_and_keyword("Yes, stop") == ("stop", "STOP")


@pytest.mark.parametrize("text, more, keyword", [
    ("MORE", ("MORE",), "MORE"), ("more", ("MORE",), "MORE"), ("more!", ("MORE",), "MORE"),
    ("More please", ("MORE",), "MORE"), ("MORE JOBS", ("MORE",), "MORE"), ("more jobs please", ("MORE",), "MORE"),
    ("jobs", ("MORE", "JOBS"), "JOBS"), ("Jobs?", ("more", "jobs"), "JOBS"), ("MORE JOBS", ("MORE", "JOBS"), "MORE"),
    ("More jobs!", ("more jobs",), "MORE JOBS"), ("more  jobs please", ("More Jobs",), "MORE JOBS"),
    ("NEXT", ("next",), "NEXT"),
])
def test_more(text, more, keyword):
    assert kind_and_keyword(text, more) == ("more", keyword)


@pytest.mark.parametrize("text, more", [
    ("more", ("JOBS",)), ("more or less", ("MORE",)), ("no more", ("MORE",)), ("next", ("MORE",)),
    ("more", ()), ("more", ("", "  ", "!")), ("Tell me more", ("MORE",)),
])
def test_not_more(text, more):
    assert kind_and_keyword(text, more) == ("other", "")


def test_tenant_keyword_cannot_shadow_carrier_keywords():
    assert kind_and_keyword("stop", ("STOP",)) == ("stop", "STOP")
    assert kind_and_keyword("help", ("HELP", "MORE")) == ("help", "HELP")
    assert kind_and_keyword("yes", ("YES",)) == ("start", "YES")


# --- priority -------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("STOP START", ("stop", "STOP")), ("start stop", ("stop", "STOP")), ("help stop", ("stop", "STOP")),
    ("STOP HELP", ("stop", "STOP")), ("more stop", ("stop", "STOP")), ("stop more", ("stop", "STOP")),
    ("unstop stop", ("stop", "STOP")), ("stpo start", ("stop", "STOP")),
    ("START HELP", ("start", "START")), ("help start", ("start", "START")), ("more start", ("start", "START")),
    ("HELP MORE", ("help", "HELP")), ("more help", ("help", "HELP")), ("more info", ("help", "INFO")),
])
def test_priority_stop_start_help_more(text, expected):
    assert kind_and_keyword(text) == expected


def test_priority_reason_names_the_outranked_keywords():
    assert classify_reply("help stop").reason == "STOP outranks HELP"
    assert classify_reply("more help more").reason == "HELP outranks MORE"


def test_exact_keyword_preferred_over_misspelling_of_the_same_kind():
    assert classify_reply("stpo stop") == ReplyIntent("stop", "STOP", "exact STOP")
    assert classify_reply("sotp, STOP thanks") == ReplyIntent("stop", "STOP", "STOP with filler")


# --- normalisation --------------------------------------------------------------------------------

@pytest.mark.parametrize("text, words", [
    ("  Stop!!  please ", ("STOP", "PLEASE")),
    ("opt-out", ("OPTOUT",)),
    ("Opt_out", ("OPTOUT",)),
    ("don't stop", ("DONT", "STOP")),
    ("don\u2019t", ("DONT",)),
    ("opt\u2011out", ("OPTOUT",)),
    ("stop stop", ("STOP", "STOP")),
    ("-stop-", ("STOP",)),
    ("stop🛑now", ("STOP", "NOW")),
    ("ＳＴＯＰ", ("STOP",)),
    ("stop,please", ("STOP", "PLEASE")),
    ("", ()),
])
def test_reply_words(text, words):
    assert reply_words(text) == words


# --- confirmations --------------------------------------------------------------------------------

def test_confirmation_texts():
    brand = "Jobs Nearby"
    assert confirmation_text(classify_reply("stop"), brand) == (
        "Jobs Nearby: You are unsubscribed and will receive no more messages. Reply START to resubscribe.")
    assert confirmation_text(classify_reply("help"), brand) == (
        "Jobs Nearby job alerts. Msg&data rates may apply. Reply STOP to opt out.")
    assert confirmation_text(classify_reply("info"), brand, "support@jobsnearby.example") == (
        "Jobs Nearby job alerts. Msg&data rates may apply. Reply STOP to opt out. Help: support@jobsnearby.example")
    assert confirmation_text(classify_reply("start"), brand) == (
        "Jobs Nearby: You are subscribed to job alerts again. Reply STOP to opt out.")
    assert confirmation_text(classify_reply("more"), brand) == "Jobs Nearby: More jobs are on their way."
    assert confirmation_text(classify_reply("Thanks, I will apply"), brand) is None
    assert confirmation_text(classify_reply(""), brand) is None


def test_blank_help_contact_is_left_out():
    assert confirmation_text(ReplyIntent("help", "HELP", "exact HELP"), "Acme", "  ").endswith("opt out.")


@pytest.mark.parametrize("text", ["stop", "help", "start", "more"])
def test_confirmations_fit_one_gsm_segment(text):
    body = confirmation_text(classify_reply(text), "Jobs Nearby", "+1 512 555 0100")
    assert encoding(body) == "GSM-7"
    assert segments(body)[0] == 1


def test_intent_is_frozen():
    intent = classify_reply("stop")
    with pytest.raises(AttributeError):
        intent.kind = "other"  # type: ignore[misc]
