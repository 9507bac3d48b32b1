"""Sessions of signed-in people, and the failed sign-ins behind the lockout, in Redis.

ls:sess:{sha256(token)}      hash: person, csrf, pw (fingerprint of the password hash at sign-in),
                             created_ms, ip; expires after the idle time, renewed on use
ls:psess:{email}             set of the person's session ids (sign out everywhere)
ls:signfail:acct:{email}     failures of an account in the window; :lock:{email} while locked
ls:signfail:ip:{address}     failures from an address in the window
Only the hash of a session token is stored: a copy of Redis does not let anyone in.
"""
from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

import redis.asyncio as aioredis

from domain.sign_in import WINDOW_S, address_blocked, lock_seconds

IDLE_S = 12 * 3600  # a session unused this long ends
ABSOLUTE_S = 7 * 24 * 3600  # and every session ends after this


@dataclass(frozen=True)
class Session:
    id: str  # sha256 of the token
    person: str
    csrf: str
    pw: str
    created_ms: int


def session_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class SessionStore:
    def __init__(self, redis: aioredis.Redis):
        self.redis = redis

    async def create(self, person: str, pw: str, ip: str) -> tuple[str, Session]:
        """A new session: (the token for the cookie, the session)."""
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
        sid, now_ms = session_id(token), int(time.time() * 1000)
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(f"ls:sess:{sid}", mapping={"person": person, "csrf": csrf, "pw": pw,
                                             "created_ms": now_ms, "ip": ip})
        pipe.expire(f"ls:sess:{sid}", IDLE_S)
        pipe.sadd(f"ls:psess:{person}", sid)
        pipe.expire(f"ls:psess:{person}", ABSOLUTE_S)
        await pipe.execute()
        return token, Session(sid, person, csrf, pw, now_ms)

    async def get(self, token: str) -> Session | None:
        """The live session of a token (renewing its idle time), or None."""
        sid = session_id(token)
        raw = await self.redis.hgetall(f"ls:sess:{sid}")
        if not raw:
            return None
        d = {k.decode(): v.decode() for k, v in raw.items()}
        created = int(d["created_ms"])
        if time.time() * 1000 - created > ABSOLUTE_S * 1000:
            await self.end(sid, d["person"])
            return None
        await self.redis.expire(f"ls:sess:{sid}", IDLE_S)
        return Session(sid, d["person"], d["csrf"], d["pw"], created)

    async def end(self, sid: str, person: str) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(f"ls:sess:{sid}")
        pipe.srem(f"ls:psess:{person}", sid)
        await pipe.execute()

    async def end_all(self, person: str, keep: str | None = None) -> int:
        """End every session of a person (but `keep`); returns how many ended."""
        sids = [s.decode() for s in await self.redis.smembers(f"ls:psess:{person}")]
        gone = [s for s in sids if s != keep]
        if gone:
            pipe = self.redis.pipeline(transaction=True)
            for s in gone:
                pipe.delete(f"ls:sess:{s}")
            pipe.srem(f"ls:psess:{person}", *gone)
            await pipe.execute()
        return len(gone)


class SignInGuard:
    """Counts failed sign-ins per account and per address; says who must wait and how long."""

    def __init__(self, redis: aioredis.Redis):
        self.redis = redis

    async def wait_s(self, email: str, ip: str) -> int:
        """Seconds this attempt must wait (0: go ahead)."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.ttl(f"ls:signfail:lock:{email}")
        pipe.get(f"ls:signfail:ip:{ip}")
        pipe.ttl(f"ls:signfail:ip:{ip}")
        lock_ttl, ip_count, ip_ttl = await pipe.execute()
        if lock_ttl and lock_ttl > 0:
            return lock_ttl
        if ip_count and address_blocked(int(ip_count)):
            return max(ip_ttl, 1)
        return 0

    async def failed(self, email: str, ip: str) -> int:
        """Record a failure; returns the lock it started (seconds, 0: none)."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.incr(f"ls:signfail:acct:{email}")
        pipe.expire(f"ls:signfail:acct:{email}", WINDOW_S, nx=True)
        pipe.incr(f"ls:signfail:ip:{ip}")
        pipe.expire(f"ls:signfail:ip:{ip}", WINDOW_S, nx=True)
        failures, _, _, _ = await pipe.execute()
        lock = lock_seconds(int(failures))
        if lock:
            await self.redis.set(f"ls:signfail:lock:{email}", 1, ex=lock)
        return lock

    async def succeeded(self, email: str) -> None:
        await self.redis.delete(f"ls:signfail:acct:{email}", f"ls:signfail:lock:{email}")
