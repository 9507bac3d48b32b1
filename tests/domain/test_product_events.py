"""Product events in, pure: the input's checks, person resolution, and platform events as triggers."""
import json

import pytest
from pydantic import ValidationError

from domain.identity import LeadIds
from domain.product_events import (EventError, EventIn, as_trigger_event, event_time, person_lead_id,
                                   product_event_id, properties_json, tracked)

NOW = 1_796_400_000_000
IDS = LeadIds("a-test-lead-id-secret")
lead_id = IDS.of


def ev(**over) -> EventIn:
    return EventIn.model_validate({"email": "Ana@Example.com", "name": "job_viewed"} | over)


@pytest.mark.parametrize("doc,problem", [
    ({"email": None}, "exactly one of lead_id, email, phone"),
    ({"phone": "+14155550100"}, "exactly one"),
    ({"name": "Job Viewed"}, "not an event name"),
    ({"name": "email.clicked"}, "platform event name"),
    ({"name": "lead.accepted"}, "platform event name"),
    ({"properties": {"bad key": 1}}, "not a property name"),
    ({"properties": {f"p{i}": i for i in range(51)}}, "at most 50"),
    ({"properties": {"nested": {"a": 1}}}, "properties.nested"),
    ({"properties": {"t": "x" * 1001}}, "1,000 characters"),
    ({"properties": {"t": "ls1.AAAA"}}, "how sealed values are written"),
    ({"at": "2026-12-04T09:00:00"}, "time zone"),
    ({"surprise": 1}, "Extra inputs"),
])
def test_bad_events_are_refused_with_the_field(doc, problem):
    with pytest.raises(ValidationError) as exc:
        ev(**doc)
    assert problem in str(exc.value)


def test_the_person_resolves_as_the_intake_derives_lead_ids():
    assert person_lead_id(ev(), "hireflow", "US", IDS) == lead_id("hireflow", "email", "ana@example.com")
    phone = EventIn.model_validate({"phone": "(415) 555-0100", "name": "x"})
    assert person_lead_id(phone, "hireflow", "US", IDS) == lead_id("hireflow", "sms", "+14155550100")
    assert person_lead_id(EventIn.model_validate({"lead_id": "abc", "name": "x"}), "t", "US", IDS) == "abc"


def test_properties_are_sized_and_time_is_bounded():
    assert properties_json({"b": 1, "a": [1, "x"]}, 4096) == '{"a":[1,"x"],"b":1}'
    with pytest.raises(EventError) as exc:
        properties_json({"a": "x" * 900, "b": "y" * 900}, 1024)
    assert exc.value.field == "properties"
    assert event_time(ev(), NOW) == NOW
    with pytest.raises(EventError, match="future"):
        event_time(ev(at="2099-01-01T00:00:00Z"), NOW)
    with pytest.raises(EventError, match="30 days"):
        event_time(ev(at="2020-01-01T00:00:00Z"), NOW)


def test_an_idempotency_key_fixes_the_event_id():
    assert product_event_id("t", "k1", "FRESH1") == product_event_id("t", "k1", "FRESH2") != "FRESH1"
    assert product_event_id("t", "k1", "F") != product_event_id("u", "k1", "F")
    assert product_event_id("t", None, "FRESH") == "FRESH"
    doc = tracked(ev(properties={"job_id": "J1"}, idempotency_key="k1"), "t", "L1", False, "E1", NOW, 4096)
    assert doc["resolved"] is False and json.loads(doc["properties"]) == {"job_id": "J1"} and doc["email"] is None


def test_platform_events_as_trigger_events_people_only():
    click = {"channel": "email", "is_bot": False, "revision": 0, "list": "nurses", "template": "t", "job_key": "j"}
    assert as_trigger_event("engagement.clicked", click)[0] == "email.clicked"
    assert as_trigger_event("engagement.clicked", {**click, "channel": "sms"})[0] == "sms.clicked"
    assert as_trigger_event("engagement.clicked", {**click, "is_bot": True}) is None  # a machine starts nothing
    assert as_trigger_event("engagement.clicked", {**click, "revision": 1}) is None  # a revision is not a new click
    assert as_trigger_event("engagement.opened", {**click, "channel": "sms"}) is None
    assert as_trigger_event("lead.accepted", {"list": "nurses", "partner": "p", "channel": "email"}) == \
        ("lead.accepted", {"list": "nurses", "partner": "p", "channel": "email"})
    assert as_trigger_event("engagement.replied", {"intent": "stop", "keyword": "STOP"})[0] == "sms.replied"
    assert as_trigger_event("product.tracked", {"name": "job_viewed", "properties": '{"a":1}'}) == ("job_viewed", {"a": 1})
    assert as_trigger_event("send.dispatched", {}) is None
