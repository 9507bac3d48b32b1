"""Job matching: the right jobs for a lead, near it, fresh and well paid, deterministic and fast."""
from __future__ import annotations

import math
import random
from dataclasses import replace

import pytest

from domain.feeds import keywords_of
from domain.geo import haversine_km, zip_point
from domain.jobs import Job
from domain.matching import JobIndex, Match, candidate_keys, rank

NOW_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
DAY = 86_400_000
NYC, LA = zip_point("10001"), zip_point("90012")


def make_job(job_id: str, title: str, category: str, point=None, days_old: float = 1,
             cpc_cents: int = 50, tenant: str = "acme", source: str = "feed", company: str = "") -> Job:
    """A job as parse_feed would make it; each job its own employer unless told (one employer's
    same title at the same place is one job, see test_the_same_job_from_two_feeds...)."""
    lat, lon = point if point else (None, None)
    return Job(tenant=tenant, job_id=job_id, source=source, title=title, company=company or f"Employer {job_id}",
               url=f"https://x.test/{job_id}", lat=lat, lon=lon, category=category,
               keywords=keywords_of(title, category), posted_at_ms=int(NOW_MS - days_old * DAY),
               cpc_cents=cpc_cents)


def moved(point, north_km: float = 0.0, east_km: float = 0.0):
    """A point shifted by a few km (fine at city scale)."""
    lat, lon = point
    return lat + north_km / 111.2, lon + east_km / (111.2 * math.cos(math.radians(lat)))


def index_of(*jobs: Job, tenant: str = "acme") -> JobIndex:
    """An index holding the jobs."""
    index = JobIndex(tenant)
    for job in jobs:
        index.add(job)
    return index


@pytest.fixture
def city_jobs() -> JobIndex:
    """Nursing, warehouse, driving and tech jobs in New York and Los Angeles."""
    return index_of(
        make_job("ny-rn", "Registered Nurse - ICU", "Nursing", moved(NYC, 2, 1)),
        make_job("ny-lpn", "Licensed Practical Nurse", "Nursing", moved(NYC, -5, 3)),
        make_job("ny-cna", "Certified Nursing Assistant", "Nursing", moved(NYC, 10, -4)),
        make_job("ny-fork", "Forklift Operator", "Warehouse & Logistics", moved(NYC, 3, 3)),
        make_job("ny-dev", "Python Developer", "Technology", moved(NYC, 1, 1), cpc_cents=300),
        make_job("la-rn", "Registered Nurse", "Nursing", moved(LA, 1, 1)),
        make_job("la-fork", "Forklift Driver", "Warehouse & Logistics", moved(LA, 4, -2)),
        make_job("la-reach", "Reach Truck Forklift Driver", "Warehouse & Logistics", moved(LA, -8, 5)),
        make_job("la-cdl", "CDL-A Truck Driver", "Driving", moved(LA, 6, 6)),
        make_job("la-pack", "Picker Packer", "Warehouse & Logistics", moved(LA, 2, 2)),
        make_job("la-cook", "Line Cook", "Hospitality", moved(LA, 0, 1), cpc_cents=300),
    )


def keys(matches: list[Match]) -> list[str]:
    """The job ids of a ranking, in order."""
    return [m.job.job_id for m in matches]


def test_nurse_in_new_york_gets_new_york_nursing_jobs(city_jobs):
    matches = rank(city_jobs, ["registered nurse"], ["Nursing"], NYC, NOW_MS, set())
    assert keys(matches) == ["ny-rn", "ny-lpn", "ny-cna"]
    assert matches[0].reasons[:2] == ("keywords: nurse, registered", "category: Nursing")
    assert all(m.distance_km < 15 for m in matches)


def test_forklift_driver_in_los_angeles_gets_los_angeles_forklift_jobs(city_jobs):
    matches = rank(city_jobs, ["Forklift Driver"], [], LA, NOW_MS, set(), k=3)
    assert keys(matches) == ["la-fork", "la-reach", "la-cdl"]  # both words, then one of them
    assert matches[0].score > matches[1].score > matches[2].score


def test_category_alone_finds_jobs(city_jobs):
    matches = rank(city_jobs, [], ["warehouse & logistics"], LA, NOW_MS, set())
    assert set(keys(matches)) == {"la-fork", "la-reach", "la-pack"}


