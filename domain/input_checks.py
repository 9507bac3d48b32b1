"""Checks shared by what brands send (product events, activity, consent records): times with
their zone, and a person named by exactly one of lead_id, email or phone."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator

PERSON_FIELDS = ("lead_id", "email", "phone")


def _zoned(v: datetime) -> datetime:
    if v.tzinfo is None:
        raise ValueError("give the time zone, e.g. 2026-12-04T09:00:00Z")
    return v


ZonedDatetime = Annotated[datetime, AfterValidator(_zoned)]


def one_person(model, who: str = "person") -> None:
    """ValueError unless exactly one of lead_id, email, phone is given."""
    if len([k for k in PERSON_FIELDS if getattr(model, k)]) != 1:
        raise ValueError(f"name the {who} with exactly one of lead_id, email, phone")
