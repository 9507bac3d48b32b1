"""Configuration as entities: keys, checks, decide/evolve, the file in and out, the compiled book."""
import copy

import pytest
import yaml

from domain.api_keys import hash_key, key_id_for
from domain.config_book import compile_book, entities_from_file, file_from_entities
from domain.config_changes import Change, Refused, decide, diff, evolve, merge_patch, redact
from domain.config_entities import Ref, check_entity, parse_key
from streams.settings import ROOT

DEMO = yaml.safe_load((ROOT / "tenants" / "demo.yaml").read_text())
KEY = "ls_acme_" + "0" * 32


def _doc():
    return {"tenants": {"acme": {"name": "Acme", "channels": ["email", "sms"], "api_key_sha256": [hash_key(KEY)],
                                 "partners": ["feed"],
                                 "templates": {"alert": {"channel": "email"}},
                                 "lists": {"daily": {"channel": "email", "template": "alert"},
                                           "texts": {"channel": "sms", "send_time": "10:00"}}}},
            "people": {"ann@example.com": {"name": "Ann"}},
            "grants": [{"person": "ann@example.com", "role": "analyst", "tenant": "acme"}]}


def _state(doc=None):
    live, problems = entities_from_file(doc or _doc())
    assert problems == []
    state = {}
    from services.config_import import ORDER
    for i, (ref, data) in enumerate(sorted(live.items(), key=lambda x: (ORDER.index(x[0].kind), x[0].key))):
        _, ev = decide(state, Change("upsert", ref, data), 1000 + i, f"E{i:025d}")
        evolve(state, ev)
    return state


# --- keys ---------------------------------------------------------------------------------

@pytest.mark.parametrize("key, ref", [
    ("tenant:acme", Ref("tenant", None, "acme")),
    ("list:acme/daily", Ref("list", "acme", "daily")),
    ("grant:acme/ann@example.com/partner/feed", Ref("grant", "acme", "ann@example.com/partner/feed")),
    ("grant:*/ann@example.com/platform_admin", Ref("grant", None, "ann@example.com/platform_admin")),
    ("api_key:*/k_0123456789ab", Ref("api_key", None, "k_0123456789ab")),
    ("api_key:acme/k_0123456789ab", Ref("api_key", "acme", "k_0123456789ab")),
    ("person:ann@example.com", Ref("person", None, "ann@example.com")),
])
def test_entity_keys_round_trip(key, ref):
    assert parse_key(key) == ref and ref.key == key


@pytest.mark.parametrize("bad", ["", "nope:x", "list:acme", "list:", "tenant", "api_key:k_0123456789ab"])
def test_a_bad_key_is_refused(bad):
    with pytest.raises(ValueError):
        parse_key(bad)


# --- one entity's checks ----------------------------------------------------------------------

def test_a_list_problem_names_the_field_path_as_the_tenant_file_does():
    model, problems = check_entity(Ref("list", "acme", "daily-jobs"), {"channel": "email", "send_time": "25:00"})
    assert model is None
    assert problems == [("lists.daily-jobs.send_time",
                         '"25:00" is not a time of day: HH:MM on a 24-hour clock (e.g. "09:00", "17:30")')]


@pytest.mark.parametrize("ref, data, path", [
    (Ref("list", "acme", "Daily Jobs"), {"channel": "email"}, "lists.Daily Jobs"),
    (Ref("list", "acme", "d"), {"channel": "fax"}, "lists.d.channel"),
    (Ref("list", "acme", "d"), {"channel": "email", "cadence": "hourly"}, "lists.d.cadence"),
    (Ref("list", "acme", "d"), {"channel": "email", "surprise": 1}, "lists.d.surprise"),
    (Ref("list", "acme", "d"), {"channel": "email", "rules": {"carriers": {"unknown": "maybe"}}},
     "lists.d.rules.carriers.unknown"),
    (Ref("feed", "acme", "f"), {"name": "g", "url": "https://x"}, "feeds.f.name"),
    (Ref("person", None, "ann@example.com"), {"email": "bob@example.com"}, "people.ann@example.com.email"),
    (Ref("person", None, "ann@example.com"), {"email": "ann@example.com", "password_hash": "plain"},
     "people.ann@example.com.password_hash"),
    (Ref("api_key", "acme", "k_000000000000"), {"sha256": hash_key("x"), "tenant": "acme"}, "api_keys.k_000000000000.sha256"),
    (Ref("api_key", "acme", key_id_for(hash_key("x"))), {"sha256": hash_key("x"), "tenant": "acme", "role": "partner"},
     f"api_keys.{key_id_for(hash_key('x'))}.partner"),
    (Ref("grant", "acme", "ann@example.com/partner"), {"person": "ann@example.com", "role": "partner", "tenant": "acme"},
     "grants.ann@example.com/partner"),
])
def test_entity_checks_name_what_is_wrong(ref, data, path):
    model, problems = check_entity(ref, data)
    assert model is None and any(p.startswith(path) for p, _ in problems), problems


