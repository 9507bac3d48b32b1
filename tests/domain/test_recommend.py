"""Job recommendations: content finds the matching title, co-clicks find what similar leads
clicked, cold-start leads and new jobs still get ranked, and the same inputs give the same list."""
from __future__ import annotations

import random
from dataclasses import replace

import pytest

from domain.feeds import keywords_of
from domain.geo import zip_point
from domain.jobs import Job
from domain.recommend import (
    CandidatePool, LeadProfile, Model, Recommendation, add_jobs, candidate_pool, recommend, train,
)

NOW_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
DAY = 86_400_000
HOUSTON, DALLAS = zip_point("77002"), zip_point("75201")  # about 360 km apart


def make_job(job_id: str, title: str, category: str, point=HOUSTON, days_old: float = 1,
             company: str = "", description: str = "") -> Job:
    """A job as parse_feed would make it (each its own employer unless told)."""
    lat, lon = point if point else (None, None)
    return Job(tenant="acme", job_id=job_id, source="feed", title=title,
               company=company or f"Employer {job_id}", url=f"https://x.test/{job_id}", lat=lat, lon=lon,
               category=category, keywords=keywords_of(title, category), description=description,
               posted_at_ms=int(NOW_MS - days_old * DAY))


def key(job_id: str) -> str:
    return f"acme:feed:{job_id}"


def keys_of(recommendations: list[Recommendation]) -> list[str]:
    return [r.job_key for r in recommendations]


CATALOGUE = [
    make_job("nurse-1", "Registered Nurse", "Nursing"),
    make_job("nurse-2", "ICU Registered Nurse", "Nursing"),
    make_job("fork-1", "Forklift Operator", "Warehouse & Logistics"),
    make_job("fork-2", "Reach Truck Forklift Driver", "Warehouse & Logistics"),
    make_job("pick-1", "Picker Packer", "Warehouse & Logistics"),
    make_job("cdl-1", "CDL-A Truck Driver", "Driving"),
    make_job("cook-1", "Line Cook", "Hospitality"),
    make_job("bar-1", "Bartender", "Hospitality"),
    make_job("dev-1", "Senior Python Developer", "Technology"),
    make_job("till-1", "Cashier", "Retail"),
]


def clicks_of(*pairs: tuple[str, str], days_ago: float = 1) -> list[tuple[str, str, int]]:
    return [(lead, key(job_id), int(NOW_MS - days_ago * DAY)) for lead, job_id in pairs]


# Leads who open the line cook ad also open the cashier's (nothing in their text links them);
# forklift drivers open the picker ads.
CO_CLICKS = clicks_of(
    ("a", "cook-1"), ("a", "till-1"), ("b", "cook-1"), ("b", "till-1"), ("c", "cook-1"), ("c", "till-1"),
    ("c", "bar-1"), ("d", "fork-1"), ("d", "pick-1"), ("e", "fork-1"), ("e", "pick-1"),
)


@pytest.fixture(scope="module")
def model() -> Model:
    return train(CATALOGUE, CO_CLICKS, NOW_MS, version="2026-01-01T00:00Z#1")


def test_content_finds_the_job_whose_title_matches_the_interests(model):
    lead = LeadProfile(keywords=("forklift",), point=HOUSTON)
    best = recommend(model, lead, k=2)
    assert set(keys_of(best)) == {key("fork-1"), key("fork-2")}
    assert all(r.why == "content" for r in best)


def test_a_category_alone_is_enough(model):
    lead = LeadProfile(categories=("nursing",))
    assert set(keys_of(recommend(model, lead, k=2))) == {key("nurse-1"), key("nurse-2")}


def test_co_clicks_recommend_what_similar_leads_clicked(model):
    lead = LeadProfile(point=HOUSTON, clicked=(key("cook-1"),))
    best = recommend(model, lead, k=2)
    # The bartender ad reads like the line cook's; the cashier ad is there for the co-clicks.
    assert keys_of(best) == [key("bar-1"), key("till-1")]
    assert [r.why for r in best] == ["content", "collaborative"]
    without_clicks = train(CATALOGUE, [], NOW_MS, version="no clicks")
    assert key("till-1") not in keys_of(recommend(without_clicks, lead, k=5))


