"""A refused queue message's dead letter: its shape and the values naming nobody, nothing else."""
import orjson

from domain.redaction import BLANK, redacted_json


def test_a_leads_personal_values_are_blanked_and_its_shape_kept():
    lead = {"tenant": "acme", "lead": {"email": "ann@example.com", "phone": "+15125550100", "first_name": "Ann",
                                       "partner": "indeed", "list": "daily", "mial": "typo@example.com",
                                       "location": {"zip": "78701", "lat": 30.2, "country": "US"},
                                       "attribution": {"utm": "x"}, "interests": {"keywords": ["nurse"]},
                                       "consent": {"at": "2026-12-01T09:00:00Z", "ip": "203.0.113.9", "text": "Yes"}}}
    out = orjson.loads(redacted_json(orjson.dumps(lead)))
    assert out["tenant"] == "acme" and out["lead"]["partner"] == "indeed" and out["lead"]["list"] == "daily"
    assert out["lead"]["location"] == {"zip": BLANK, "lat": BLANK, "country": "US"}
    assert out["lead"]["consent"] == {"at": "2026-12-01T09:00:00Z", "ip": BLANK, "text": BLANK}
    for f in ("email", "phone", "first_name", "mial"):
        assert out["lead"][f] == BLANK
    assert out["lead"]["interests"] == {"keywords": [BLANK]} and out["lead"]["attribution"] == {"utm": BLANK}


def test_a_product_events_properties_are_blanked_and_its_name_kept():
    ev = {"tenant": "acme", "event": {"email": "bo@example.com", "name": "job_viewed", "idempotency_key": "k1",
                                      "properties": {"title": "Nurse", "salary": 52000, "remote": None}}}
    out = orjson.loads(redacted_json(orjson.dumps(ev)))
    assert out == {"tenant": "acme", "event": {"email": BLANK, "name": "job_viewed", "idempotency_key": "k1",
                                               "properties": {"title": BLANK, "salary": BLANK, "remote": None}}}


def test_what_is_not_a_json_object_is_not_kept_at_all():
    for raw in (b'{"tenant": "acme", "lead": {"email": "ann@exa', b'["ann@example.com"]', b'"ann@example.com"',
                b"", None, b"\xff\xfe"):
        assert redacted_json(raw) == b""
