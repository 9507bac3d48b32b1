"""The run's people a demo chapter works with: its accepted email leads of one brand (and list)."""
from __future__ import annotations

import orjson


async def accepted_email_leads(r, tenant: str, lead_ids: set[str], list_name: str | None = None) -> list[dict]:
    """The read models of this run's accepted email leads of the tenant (on the list, if named),
    in lead id order."""
    ids, out = sorted(lead_ids), []
    for i in range(0, len(ids), 500):
        chunk = ids[i:i + 500]
        for raw in await r.mget([f"ls:lead:{tenant}:{x}" for x in chunk]):
            if raw:
                st = orjson.loads(raw)
                if st["status"] == "accepted" and st["channel"] == "email" and (
                        list_name is None or list_name in st.get("lists", [])):
                    out.append(st)
    return out
