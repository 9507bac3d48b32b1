"""Every Redis key family says what becomes of it when Redis loses everything, and the README's
table says the same (projections/redis_keys.AFTER_WIPE)."""
from __future__ import annotations

from projections.redis_keys import AFTER_WIPE, FAMILIES
from streams.settings import ROOT


def test_every_family_has_a_decided_fate_and_a_lost_one_says_what_it_costs():
    assert set(AFTER_WIPE) == {f.name for f in FAMILIES}
    assert {fate for fate, _ in AFTER_WIPE.values()} <= {"rebuilt", "refilled", "transient", "lost"}
    assert all(len(note) > 10 for _, note in AFTER_WIPE.values())
    short_lived = {f.name for f in FAMILIES if f.bound == "ttl" and (f.max_ttl_s or 0) <= 86_400}
    # a long-lived family is not waved through as transient
    assert {n for n, (fate, _) in AFTER_WIPE.items() if fate == "transient"} - short_lived <= {"test_clock"}


def test_the_readme_lists_each_family_with_its_fate():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("What a Redis wipe costs"):]
    for f in FAMILIES:
        fate, _ = AFTER_WIPE[f.name]
        assert f"| `{f.pattern}` | {fate} |" in section, f.name
