"""Every processor runs over every example payload (CONVENTIONS 3)."""
import json
from datetime import datetime

import pytest

from domain.intake import check_submission, decide, decide_unsubscribe, evolve
from domain.preferences import decide_preferences
from projections.clickhouse import EVENT_COLUMNS
from projections.event_rows import event_row
from schemas.codec import SCHEMA_DIR, default_codec
from streams.settings import ROOT, load_tenants

EXAMPLES = sorted(SCHEMA_DIR.glob("*/examples/*.json"))
EVENT_EXAMPLES = [p for p in EXAMPLES if p.parent.parent.name != "config"]  # config: tests/projections
TENANTS = load_tenants(ROOT / "tenants" / "demo.yaml")


def _decoded(path):
    name = f"{path.parent.parent.name}.{path.name.rsplit('.', 2)[0]}"
    return default_codec().decode(default_codec().encode(name, json.loads(path.read_text())))


@pytest.mark.parametrize("path", EVENT_EXAMPLES, ids=lambda p: p.name)
def test_analytics_row_for_every_example(path):
    name, ev = _decoded(path)
    row = event_row(name, ev, "leads.events", 3, 42, datetime(2026, 11, 25))
    assert len(row) == len(EVENT_COLUMNS)
    rec = dict(zip(EVENT_COLUMNS, row))
    assert rec["event_id"] == ev["event_id"] and rec["event_type"] == name
    assert rec["tenant"] == "jobsnearby" and rec["offset"] == 42
    assert json.loads(rec["payload"]).get("lead_id") == ev.get("lead_id")
    assert rec["lead_id"] == (ev.get("lead_id") or ev.get("author_lead_id") or "")  # a post counts for its author


LEAD_EXAMPLES = [p for p in EXAMPLES if p.parent.parent.name == "lead"]


@pytest.mark.parametrize("path", LEAD_EXAMPLES, ids=lambda p: p.name)
def test_intake_and_read_model_over_every_lead_example(path):
    name, ev = _decoded(path)
    tenant = TENANTS.tenants[ev["tenant"]]
    if name == "lead.submitted":
        [(out, oev)] = decide(ev, check_submission(ev, tenant), None, None, tenant, "t")
        assert out == "lead.accepted" and default_codec().encode(out, oev)
    elif name == "lead.unsubscribe_requested":
        assert decide_unsubscribe(ev, None, "t") == []
    elif name == "lead.preferences_requested":
        state = evolve(None, "lead.accepted", _decoded(LEAD_EXAMPLES[0].parent / "accepted.v1.json")[1])
        [(out, oev)] = decide_preferences(ev, state, tenant.lists[ev["list"]].cadence, "t")
        assert out == "lead.preferences_changed" and evolve(state, out, oev).preferences[ev["list"]]["paused_until_ms"]
    else:
        state = evolve(None, "lead.accepted", _decoded(LEAD_EXAMPLES[0].parent / "accepted.v1.json")[1])
        after = evolve(state, name, ev)
        assert after is not None and after.lead_id == ev["lead_id"]
