"""The recommender's model store on the real Redis (a DB of its own): a model written and read
back recommends exactly as the trained one (arrays, sparse matrices and text fields all kept,
no pickle), the newest version is the current one, only the KEEP newest are kept, and the
leads' clicked jobs are read per version (a lead not in the log: a cold start, nothing)."""
from __future__ import annotations

import asyncio

import numpy as np
import pytest
import redis.asyncio as aioredis

from domain.recommend import LeadProfile, add_jobs, recommend, train
from projections.redis_recommender import KEEP, RecommenderStore, dump_model, load_model
from services.recommendations import clicked_by_lead
from streams.settings import get_settings
from tests.domain.test_recommend import HOUSTON, NOW_MS, key, make_job

DB = 14
JOBS = [make_job("1", "Registered Nurse", "Healthcare"), make_job("2", "Night Nurse", "Healthcare"),
        make_job("3", "Forklift Driver", "Warehouse"), make_job("4", "Warehouse Picker", "Warehouse"),
        make_job("5", "Line Cook", "Restaurant")]
CLICKS = [("L1", key("1"), NOW_MS - 5000), ("L1", key("2"), NOW_MS - 4000), ("L2", key("1"), NOW_MS - 3000),
          ("L2", key("2"), NOW_MS - 2000), ("L3", key("3"), NOW_MS - 1000), ("L3", key("4"), NOW_MS - 500)]


@pytest.fixture
def store():
    url = get_settings().redis_url.rsplit("/", 1)[0] + f"/{DB}"

    async def run(fn):
        r = aioredis.Redis.from_url(url)
        await r.flushdb()
        try:
            return await fn(RecommenderStore(r), r)
        finally:
            await r.flushdb()
            await r.aclose()
    return lambda fn: asyncio.run(run(fn))


def test_a_model_read_back_recommends_as_the_trained_one():
    model = add_jobs(train(JOBS, CLICKS, NOW_MS, "v1"), [make_job("6", "Travel Nurse", "Healthcare")])
    raw = dump_model(model)
    assert raw[:2] == b"PK"  # an npz (zip) archive, read back with allow_pickle=False
    again = load_model(raw)
    assert (again.version, again.trained_at_ms, again.job_keys) == (model.version, model.trained_at_ms, model.job_keys)
    assert dict(again.row_of) == dict(model.row_of) and dict(again.vocabulary) == dict(model.vocabulary)
    assert (again.co_clicks != model.co_clicks).nnz == 0 and (again.content != model.content).nnz == 0
    assert np.array_equal(again.lat_rad, model.lat_rad, equal_nan=True) and again.categories == model.categories
    for lead in (LeadProfile(keywords=("nurse",), point=HOUSTON), LeadProfile(clicked=(key("1"),)),
                 LeadProfile(categories=("Warehouse",))):
        assert recommend(again, lead, k=3, now_ms=NOW_MS) == recommend(model, lead, k=3, now_ms=NOW_MS)


def test_versions_the_newest_is_current_and_old_ones_are_deleted(store):
    async def go(s: RecommenderStore, r):
        assert await s.current("acme") is None
        for n in range(KEEP + 2):
            await s.save("acme", train(JOBS, CLICKS, NOW_MS + n, f"v{n}"), clicked_by_lead(CLICKS))
        versions = await s.versions("acme")
        assert versions == [f"v{n}" for n in range(KEEP + 1, 1, -1)] and await s.current("acme") == f"v{KEEP + 1}"
        assert await s.load("acme", "v0") is None and not await r.exists("ls:reco:acme:clicked:v0")
        model = await s.load("acme", versions[0])
        assert model.version == versions[0] and len(model) == len(JOBS)
        clicked = await s.clicked("acme", versions[0], ["L1", "L3", "L9"])
        assert clicked == [(key("2"), key("1")), (key("4"), key("3")), ()]  # newest first; L9 never clicked
        assert await s.current("other") is None  # brands are apart
    store(go)