def test_an_application_counts_as_history_too(model):
    lead = LeadProfile(applied=(key("fork-1"),))
    assert keys_of(recommend(model, lead, k=1)) == [key("pick-1")]


def test_a_cold_start_lead_still_gets_recommendations(model):
    # No clicks and no interests: popularity decides, the most clicked jobs first (equal
    # scores to the smaller key).
    best = recommend(model, LeadProfile(), k=3)
    assert keys_of(best)[:2] == [key("cook-1"), key("till-1")]
    assert {r.why for r in best} == {"popular"}
    # Interests but no clicks: content leads, popularity breaks the rest.
    lead = LeadProfile(keywords=("cashier",), point=HOUSTON)
    best = recommend(model, lead, k=3)
    assert best[0].job_key == key("till-1")
    assert len(best) == 3


def test_a_job_added_after_training_can_be_recommended(model):
    new = make_job("welder-1", "Certified Welder", "Manufacturing", days_old=0)
    grown = add_jobs(model, [new])
    assert key("welder-1") not in model.row_of  # the trained model is left as it was
    lead = LeadProfile(keywords=("welder",), point=HOUSTON)
    best = recommend(grown, lead, k=1)
    assert keys_of(best) == [key("welder-1")] and best[0].why == "content"
    # "welder" and "manufacturing" were in no training job: the vocabulary grew for them.
    assert "welder" in grown.vocabulary and "welder" not in model.vocabulary
    assert grown.version == model.version


def test_an_unknown_candidate_is_folded_in_on_the_fly(model):
    new = make_job("welder-2", "Welder Fabricator", "Manufacturing", days_old=0)
    lead = LeadProfile(keywords=("welder",), point=HOUSTON)
    assert keys_of(recommend(model, lead, [*CATALOGUE, new], k=1)) == [key("welder-2")]


def test_add_jobs_replaces_a_known_job_and_keeps_the_others(model):
    renamed = replace(CATALOGUE[6], title="Sous Chef", keywords=keywords_of("Sous Chef", "Hospitality"))
    grown = add_jobs(model, [renamed])
    assert len(grown) == len(model)
    lead = LeadProfile(keywords=("chef",))
    assert keys_of(recommend(grown, lead, k=1)) == [key("cook-1")]
    assert grown.clickers[grown.row_of[key("cook-1")]] == 3  # its clicks stay with it
    untouched = LeadProfile(keywords=("forklift",))
    assert recommend(grown, untouched, k=2) == recommend(model, untouched, k=2)


def test_a_new_job_is_neither_buried_nor_favoured_for_having_no_clicks(model):
    # Two equal postings, one clicked before and one new: the new one still makes the list.
    twin = make_job("bar-2", "Bartender", "Hospitality")
    grown = add_jobs(model, [twin])
    best = recommend(grown, LeadProfile(keywords=("bartender",), clicked=(key("cook-1"),)), k=2)
    assert set(keys_of(best)) == {key("bar-1"), key("bar-2")}


def test_exclude_and_history_are_never_recommended(model):
    lead = LeadProfile(keywords=("forklift",), clicked=(key("fork-1"),))
    got = keys_of(recommend(model, lead, k=10, exclude={key("fork-2")}))
    assert key("fork-1") not in got and key("fork-2") not in got
    assert len(got) == len(CATALOGUE) - 2


def test_candidates_limit_the_choice(model):
    lead = LeadProfile(keywords=("forklift",))
    only = [CATALOGUE[0], CATALOGUE[6]]
    assert set(keys_of(recommend(model, lead, only, k=5))) == {key("nurse-1"), key("cook-1")}