def test_distance_cut_off():
    near, mid, far = moved(NYC, 20), moved(NYC, 60), moved(NYC, 100)
    index = index_of(make_job("near", "Nurse", "Nursing", near), make_job("mid", "Nurse", "Nursing", mid),
                     make_job("far", "Nurse", "Nursing", far))
    assert keys(rank(index, ["nurse"], [], NYC, NOW_MS, set())) == ["near", "mid"]
    assert keys(rank(index, ["nurse"], [], NYC, NOW_MS, set(), max_km=50)) == ["near"]
    assert keys(rank(index, ["nurse"], [], NYC, NOW_MS, set(), max_km=150)) == ["near", "mid", "far"]


def test_distance_cut_off_holds_across_grid_cells():
    # 75 km east of a point just west of a cell edge lands two cells over; still within 80 km.
    lead = (40.5, -74.95)
    index = index_of(make_job("east", "Nurse", "Nursing", moved(lead, 0, 75)),
                     make_job("north", "Nurse", "Nursing", moved(lead, 78, 0)),
                     make_job("too-far", "Nurse", "Nursing", moved(lead, 60, 60)))
    assert sorted(keys(rank(index, ["nurse"], [], lead, NOW_MS, set()))) == ["east", "north"]


def test_excluded_jobs_are_never_returned(city_jobs):
    sent = {"acme:feed:ny-rn", "acme:feed:ny-cna"}
    matches = rank(city_jobs, ["nurse"], ["Nursing"], NYC, NOW_MS, sent)
    assert keys(matches) == ["ny-lpn"]


def test_ranking_is_deterministic_whatever_the_insertion_order(city_jobs):
    # five different clinics' equal ads (the same ad five times would be one job: see below)
    twins = [replace(make_job(f"twin-{c}", "Registered Nurse", "Nursing", moved(NYC, 1, 1)), company=f"Clinic {c}")
             for c in "dbeac"]
    forward, backward = index_of(*twins), index_of(*reversed(twins))
    first = rank(forward, ["nurse"], [], NYC, NOW_MS, set())
    assert keys(first) == ["twin-a", "twin-b", "twin-c", "twin-d", "twin-e"]  # equal scores: by key
    assert rank(backward, ["nurse"], [], NYC, NOW_MS, set()) == first
    assert rank(forward, ["nurse"], [], NYC, NOW_MS, set()) == first
    same = [make_job(f"same-{c}", "Registered Nurse", "Nursing", moved(NYC, 1, 1), company="Co") for c in "dbeac"]
    assert keys(rank(index_of(*same), ["nurse"], [], NYC, NOW_MS, set())) == ["same-a"]
    assert rank(index_of(*reversed(same)), ["nurse"], [], NYC, NOW_MS, set()) == \
        rank(index_of(*same), ["nurse"], [], NYC, NOW_MS, set())


def test_fresher_jobs_rank_higher():
    index = index_of(make_job("old", "Nurse", "Nursing", NYC, days_old=25),
                     make_job("new", "Nurse", "Nursing", NYC, days_old=1),
                     make_job("stale", "Nurse", "Nursing", NYC, days_old=90),
                     make_job("mid", "Nurse", "Nursing", NYC, days_old=10))
    matches = rank(index, ["nurse"], [], NYC, NOW_MS, set())
    assert keys(matches) == ["new", "mid", "old", "stale"]
    assert "posted 1 days ago" in matches[0].reasons


def test_higher_cpc_breaks_a_tie():
    index = index_of(make_job("a-cheap", "Nurse", "Nursing", NYC, cpc_cents=20),
                     make_job("b-rich", "Nurse", "Nursing", NYC, cpc_cents=250),
                     make_job("c-mid", "Nurse", "Nursing", NYC, cpc_cents=100))
    assert keys(rank(index, ["nurse"], [], NYC, NOW_MS, set())) == ["b-rich", "c-mid", "a-cheap"]


def test_relevance_outweighs_distance_freshness_and_pay():
    index = index_of(make_job("exact", "Registered Nurse", "Nursing", moved(NYC, 40),
                              days_old=20, cpc_cents=10),
                     make_job("partial", "Nurse Manager", "Management", NYC, days_old=0, cpc_cents=300))
    assert keys(rank(index, ["registered nurse"], ["nursing"], NYC, NOW_MS, set())) == ["exact", "partial"]


def test_lead_without_interests_gets_nearest_fresh_best_paying_jobs(city_jobs):
    matches = rank(city_jobs, [], [], LA, NOW_MS, set(), k=2)
    assert keys(matches) == ["la-cook", "la-rn"]  # top pay at the door, then the closest
    assert all(m.distance_km < 15 for m in matches)


