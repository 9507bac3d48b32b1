"""List hygiene rules (pure): when a lead counts as cold."""
from __future__ import annotations

DAY_MS = 86_400_000


def cold_cutoff_ms(now_ms: int, inactive_days: int) -> int:
    """Leads whose last human engagement (or sign-up, if none) is at or before this are cold."""
    if inactive_days <= 0:
        raise ValueError(f"inactive_days must be positive, got {inactive_days}")
    return now_ms - inactive_days * DAY_MS