def test_a_pool_is_resolved_once_and_gives_the_same_lists(model):
    lead = LeadProfile(keywords=("driver",), point=HOUSTON, clicked=(key("cook-1"),))
    pool = candidate_pool(model, CATALOGUE[2:])
    assert isinstance(pool, CandidatePool)
    assert recommend(pool.model, lead, pool, k=5) == recommend(model, lead, CATALOGUE[2:], k=5)


def test_a_pool_of_another_model_is_refused(model):
    other = train(CATALOGUE, [], NOW_MS, version="other")
    with pytest.raises(ValueError, match="another model"):
        recommend(other, LeadProfile(), candidate_pool(model, CATALOGUE), k=3)


def test_jobs_past_max_km_are_cut_and_unplaced_jobs_kept():
    far = make_job("fork-dallas", "Forklift Operator", "Warehouse & Logistics", point=DALLAS)
    unplaced = make_job("fork-remote", "Forklift Trainer", "Warehouse & Logistics", point=None)
    near = make_job("fork-houston", "Forklift Operator", "Warehouse & Logistics", point=HOUSTON)
    model = train([far, unplaced, near], [], NOW_MS, version="v")
    lead = LeadProfile(keywords=("forklift",), point=HOUSTON)
    assert set(keys_of(recommend(model, lead, k=10))) == {key("fork-houston"), key("fork-remote")}
    assert len(recommend(model, lead, k=10, max_km=500)) == 3
    # Without a place of its own, a lead is never cut off.
    assert len(recommend(model, replace(lead, point=None), k=10)) == 3


def test_nearer_and_fresher_jobs_score_higher_when_equal_otherwise():
    a = make_job("a", "Forklift Operator", "Warehouse & Logistics", company="Acme", point=HOUSTON)
    b = make_job("b", "Forklift Operator", "Warehouse & Logistics", company="Acme",
                 point=(HOUSTON[0] + 0.3, HOUSTON[1]))  # ~33 km north
    model = train([a, b], [], NOW_MS, version="v")
    lead = LeadProfile(keywords=("forklift",), point=HOUSTON)
    assert keys_of(recommend(model, lead, k=2)) == [key("a"), key("b")]
    old = make_job("old", "Cashier", "Retail", days_old=20)
    new = make_job("new", "Cashier", "Retail", days_old=1)
    model = train([old, new], [], NOW_MS, version="v")
    lead = LeadProfile(keywords=("cashier",))
    assert keys_of(recommend(model, lead, k=2, now_ms=NOW_MS)) == [key("new"), key("old")]


def test_the_same_inputs_give_the_same_model_and_list_in_any_order():
    rng = random.Random(7)
    titles = ["Registered Nurse", "Forklift Operator", "Line Cook", "Cashier", "Delivery Driver"]
    jobs = [make_job(f"j{i}", titles[i % 5], "General", days_old=rng.uniform(0, 20),
                     point=(HOUSTON[0] + rng.uniform(-0.2, 0.2), HOUSTON[1] + rng.uniform(-0.2, 0.2)))
            for i in range(200)]
    clicks = [(f"lead{rng.randrange(40)}", key(f"j{rng.randrange(200)}"), NOW_MS - rng.randrange(10 * DAY))
              for _ in range(600)]
    lead = LeadProfile(keywords=("nurse",), point=HOUSTON, clicked=(key("j3"), key("j8")))
    first = recommend(train(jobs, clicks, NOW_MS, "v"), lead, k=10, now_ms=NOW_MS)
    shuffled_jobs, shuffled_clicks = jobs[:], clicks[:]
    rng.shuffle(shuffled_jobs)
    rng.shuffle(shuffled_clicks)
    again = recommend(train(shuffled_jobs, shuffled_clicks, NOW_MS, "v"), lead, k=10, now_ms=NOW_MS)
    assert first == again
    assert len(first) == 10
    scores = [r.score for r in first]
    assert scores == sorted(scores, reverse=True)
    assert all(0.0 <= s <= 1.0 for s in scores)