def test_lead_without_a_point_is_neutral_on_distance(city_jobs):
    matches = rank(city_jobs, ["registered nurse"], [], None, NOW_MS, set())
    assert set(keys(matches)) == {"ny-rn", "la-rn", "ny-lpn"}
    assert all(m.distance_km is None for m in matches)


def test_jobs_without_a_location_are_neutral_not_excluded():
    index = index_of(make_job("remote", "Nurse Case Manager", "Nursing", None),
                     make_job("far", "Nurse", "Nursing", LA))
    [match] = rank(index, ["nurse"], [], NYC, NOW_MS, set())
    assert match.job.job_id == "remote" and match.distance_km is None


def test_remove_and_replace_update_every_posting(city_jobs):
    city_jobs.remove("acme:feed:ny-rn")
    city_jobs.add(make_job("ny-lpn", "Warehouse Associate", "Warehouse & Logistics", NYC))
    assert keys(rank(city_jobs, ["nurse"], ["Nursing"], NYC, NOW_MS, set())) == ["ny-cna"]
    assert "acme:feed:ny-lpn" in candidate_keys(city_jobs, ["warehouse"], [], NYC)
    city_jobs.remove("acme:feed:unknown")  # no error
    assert len(city_jobs) == 10


def test_index_refuses_another_tenants_job():
    with pytest.raises(ValueError, match="globex"):
        JobIndex("acme").add(make_job("x", "Nurse", "Nursing", NYC, tenant="globex"))


CITY_ZIPS = ["10001", "90012", "60601", "77002", "85004", "98101", "33101", "80202"]
TITLES = {
    "Nursing": ["Registered Nurse", "Licensed Practical Nurse", "Nursing Assistant", "Travel Nurse"],
    "Warehouse": ["Warehouse Associate", "Forklift Operator", "Picker Packer", "Material Handler"],
    "Driving": ["Delivery Driver", "CDL Truck Driver", "Courier Driver", "Bus Driver"],
    "Technology": ["Software Engineer", "Data Analyst", "Help Desk Technician", "DevOps Engineer"],
    "Retail": ["Cashier", "Sales Associate", "Store Manager", "Stock Associate"],
    "Hospitality": ["Line Cook", "Server", "Housekeeper", "Bartender"],
}


def big_index(n_jobs: int, rng: random.Random) -> JobIndex:
    """n_jobs spread over eight cities and six categories."""
    index = JobIndex("acme")
    for i in range(n_jobs):
        category = rng.choice(list(TITLES))
        point = moved(zip_point(rng.choice(CITY_ZIPS)), rng.uniform(-15, 15), rng.uniform(-15, 15))
        index.add(make_job(f"j{i:05d}", rng.choice(TITLES[category]), category, point,
                           days_old=rng.uniform(0, 30), cpc_cents=rng.randint(10, 300)))
    return index


def random_lead(rng: random.Random):
    """(keywords, categories, point): most leads have interests; some only a place."""
    point = moved(zip_point(rng.choice(CITY_ZIPS)), rng.uniform(-10, 10), rng.uniform(-10, 10))
    category = rng.choice(list(TITLES))
    roll = rng.random()
    if roll < 0.6:
        return [rng.choice(TITLES[category])], [], point
    if roll < 0.8:
        return [], [category], point
    return [], [], point


def brute_force(index: JobIndex, keywords, categories, point, k=5, max_km=80):
    """Every job in the index scored and kept (k = all, so no early cut-off), then the top k:
    checks that neither the candidate lookup nor the skipping of hopeless jobs loses one."""
    from domain.matching import _lead_categories, _lead_terms, _top
    return _top(index, list(index.jobs), _lead_terms(keywords), _lead_categories(categories),
                point, NOW_MS, set(), len(index), max_km)[:k]


def test_ranking_many_leads_touches_only_candidate_jobs():
    rng = random.Random(20260101)
    index = big_index(20_000, rng)
    leads = [random_lead(rng) for _ in range(1000)]
    touched = []
    for terms, categories, point in leads:
        touched.append(len(candidate_keys(index, terms, categories, point)))
        assert len(rank(index, terms, categories, point, NOW_MS, set())) == 5
    # A full scan would touch all 20,000 every time; a city's worth is about 1/8 of them.
    assert max(touched) < 0.2 * len(index), max(touched)
    assert sum(touched) / len(touched) < 0.1 * len(index)