# --- decide / evolve ---------------------------------------------------------------------------

def test_create_replace_delete_with_versions():
    state = _state()
    ref = Ref("list", "acme", "weekly")
    _, ev = decide(state, Change("create", ref, {"channel": "email", "cadence": "weekly"}, actor="person:a"), 5, "E1")
    assert ev["version"] == 1 and ev["entity_key"] == "list:acme/weekly" and ev["actor"] == "person:a"
    evolve(state, ev)
    with pytest.raises(Refused) as e:
        decide(state, Change("create", ref, {"channel": "email"}), 6, "E2")
    assert e.value.status == 409
    with pytest.raises(Refused) as e:
        decide(state, Change("replace", ref, {"channel": "email"}), 6, "E2")
    assert e.value.status == 428
    with pytest.raises(Refused) as e:
        decide(state, Change("replace", ref, {"channel": "email"}, expected_version=0), 6, "E2")
    assert e.value.status == 412
    name, ev = decide(state, Change("replace", ref, {"channel": "email", "send_time": "07:00"}, expected_version=1), 6, "E2")
    assert name == "config.list.upserted" and ev["version"] == 2
    assert {"path": "send_time", "before": "09:00", "after": "07:00"} in __import__("json").loads(ev["change"])
    evolve(state, ev)
    name, ev = decide(state, Change("delete", ref, expected_version=2), 7, "E3")
    assert name == "config.list.deleted" and ev["data"] is None and ev["version"] == 3
    evolve(state, ev)
    assert not state[ref.key].live
    with pytest.raises(Refused) as e:
        decide(state, Change("delete", ref, expected_version=3), 8, "E4")
    assert e.value.status == 404
    _, ev = decide(state, Change("create", ref, {"channel": "email"}), 9, "E5")
    assert ev["version"] == 4  # versions never go back, so an old ETag never matches again


def test_an_upsert_of_equal_data_changes_nothing_and_evolve_ignores_old_versions():
    state = _state()
    ref = Ref("list", "acme", "daily")
    assert decide(state, Change("upsert", ref, dict(state[ref.key].data)), 5, "E1") is None
    before = dict(state)
    _, ev = decide(state, Change("upsert", ref, {**state[ref.key].data, "send_time": "08:00"}), 5, "E1")
    evolve(state, ev)
    assert evolve(state, {**ev, "data": '{"channel": "sms"}'}) [ref.key].data["send_time"] == "08:00"
    assert before[ref.key].version + 1 == state[ref.key].version


@pytest.mark.parametrize("ref, data, field", [
    (Ref("list", "acme", "daily"), {"channel": "email", "providers": ["pigeon"]}, "lists.daily.providers[0]"),
    (Ref("list", "acme", "daily"), {"channel": "email", "template": "missing"}, "lists.daily.template"),
    (Ref("list", "acme", "daily"), {"channel": "email", "rules": {"intake": {"partners": ["ghost"]}}},
     "lists.daily.rules.intake.partners[0]"),
    (Ref("list", "acme", "daily"), {"channel": "sms", "template": "alert"}, "lists.daily.template"),
    (Ref("tenant", None, "acme"), {"name": "Acme", "channels": ["email"]}, "lists.texts.channel"),
    (Ref("tenant", None, "acme"), {"name": "Acme", "sending": {"email": ["smtp", "carrier-pigeon"]}},
     "tenants.acme.sending.email[1]"),
    (Ref("grant", "acme", "bob@example.com/analyst"), {"person": "bob@example.com", "role": "analyst", "tenant": "acme"},
     "grants.bob@example.com/analyst.person"),
    (Ref("list", "ghost", "daily"), {"channel": "email"}, "lists.daily"),
])
def test_a_change_that_breaks_a_reference_is_refused_whole(ref, data, field):
    state = _state()
    snapshot = copy.deepcopy(state)
    with pytest.raises(Refused) as e:
        decide(state, Change("upsert", ref, data), 5, "E1")
    assert e.value.status == 422
    assert any(p.startswith(field.split(".channel")[0]) for p, _ in e.value.problems), e.value.problems
    assert state == snapshot  # nothing applied


