"""Password hashing with argon2id (argon2-cffi): random salts, so it lives outside domain/."""
from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_HASHER = PasswordHasher()  # argon2id, RFC 9106 low-memory profile defaults
# a real hash of a random password: unknown accounts cost as much as known ones (no timing oracle)
_DUMMY = _HASHER.hash("no-such-account-password")


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Whether the password matches; an empty or unusable hash never matches (after the same work)."""
    try:
        return _HASHER.verify(password_hash or _DUMMY, password) and bool(password_hash)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def fingerprint(password_hash: str) -> str:
    """A short fingerprint of a hash: a session remembers it, so a password change ends the others."""
    import hashlib
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]