def test_candidate_pruning_gives_the_same_answer_as_scoring_every_job():
    rng = random.Random(7)
    index = big_index(3000, rng)
    for _ in range(60):
        terms, categories, point = random_lead(rng)
        assert rank(index, terms, categories, point, NOW_MS, set()) == \
            brute_force(index, terms, categories, point)


def test_candidate_distances_agree_with_haversine(city_jobs):
    for match in rank(city_jobs, [], [], NYC, NOW_MS, set(), k=10):
        expected = haversine_km(NYC, (match.job.lat, match.job.lon))
        assert match.distance_km == pytest.approx(expected, abs=0.01)


# --- one entry per distinct job, and what is new ---

def posting(job_id: str, source: str, company: str, cpc_cents: int, days_old: float = 1, **over) -> Job:
    """The same nursing job as two feeds describe it: their own ids, links, spelling and pay."""
    base = dict(tenant="acme", job_id=job_id, source=source, title="Registered Nurse - ICU", company=company,
                url=f"https://{source}.test/{job_id}?utm=x", city="New York", state="NY",
                lat=moved(NYC, 1, 1)[0], lon=moved(NYC, 1, 1)[1], category="Nursing",
                keywords=keywords_of("Registered Nurse - ICU", "Nursing"),
                posted_at_ms=int(NOW_MS - days_old * DAY), cpc_cents=cpc_cents)
    return Job(**(base | over))


def test_the_same_job_from_two_feeds_is_ranked_once_and_the_better_paying_posting_wins():
    cheap = posting("R1", "indeed", "Mercy Hospital Co.", 40)
    rich = posting("77-x", "partner-json", "MERCY HOSPITAL, CO", 180, title="Registered Nurse – ICU ",
                   city="new york", lat=moved(NYC, 2, 2)[0])
    other = posting("R2", "indeed", "Bellevue Clinic", 60)
    for order in ((cheap, rich, other), (rich, other, cheap), (other, cheap, rich)):
        matches = rank(index_of(*order), ["nurse"], [], NYC, NOW_MS, set(), k=5)
        assert sorted(m.job.key for m in matches) == sorted([rich.key, other.key])
    # the better-paying posting goes; when it expires the other one takes its place
    index = index_of(cheap, rich, other)
    index.remove(rich.key)
    assert sorted(keys(rank(index, ["nurse"], [], NYC, NOW_MS, set()))) == ["R1", "R2"]


def test_on_equal_pay_the_fresher_posting_wins_and_a_sent_posting_stands_for_its_twin():
    old, fresh = posting("a", "indeed", "Mercy", 90, days_old=9), posting("b", "json", "Mercy Inc", 90, days_old=2)
    index = index_of(old, fresh)
    [match] = rank(index, ["nurse"], [], NYC, NOW_MS, set())
    assert match.job.key == fresh.key and match.first_seen_ms == old.posted_at_ms  # known since the older one
    assert rank(index, ["nurse"], [], NYC, NOW_MS, {old.key}) == []  # sent under another link: still sent


def test_only_jobs_first_seen_after_the_previous_alert_are_new():
    index = index_of(posting("a", "f", "A", 50, days_old=0.5), posting("b", "f", "B", 50, days_old=3),
                     posting("c", "f", "C", 50, days_old=19),
                     # B's job reposted today on another feed: known for 3 days, so not new
                     posting("b2", "g", "B", 300, days_old=0.1))
    since = NOW_MS - 2 * DAY
    assert keys(rank(index, ["nurse"], [], NYC, NOW_MS, set(), new_since_ms=since)) == ["a"]
    assert sorted(keys(rank(index, ["nurse"], [], NYC, NOW_MS, set()))) == ["a", "b2", "c"]


def test_fingerprint_ignores_case_punctuation_accents_and_legal_forms_but_not_the_place():
    from domain.jobs import fingerprint
    a = posting("1", "f", "Café Azul, LLC", 10, title="Line Cook (Nights)")
    assert fingerprint(a) == fingerprint(replace(a, company="CAFE AZUL", title="line cook - nights", job_id="2"))
    assert fingerprint(a) == fingerprint(replace(a, company="Café Azul L.L.C."))
    assert fingerprint(a) != fingerprint(replace(a, city="Boston", state="MA"))
    assert fingerprint(a) != fingerprint(replace(a, company="Café Verde LLC"))
    assert fingerprint(a) != fingerprint(replace(a, tenant="globex"))
