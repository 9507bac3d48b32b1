import pytest

from domain.sms_text import GSM_BASIC, GSM_EXTENSION, encoding, fit, normalise_for_gsm, segments

LOREM = ("New jobs near you today: warehouse associate, forklift driver, night shift picker, "
         "delivery driver and more. Tap the link to see pay, hours and apply in one minute. ")


def test_tables_follow_gsm_03_38():
    assert len(GSM_BASIC) == 127  # 128 codes, less the escape
    assert GSM_EXTENSION == set("\f^{}\\[]~|€")
    assert {"@", "£", "¥", "è", "Ç", "Δ", "Ξ", "¤", "¡", "§", "¿", "à", "\n", "\r"} <= GSM_BASIC
    assert not {"`", "ç", "ê", "\x1b", "\t"} & GSM_BASIC


@pytest.mark.parametrize("text, expected", [
    ("a" * 160, (1, 160, 160)),
    ("a" * 161, (2, 161, 153)),
    ("a" * 306, (2, 306, 153)),
    ("a" * 307, (3, 307, 153)),
    ("", (0, 0, 160)),
])
def test_gsm_segments(text, expected):
    assert encoding(text) == "GSM-7"
    assert segments(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("€" * 80, (1, 160, 160)),
    ("{" * 81, (2, 162, 153)),
    ("a" + "^" * 80, (2, 161, 153)),
    ("[]~|\\" + "a" * 150, (1, 160, 160)),
])
def test_extension_characters_count_double(text, expected):
    assert encoding(text) == "GSM-7"
    assert segments(text) == expected


def test_an_escape_pair_is_never_split_across_segments():
    # 306 septets would fit two segments of 153, but the euro cannot straddle the boundary.
    assert segments("a" * 152 + "€" + "a" * 151) == (2, 305, 153)
    assert segments("a" * 152 + "€" + "a" * 152) == (3, 306, 153)


@pytest.mark.parametrize("text, expected", [
    ("😀" + "a" * 68, (1, 70, 70)),        # an emoji is two UTF-16 units
    ("😀" + "a" * 69, (2, 71, 67)),
    ("ê" * 70, (1, 70, 70)),
    ("ê" * 134, (2, 134, 67)),
    ("ê" * 135, (3, 135, 67)),
    ("a" * 66 + "😀" + "a" * 66, (3, 134, 67)),  # the surrogate pair moves to segment two
])
def test_one_non_gsm_character_makes_it_ucs2(text, expected):
    assert encoding(text) == "UCS-2"
    assert segments(text) == expected


def test_fit_leaves_a_fitting_message_alone():
    assert fit("Hi Ann, 3 new jobs", 1) == "Hi Ann, 3 new jobs"


@pytest.mark.parametrize("max_segments", [1, 2, 3])
def test_fit_cuts_gsm_at_a_word_and_adds_three_dots(max_segments):
    text = LOREM * 5
    out = fit(text, max_segments)
    assert out.endswith("...") and encoding(out) == "GSM-7"
    assert segments(out)[0] == max_segments
    body = out[:-3]
    assert text.startswith(body) and text[len(body)] in " ,."  # the cut is at a word's end
    assert len(out) > (153 if max_segments > 1 else 160) * max_segments - 25  # no waste


def test_fit_in_ucs2_uses_the_ellipsis_character():
    text = "😀 " + LOREM
    out = fit(text, 1)
    assert out.endswith("…") and encoding(out) == "UCS-2"
    assert segments(out)[0] == 1 and text.startswith(out[:-1])


def test_fit_drops_back_to_gsm_when_the_only_emoji_is_cut_off():
    text = LOREM + "😀 see you"
    out = fit(text, 1)
    assert out.endswith("...") and encoding(out) == "GSM-7" and len(out) > 150


def test_fit_hard_cuts_a_single_long_word():
    out = fit("x" * 400, 1)
    assert out == "x" * 157 + "..."


def test_fit_needs_at_least_one_segment():
    with pytest.raises(ValueError, match="at least 1"):
        fit("hello", 0)


def test_normalise_for_gsm_keeps_the_message_in_gsm7():
    smart = "\u201cGreat\u201d pay \u2013 it\u2019s 9\u201317h\u2026 apply\u00a0now \u2014 \u2018today\u2019"
    assert encoding(smart) == "UCS-2"
    plain = normalise_for_gsm(smart)
    assert plain == "\"Great\" pay - it's 9-17h... apply now - 'today'"
    assert encoding(plain) == "GSM-7"
    assert normalise_for_gsm("caf\u00e9\u200b ok") == "caf\u00e9 ok"  # zero-width space removed
    assert encoding(normalise_for_gsm("hi 😀")) == "UCS-2"  # real emoji are left to the author


def test_a_full_stop_after_an_abbreviation_or_ellipsis_is_not_doubled():
    from domain.sms_text import tidy_punctuation
    assert tidy_punctuation("Cashier at Urban Outfit Co.. Apply: https://t.example/c/Ab9") == \
        "Cashier at Urban Outfit Co. Apply: https://t.example/c/Ab9"
    assert tidy_punctuation("Driver at Acme Inc... . Apply") == "Driver at Acme Inc... . Apply"
    assert tidy_punctuation("Supervisor.... Apply") == "Supervisor... Apply"
    assert tidy_punctuation("Now hiring!. Apply") == "Now hiring! Apply"
    assert tidy_punctuation("Cook , Austin .") == "Cook, Austin."
    assert tidy_punctuation("wait...") == "wait..."


def test_shorten_words_and_fold_to_gsm():
    from domain.sms_text import fold_to_gsm, shorten_words
    assert shorten_words("Senior Warehouse Operations Supervisor", 24) == "Senior Warehouse..."
    assert shorten_words("Line Cook", 24) == "Line Cook"
    assert len(shorten_words("x" * 50, 20)) <= 20
    with pytest.raises(ValueError):
        shorten_words("abc", 3)
    assert fold_to_gsm("Zoë Nguyễn, Łódź, café") == "Zoe Nguyen, Łodz, café"  # é is GSM; Ł has no plain form
    assert encoding(fold_to_gsm("Zoë Nguyễn")) == "GSM-7"
