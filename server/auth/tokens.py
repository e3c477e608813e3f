"""Bearer tokens: created with a role, stored hashed, checked in constant time.

A token is `mctl_<id>_<secret>`; only sha256(token) is stored. Tokens carry
enough entropy (256 bits) that a plain hash is safe. Lookup is by hash, and the
stored hash is then compared with `hmac.compare_digest` anyway so no branch
depends on how much of a guess was right.

Every call authenticates, so known tokens are kept in memory (`cached`), keyed by
hash. Any committed write to the tokens table (create, revoke) empties that cache
before the writer answers (`server.cache`), so a revoked token is refused by the
very next call on this replica; expiry is checked against the clock on every hit.
Unknown tokens are never cached: a guess always costs a database read.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from ..cache import InvalidatedCache
from ..clock import Clock
from ..errors import FailedPreconditionError, NotFoundError, UnauthenticatedError, Violations
from ..store.db import Database
from ..store.tables import TokenRow
from .roles import Role

log = logging.getLogger(__name__)

_NAME_MAX = 128
MAX_TTL_SECONDS = 100 * 365 * 86400


@dataclass(frozen=True)
class Identity:
    """Who is calling: resolved from the bearer token on every call."""

    token_id: str
    name: str
    role: Role

    @classmethod
    def anonymous_admin(cls) -> Identity:
        # Used only when auth is explicitly disabled.
        return cls(token_id="", name="anonymous", role=Role.ADMIN)


@dataclass(frozen=True)
class TokenInfo:
    id: str
    name: str
    role: Role
    created_at: dt.datetime
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None
    created_by: str


@dataclass(frozen=True)
class IssuedToken:
    info: TokenInfo
    #: The secret, returned once to the caller and never stored.
    secret: str


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class _Known:
    """What authentication needs of a stored token, as of the last read."""

    token_hash: str
    identity: Identity
    expires_at: dt.datetime | None
    revoked: bool


class TokenService:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock
        #: Token hash -> what the tokens table said; emptied by any committed write to that table.
        self.cache: InvalidatedCache[str, _Known] = InvalidatedCache("tokens", [TokenRow.__tablename__])
        db.changes.listen(self.cache.on_commit)

    def create(self, name: str, role: Role, *, ttl_seconds: float | None = None, created_by: str = "",
               secret: str | None = None) -> IssuedToken:
        problems = Violations()
        name = name.strip()
        if not name:
            problems.add("name", "a token needs a name, e.g. ci-pipeline")
        elif len(name) > _NAME_MAX:
            problems.add("name", f"at most {_NAME_MAX} characters")
        if ttl_seconds is not None and not 0 < ttl_seconds <= MAX_TTL_SECONDS:
            problems.add("ttl", "must be positive and at most 100 years; leave it unset for no expiry")
        problems.raise_if_any()
        token_id = secrets.token_hex(6)
        token = secret or f"mctl_{token_id}_{secrets.token_urlsafe(32)}"
        now = self._clock.now()
        row = TokenRow(id=token_id, name=name, role=role.name.lower(), token_hash=hash_token(token),
                       created_at=now, created_by=created_by,
                       expires_at=now + dt.timedelta(seconds=ttl_seconds) if ttl_seconds else None)
        with self._db.session() as s:
            s.add(row)
        return IssuedToken(_info(row), token)

    def revoke(self, token_id: str) -> TokenInfo:
        with self._db.session() as s:
            # Locked, with the other admins below: two concurrent revokes must not remove the last two.
            row = s.get(TokenRow, token_id, with_for_update=True)
            if row is None:
                raise NotFoundError(f"token {token_id!r} does not exist")
            if row.revoked_at is not None:
                raise FailedPreconditionError(f"token {token_id!r} is already revoked")
            if row.role == Role.ADMIN.name.lower() and self._active_admins(s) <= 1:
                # Nobody could create tokens any more; recovery would need a restart with MODELCTL_ADMIN_TOKEN.
                raise FailedPreconditionError("this is the last admin token; create another admin token first")
            row.revoked_at = self._clock.now()
            return _info(row)

    def list(self, *, include_inactive: bool = False) -> list[TokenInfo]:
        """Every token, oldest first; without `include_inactive`, only those that still work."""
        now = self._clock.now()
        with self._db.read() as s:
            rows = list(s.scalars(select(TokenRow).order_by(TokenRow.created_at, TokenRow.id)))
        infos = [_info(r) for r in rows]
        if include_inactive:
            return infos
        return [t for t in infos if t.revoked_at is None and (t.expires_at is None or t.expires_at > now)]

    def cached(self, token: str) -> Identity | None:
        """`authenticate` from memory, without blocking; None when the token must be read (call that)."""
        digest = hash_token(token)
        known = self.cache.get(digest)
        if known is None:
            return None
        return self._check(known, digest)

    def authenticate(self, token: str) -> Identity:
        digest = hash_token(token)
        generation = self.cache.generation  # before the read: a revoke committing meanwhile wins
        with self._db.read() as s:
            row = s.scalars(select(TokenRow).where(TokenRow.token_hash == digest)).first()
        if row is None or not hmac.compare_digest(row.token_hash, digest):
            raise UnauthenticatedError("unknown token")
        known = _Known(row.token_hash, Identity(token_id=row.id, name=row.name, role=Role.parse(row.role)),
                       row.expires_at, row.revoked_at is not None)
        self.cache.put(digest, known, generation)
        return self._check(known, digest)

    def _check(self, known: _Known, digest: str) -> Identity:
        if not hmac.compare_digest(known.token_hash, digest):
            raise UnauthenticatedError("unknown token")
        if known.revoked:
            raise UnauthenticatedError("token has been revoked")
        if known.expires_at is not None and known.expires_at <= self._clock.now():
            raise UnauthenticatedError("token has expired")
        return known.identity

    def has_admin(self) -> bool:
        with self._db.session() as s:
            return s.scalars(select(TokenRow.id).where(TokenRow.role == "admin",
                                                       TokenRow.revoked_at.is_(None))).first() is not None

    def ensure_admin(self, token_file: Path, env_token: str | None) -> Path | None:
        """First start: make sure an admin token exists.

        Uses `env_token` (MODELCTL_ADMIN_TOKEN) when given, else generates one
        and writes it to `token_file` with mode 0600. Returns the file written,
        if any. The token itself is never logged.
        """
        if env_token:
            if not self._has_hash(hash_token(env_token)):
                self.create("bootstrap-admin", Role.ADMIN, created_by="MODELCTL_ADMIN_TOKEN", secret=env_token)
                log.info("admin token taken from MODELCTL_ADMIN_TOKEN")
            return None
        if self.has_admin():
            return None
        issued = self.create("bootstrap-admin", Role.ADMIN, created_by="first start")
        token_file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(issued.secret + "\n")
        os.chmod(token_file, 0o600)
        log.warning("generated the first admin token; it is in %s (readable by this user only)", token_file)
        return token_file

    def _active_admins(self, s) -> int:  # type: ignore[no-untyped-def]
        now = self._clock.now()
        rows = s.scalars(select(TokenRow).where(TokenRow.role == "admin", TokenRow.revoked_at.is_(None))
                         .with_for_update())
        return sum(1 for r in rows if r.expires_at is None or r.expires_at > now)

    def _has_hash(self, digest: str) -> bool:
        with self._db.session() as s:
            return s.scalars(select(TokenRow.id).where(TokenRow.token_hash == digest)).first() is not None


def _info(row: TokenRow) -> TokenInfo:
    return TokenInfo(id=row.id, name=row.name, role=Role.parse(row.role), created_at=row.created_at,
                     expires_at=row.expires_at, revoked_at=row.revoked_at, created_by=row.created_by)