def test_equal_scores_go_to_the_smaller_key():
    twins = [make_job(job_id, "Cashier", "Retail", company="Same", point=None) for job_id in ("b", "c", "a")]
    model = train(twins, [], NOW_MS, version="v")
    best = recommend(model, LeadProfile(keywords=("cashier",)), k=3)
    assert keys_of(best) == [key("a"), key("b"), key("c")]


def test_popularity_decays_with_age_and_ignores_future_clicks():
    jobs = [make_job("old", "Cashier", "Retail"), make_job("recent", "Cashier", "Retail")]
    clicks = (clicks_of(*[(f"l{i}", "old") for i in range(4)], days_ago=30)
              + clicks_of(("x", "recent"), ("y", "recent"), days_ago=0.5)
              + clicks_of(*[(f"f{i}", "old") for i in range(9)], days_ago=-1))  # not yet happened
    model = train(jobs, clicks, NOW_MS, version="v", half_life_days=7)
    assert model.popularity[model.row_of[key("recent")]] > model.popularity[model.row_of[key("old")]]
    assert model.clickers[model.row_of[key("old")]] == 4


def test_a_lead_clicking_twice_counts_once():
    jobs = CATALOGUE[:3]
    once = train(jobs, clicks_of(("a", "nurse-1"), ("a", "nurse-2")), NOW_MS, "v")
    twice = train(jobs, clicks_of(("a", "nurse-1"), ("a", "nurse-1"), ("a", "nurse-2")), NOW_MS, "v")
    assert (once.co_clicks != twice.co_clicks).nnz == 0
    assert twice.clickers[twice.row_of[key("nurse-1")]] == 1


def test_clicks_on_expired_jobs_still_link_the_live_ones():
    live = [make_job("cook-2", "Line Cook", "Hospitality"), make_job("bar-3", "Bartender", "Hospitality")]
    # Leads clicked an expired ad (gone from the feed) and the bartender ad.
    clicks = clicks_of(("a", "gone"), ("a", "bar-3"), ("b", "gone"), ("b", "bar-3"))
    model = train(live, clicks, NOW_MS, version="v")
    assert key("gone") in model.row_of and not model.has_content[model.row_of[key("gone")]]
    assert key("gone") not in keys_of(recommend(model, LeadProfile(), k=10))
    assert keys_of(recommend(model, LeadProfile(clicked=(key("gone"),)), k=1)) == [key("bar-3")]


def test_the_model_carries_its_version_and_training_time(model):
    assert model.version == "2026-01-01T00:00Z#1"
    assert model.trained_at_ms == NOW_MS
    assert add_jobs(model, [make_job("x", "Welder", "Manufacturing")]).version == model.version


def test_an_empty_model_recommends_nothing_and_k_zero_nothing(model):
    empty = train([], [], NOW_MS, version="empty")
    assert recommend(empty, LeadProfile(keywords=("nurse",)), k=5) == []
    assert recommend(model, LeadProfile(keywords=("nurse",)), k=0) == []


def test_one_lead_against_thousands_of_jobs():
    # Not a timing test (bench/recommend.py measures): the whole catalogue is ranked at once.
    rng = random.Random(3)
    words = ["nurse", "forklift", "driver", "cook", "cashier", "welder", "clerk", "agent"]
    jobs = [make_job(f"m{i}", f"{rng.choice(words).title()} {rng.choice(words).title()}", "General",
                     point=(HOUSTON[0] + rng.uniform(-1, 1), HOUSTON[1] + rng.uniform(-1, 1)))
            for i in range(5000)]
    model = train(jobs, [], NOW_MS, version="v")
    best = recommend(model, LeadProfile(keywords=("welder",), point=HOUSTON), k=25)
    titles = {j.key: j.title for j in jobs}
    assert len(best) == 25
    assert all("Welder" in titles[r.job_key] for r in best)
    assert [r.score for r in best] == sorted((r.score for r in best), reverse=True)
