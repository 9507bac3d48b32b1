"""The partner revenue report's wire format: what is accepted, and every way it is refused."""
from __future__ import annotations

import json
from datetime import date, datetime, timezone

import pytest

from domain.partner_reports import (MALFORMED, WRONG_BRAND, WRONG_PERIOD, Figures, Period, ReportError,
                                    parse_report)

PERIOD = Period(date(2025, 11, 24), date(2025, 11, 26))


def body(**over) -> bytes:
    doc = {"brand": "acme", "currency": "USD", "as_of": "2025-11-27T02:00:00Z",
           "from": "2025-11-24", "to": "2025-11-26",
           "days": [{"date": "2025-11-24", "clicks": 3, "revenue_cents": 135},
                    {"date": "2025-11-26", "clicks": 1, "revenue_cents": 40}],
           "totals": {"clicks": 4, "revenue_cents": 175}}
    doc.update(over)
    return json.dumps({k: v for k, v in doc.items() if v is not ...}).encode()


def refused(raw: bytes) -> ReportError:
    with pytest.raises(ReportError) as info:
        parse_report(raw, "acme", PERIOD)
    return info.value


def test_a_good_report():
    r = parse_report(body(), "acme", PERIOD)
    assert r.brand == "acme" and r.currency == "USD"
    assert r.as_of == datetime(2025, 11, 27, 2, tzinfo=timezone.utc)
    assert r.days == {date(2025, 11, 24): Figures(3, 135), date(2025, 11, 26): Figures(1, 40)}
    assert r.totals == Figures(4, 175)


def test_optional_parts_may_be_left_out_and_offsets_are_normalised():
    r = parse_report(body(totals=..., **{"from": ..., "to": ...}, as_of="2025-11-27T03:00:00+01:00", days=[]),
                     "acme", PERIOD)
    assert r.as_of == datetime(2025, 11, 27, 2, tzinfo=timezone.utc) and r.totals == Figures()


@pytest.mark.parametrize("raw, code, words", [
    (b"{\"brand\": \"acme\", \"curr", MALFORMED, "not JSON"),
    (b"<html>502 Bad Gateway</html>", MALFORMED, "not JSON"),
    (b"[1, 2]", MALFORMED, "JSON object"),
    (body(brand="other"), WRONG_BRAND, "'other'"),
    (body(brand=...), WRONG_BRAND, "None"),
    (body(**{"from": "2025-11-01"}), WRONG_PERIOD, "'from'"),
    (body(days=[{"date": "2025-11-27", "clicks": 1, "revenue_cents": 1}], totals=...), WRONG_PERIOD, "outside"),
    (body(currency="dollars"), MALFORMED, "ISO 4217"),
    (body(as_of="2025-11-27T02:00:00"), MALFORMED, "no timezone"),
    (body(as_of="yesterday"), MALFORMED, "as_of"),
    (body(as_of=1764208800), MALFORMED, "as_of"),
    (body(days={"2025-11-24": 3}), MALFORMED, "days must be a list"),
    (body(days=["2025-11-24"]), MALFORMED, "not an object"),
    (body(days=[{"date": "24/11/2025", "clicks": 1, "revenue_cents": 1}]), MALFORMED, "YYYY-MM-DD"),
    (body(days=[{"date": "2025-11-24", "clicks": -1, "revenue_cents": 1}]), MALFORMED, "clicks"),
    (body(days=[{"date": "2025-11-24", "clicks": 1, "revenue_cents": "1.00"}]), MALFORMED, "revenue_cents"),
    (body(days=[{"date": "2025-11-24", "clicks": True, "revenue_cents": 1}]), MALFORMED, "clicks"),
    (body(days=[{"date": "2025-11-24", "clicks": 1, "revenue_cents": 1.5}]), MALFORMED, "revenue_cents"),
    (body(days=[{"date": "2025-11-24", "clicks": 1, "revenue_cents": 1}] * 2, totals=...), MALFORMED, "twice"),
    (body(totals={"clicks": 4, "revenue_cents": 176}), MALFORMED, "disagree"),
    (body(totals=[4, 175]), MALFORMED, "totals must be an object"),
])
def test_refused(raw, code, words):
    err = refused(raw)
    assert err.code == code and words in str(err)