@pytest.mark.parametrize("ref, user", [
    (Ref("template", "acme", "alert"), "list:acme/daily"),
    (Ref("partner", "acme", "feed"), None),
    (Ref("person", None, "ann@example.com"), "grant:acme/ann@example.com/analyst"),
    (Ref("tenant", None, "acme"), "list:acme/daily"),
])
def test_deleting_what_is_still_used_is_a_conflict(ref, user):
    doc = _doc()
    doc["tenants"]["acme"]["lists"]["daily"]["rules"] = {"intake": {"partners": ["feed"]}}
    state = _state(doc)
    with pytest.raises(Refused) as e:
        decide(state, Change("delete", ref, expected_version=state[ref.key].version), 5, "E1")
    assert e.value.status == 409 and (user is None or user in e.value.message)


# --- the tenant file ------------------------------------------------------------------------

def test_the_demo_file_round_trips_through_entities():
    live, problems = entities_from_file(copy.deepcopy(DEMO))
    assert problems == []
    kinds = {r.kind for r in live}
    assert {"platform", "tenant", "list", "partner", "template", "webhook", "feed", "api_key", "person", "grant"} <= kinds
    again, problems = entities_from_file(file_from_entities(live))
    assert problems == [] and again == live


def test_every_problem_of_a_file_is_reported_with_its_path():
    doc = copy.deepcopy(DEMO)
    doc["tenants"]["jobsnearby"]["lists"]["daily-jobs"]["send_time"] = "25:00"
    doc["tenants"]["hireflow"]["sending"]["email"] = ["pigeon"]
    doc["tenants"]["shiftly"]["lists"]["shifts-sms"]["channel"] = "fax"
    doc["surprise"] = True
    live, problems = entities_from_file(doc)
    paths = [p for p, _ in problems]
    assert live == {}
    assert "tenants.jobsnearby.lists.daily-jobs.send_time" in paths
    assert "tenants.hireflow.sending.email[0]" in paths
    assert "tenants.shiftly.lists.shifts-sms.channel" in paths
    assert "surprise" in paths


def test_the_compiled_book_holds_keys_people_and_grants():
    book = compile_book({r: d for r, d in entities_from_file(_doc())[0].items()}, version=7)
    assert book.version == 7
    assert book.key_for(KEY, 0).tenant == "acme" and book.tenant_for_key(KEY).id == "acme"
    assert book.people["ann@example.com"].name == "Ann"
    assert [g.role for g in book.grants_of("ann@example.com")] == ["analyst"]
    assert book.tenants["acme"].template_of("daily") == "alert" and book.tenants["acme"].template_of("texts") == "texts"


def test_revoked_and_expired_keys_do_not_open_anything():
    live = entities_from_file(_doc())[0]
    ref = Ref("api_key", "acme", key_id_for(hash_key(KEY)))
    live[ref] = {**live[ref], "revoked": True}
    assert compile_book(live).key_for(KEY, 0) is None
    live[ref] = {**live[ref], "revoked": False, "expires_at_ms": 1000}
    book = compile_book(live)
    assert book.key_for(KEY, 999) is not None and book.key_for(KEY, 1000) is None


# --- small helpers ---------------------------------------------------------------------------

def test_diff_patch_and_redaction():
    assert diff({"a": 1, "b": {"c": 2}}, {"a": 1, "b": {"c": 3}, "d": 4}) == [
        {"path": "b.c", "before": 2, "after": 3}, {"path": "d", "before": None, "after": 4}]
    assert merge_patch({"a": 1, "b": {"c": 2, "d": 3}}, {"b": {"c": None, "e": 5}, "f": 6}) == \
        {"a": 1, "b": {"d": 3, "e": 5}, "f": 6}
    assert redact("webhook", {"url": "u", "secret": "s"}) == {"url": "u", "secret": "(secret)"}
    assert redact("person", {"password_hash": "$argon2id$x"})["password_hash"] == "(secret)"
