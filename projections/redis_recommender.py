"""Trained recommenders in Redis, versioned per tenant (domain.recommend.Model).

ls:reco:{tenant}:model:{version}    the model, as arrays (numpy's npz, no pickle: loading a model
                                    runs no code) with its small fields as JSON
ls:reco:{tenant}:clicked:{version}  hash lead id -> JSON list of the job keys it clicked (newest
                                    first, at most CLICKED_PER_LEAD) in the model's click log
ls:reco:{tenant}:versions           sorted set of versions by training time; the newest is the
                                    one senders load, the KEEP newest are kept (an older one can
                                    be read back to compare), older ones are deleted
"""
from __future__ import annotations

import dataclasses
import io
from collections.abc import Mapping

import numpy as np
import orjson
from scipy import sparse

from domain.recommend import Model

KEEP = 3
CLICKED_PER_LEAD = 20
_SPARSE = ("data", "indices", "indptr", "shape")


def _key(tenant: str, what: str, version: str | None = None) -> str:
    return f"ls:reco:{tenant}:{what}" + (f":{version}" if version else "")


def dump_model(model: Model) -> bytes:
    """The model as bytes: npz arrays (sparse matrices as their CSR parts) and a JSON part."""
    arrays: dict[str, np.ndarray] = {}
    meta: dict[str, object] = {}
    for f in dataclasses.fields(model):
        if f.name == "row_of":
            continue  # rebuilt from job_keys
        value = getattr(model, f.name)
        if isinstance(value, np.ndarray):
            arrays[f.name] = value
        elif sparse.issparse(value):
            m = value.tocsr()
            for part, arr in zip(_SPARSE, (m.data, m.indices, m.indptr, np.asarray(m.shape))):
                arrays[f"{f.name}.{part}"] = arr
        elif isinstance(value, Mapping):
            meta[f.name] = dict(value)
        else:
            meta[f.name] = list(value) if isinstance(value, tuple) else value
    arrays["_meta"] = np.frombuffer(orjson.dumps(meta), dtype=np.uint8)
    out = io.BytesIO()
    np.savez_compressed(out, **arrays)
    return out.getvalue()


def load_model(raw: bytes) -> Model:
    """The model dump_model wrote."""
    with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    meta = orjson.loads(arrays.pop("_meta").tobytes())
    values: dict[str, object] = {}
    for f in dataclasses.fields(Model):
        if f.name == "row_of":
            continue
        if f.name in arrays:
            values[f.name] = arrays[f.name]
        elif f"{f.name}.data" in arrays:
            data, indices, indptr, shape = (arrays[f"{f.name}.{p}"] for p in _SPARSE)
            values[f.name] = sparse.csr_matrix((data, indices, indptr), shape=tuple(int(x) for x in shape))
        else:
            value = meta[f.name]
            values[f.name] = tuple(value) if isinstance(value, list) else value
    values["row_of"] = {key: row for row, key in enumerate(values["job_keys"])}
    return Model(**values)


class RecommenderStore:
    """Save, find and load the tenants' models."""

    def __init__(self, redis):
        self.r = redis

    async def save(self, tenant: str, model: Model, clicked: Mapping[str, list[str]]) -> None:
        """Store a new version (with its leads' clicked jobs) and make it the current one;
        versions past the KEEP newest are deleted."""
        v = model.version
        pipe = self.r.pipeline(transaction=False)
        pipe.set(_key(tenant, "model", v), dump_model(model))
        clicked_key = _key(tenant, "clicked", v)
        pipe.delete(clicked_key)
        items = {lead: orjson.dumps(keys[:CLICKED_PER_LEAD]) for lead, keys in clicked.items() if keys}
        for chunk in _chunks(list(items.items()), 1000):
            pipe.hset(clicked_key, mapping=dict(chunk))
        await pipe.execute()
        # the version is announced only once its parts are all written
        await self.r.zadd(_key(tenant, "versions"), {v: model.trained_at_ms})
        old = await self.r.zrange(_key(tenant, "versions"), 0, -(KEEP + 1))
        if old:
            names = [o.decode() for o in old]
            await self.r.delete(*[_key(tenant, w, n) for n in names for w in ("model", "clicked")])
            await self.r.zrem(_key(tenant, "versions"), *names)

    async def current(self, tenant: str) -> str | None:
        """The newest version's name, None before the first training."""
        newest = await self.r.zrevrange(_key(tenant, "versions"), 0, 0)
        return newest[0].decode() if newest else None

    async def versions(self, tenant: str) -> list[str]:
        """The kept versions, newest first."""
        return [v.decode() for v in await self.r.zrevrange(_key(tenant, "versions"), 0, -1)]

    async def load(self, tenant: str, version: str) -> Model | None:
        raw = await self.r.get(_key(tenant, "model", version))
        return load_model(raw) if raw else None

    async def clicked(self, tenant: str, version: str, leads: list[str]) -> list[tuple[str, ...]]:
        """Each lead's clicked job keys in that version's click log (empty: a cold-start lead)."""
        if not leads:
            return []
        raw = await self.r.hmget(_key(tenant, "clicked", version), leads)
        return [tuple(orjson.loads(v)) if v else () for v in raw]


def _chunks(items: list, n: int):
    for i in range(0, len(items), n):
        yield items[i:i + n]
