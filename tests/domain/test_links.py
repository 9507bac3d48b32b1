import base64
import re

import pytest

from domain.links import (LinkRecord, TamperedToken, UnknownKey, base62, is_code, seal, tracked_url,
                          unbase62, unseal)

KEY_OLD = bytes(range(32))
KEY_NEW = bytes(range(32, 64))
NONCE = b"\x01" * 12
PAYLOAD = {"lead_id": "01HZX", "email": "ada@example.com", "list": "daily-jobs"}


@pytest.mark.parametrize("n", [0, 1, 61, 62, 63, 3843, 3844, 10**6, 2**63 - 1, 10**30])
def test_base62_round_trip(n):
    assert unbase62(base62(n)) == n


def test_base62_known_values_and_ordering():
    assert [base62(n) for n in (0, 9, 10, 35, 36, 61, 62, 3844)] == ["0", "9", "A", "Z", "a", "z", "10", "100"]
    assert len(base62(56_800_235_583)) == 6  # 62**6 - 1: six characters cover 56 billion links


@pytest.mark.parametrize("bad", ["", "ab-c", "ab c", "é", "a/b"])
def test_unbase62_refuses_foreign_text(bad):
    with pytest.raises(ValueError):
        unbase62(bad)


def test_base62_refuses_negative():
    with pytest.raises(ValueError):
        base62(-1)


def test_tracked_url_per_kind():
    base = "https://t.jobsnearby.example/"
    assert tracked_url(base, "click", "G9") == "https://t.jobsnearby.example/c/G9"
    assert tracked_url(base, "open", "G9") == "https://t.jobsnearby.example/o/G9"
    assert tracked_url(base, "unsubscribe", "G9") == "https://t.jobsnearby.example/u/G9"
    assert tracked_url(base, "preferences", "G9") == "https://t.jobsnearby.example/p/G9"


@pytest.mark.parametrize("kind,code", [("redirect", "G9"), ("click", ""), ("click", "a.b"), ("click", "x" * 21)])
def test_tracked_url_refuses_bad_kind_or_code(kind, code):
    with pytest.raises(ValueError):
        tracked_url("https://t.example", kind, code)


def test_is_code():
    assert is_code("1Ie") and not is_code("") and not is_code("../x") and not is_code("%2e")


def test_link_record_round_trips_and_ignores_unknown_fields():
    rec = LinkRecord(code="G9", kind="click", send_id="S1", tenant="acme", lead_id="L1",
                     destination_url="https://jobs.example/1", job_key="acme:feed:1", position=1,
                     cpc_cents=40, list="daily", template="abc", campaign="c", creative="",
                     created_ms=5, slot="job")
    assert LinkRecord.from_dict(rec.to_dict() | {"added_later": 1}) == rec


def test_seal_round_trip_is_url_safe_and_opaque():
    token = seal(PAYLOAD, KEY_OLD, "k2024", NONCE)
    assert re.fullmatch(r"[A-Za-z0-9._-]+", token)
    assert unseal(token, {"k2024": KEY_OLD}) == PAYLOAD
    body = token.split(".")[2]
    raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    assert b"ada@example.com" not in raw and "ada" not in token


def test_seal_differs_per_nonce():
    assert seal(PAYLOAD, KEY_OLD, "k1", NONCE) != seal(PAYLOAD, KEY_OLD, "k1", b"\x02" * 12)


def test_any_changed_character_is_refused():
    token = seal(PAYLOAD, KEY_OLD, "k1", NONCE)
    head = len("v1.k1.")
    for i in range(head, len(token)):
        swapped = "A" if token[i] != "A" else "B"
        forged = token[:i] + swapped + token[i + 1:]
        with pytest.raises(TamperedToken):
            unseal(forged, {"k1": KEY_OLD})


@pytest.mark.parametrize("mangle", [
    lambda t: t[:-5],  # truncated
    lambda t: t + "AAAA",  # extended
    lambda t: "v2" + t[2:],  # another format version
    lambda t: t.replace(".", "", 1),  # missing a part
    lambda t: "v1.k1.!!!!",  # not base64
    lambda t: "v1.k1.",  # empty body
])
def test_mangled_tokens_are_refused(mangle):
    token = seal(PAYLOAD, KEY_OLD, "k1", NONCE)
    with pytest.raises(TamperedToken):
        unseal(mangle(token), {"k1": KEY_OLD})


def test_key_id_is_authenticated():
    # Relabelling a token with another key id we hold must not open it under that key.
    token = seal(PAYLOAD, KEY_OLD, "k1", NONCE)
    relabelled = token.replace("v1.k1.", "v1.k2.")
    with pytest.raises(TamperedToken):
        unseal(relabelled, {"k1": KEY_OLD, "k2": KEY_OLD})


def test_rotation_old_key_id_still_opens_unknown_refused():
    old = seal(PAYLOAD, KEY_OLD, "k1", NONCE)
    new = seal(PAYLOAD, KEY_NEW, "k2", NONCE)
    ring = {"k1": KEY_OLD, "k2": KEY_NEW}
    assert unseal(old, ring) == unseal(new, ring) == PAYLOAD
    with pytest.raises(UnknownKey):
        unseal(old, {"k2": KEY_NEW})  # k1 retired
    with pytest.raises(TamperedToken):  # UnknownKey is a TamperedToken: one except refuses both
        unseal(old, {"k2": KEY_NEW})


def test_wrong_key_under_right_id_is_refused():
    token = seal(PAYLOAD, KEY_OLD, "k1", NONCE)
    with pytest.raises(TamperedToken):
        unseal(token, {"k1": KEY_NEW})


@pytest.mark.parametrize("key_id,nonce", [("k.1", NONCE), ("", NONCE), ("k1", b"short")])
def test_seal_refuses_bad_key_id_or_nonce(key_id, nonce):
    with pytest.raises(ValueError):
        seal(PAYLOAD, KEY_OLD, key_id, nonce)


def test_every_spelling_but_the_canonical_one_is_refused():
    # The last base64 character carries spare bits a lenient decoder ignores: a token is one
    # exact string, so no variant of it opens.
    token = next(t for t in (seal({"pad": "x" * k}, KEY_OLD, "k1", NONCE) for k in range(3))
                 if len(t.split(".")[2]) % 4)  # a length with spare bits in the last character
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for c in alphabet.replace(token[-1], ""):
        with pytest.raises(TamperedToken):
            unseal(token[:-1] + c, {"k1": KEY_OLD})
