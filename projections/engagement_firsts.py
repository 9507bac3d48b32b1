"""Messages opened and clicked, exactly and as plain sums: the firsts of each message (pure).

A message (send id) is "opened by a person" from its first human open on. Instead of
counting distinct send ids at query time (uniqExact over millions of ids is the slow part
of a dashboard), the events writer marks the moments the first human (or machine) open or
click of a message changes, and the rollups add them up:

- the first human open of a message: +1 at its time;
- an open reported later but earlier in time (a provider's webhook): -1 at the old first's
  time, +1 at the new one's;
- a click revised from human to machine (a scanner's burst found later): the message's human
  first moves to its next human click, or goes (-1) when there is none; its machine first may
  begin (+1).

"First" is the earliest (time, event id) among the message's opens (or clicks) whose latest
revision is of that actor, so the sums depend only on the events held, not on the order in
which they arrived. Only events new to ClickHouse are passed in (the writer dedupes first).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

ACTORS = ("human", "machine")


@dataclass(frozen=True)
class Touch:
    """One open or click of a message, in one revision."""

    send_id: str
    kind: str  # open | click
    event_id: str
    revision: int
    at_ms: int
    machine: bool

    @property
    def actor(self) -> str:
        return "machine" if self.machine else "human"


Delta = tuple[int, str, int]  # (at_ms, actor, +1 / -1)


def _latest(touches: Iterable[Touch], into: dict[str, Touch] | None = None) -> dict[str, Touch]:
    """Per event id, its highest revision (an older revision arriving late changes nothing)."""
    out = dict(into or {})
    for t in touches:
        cur = out.get(t.event_id)
        if cur is None or t.revision > cur.revision:
            out[t.event_id] = t
    return out


def _first(latest: dict[str, Touch], actor: str) -> Touch | None:
    mine = [t for t in latest.values() if t.actor == actor]
    return min(mine, key=lambda t: (t.at_ms, t.event_id)) if mine else None


def firsts(held: Iterable[Touch], new: Sequence[Touch]) -> dict[int, list[Delta]]:
    """The changes of each message's firsts that the new touches make, given those already
    held: {index in new of the touch that carries them: [(at_ms, actor, delta), ...]}. A
    message's deltas ride on its last new touch (any of its rows would do: the rollups take
    the message's dimensions from it and the time from the delta)."""
    before: dict[tuple[str, str], list[Touch]] = {}
    for t in held:
        before.setdefault((t.send_id, t.kind), []).append(t)
    carrier: dict[tuple[str, str], int] = {}
    batch: dict[tuple[str, str], list[Touch]] = {}
    for i, t in enumerate(new):
        if not t.send_id:
            continue
        carrier[(t.send_id, t.kind)] = i
        batch.setdefault((t.send_id, t.kind), []).append(t)
    out: dict[int, list[Delta]] = {}
    for key, touches in batch.items():
        was = _latest(before.get(key, ()))
        now = _latest(touches, into=was)
        deltas: list[Delta] = []
        for actor in ACTORS:
            a, b = _first(was, actor), _first(now, actor)
            if (a and a.event_id) == (b and b.event_id):
                continue
            if a is not None:
                deltas.append((a.at_ms, actor, -1))
            if b is not None:
                deltas.append((b.at_ms, actor, 1))
        if deltas:
            out[carrier[key]] = deltas
    return out
