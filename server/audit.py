"""The audit log: who did what, when, to what, and how it ended.

Every mutating RPC and every denied call is recorded by the API interceptor.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select

from .clock import Clock
from .pagination import decode_id_page_token, encode_page_token, page_size_or_default
from .store.db import Database
from .store.tables import AuditRow


@dataclass(frozen=True)
class AuditEvent:
    id: int
    time: dt.datetime
    token_id: str
    token_name: str
    role: str
    rpc: str
    target: str
    outcome: str
    detail: str
    peer: str


@dataclass(frozen=True)
class AuditPage:
    events: list[AuditEvent]
    next_page_token: str


class AuditLog:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    def record(self, *, rpc: str, outcome: str, token_id: str = "", token_name: str = "", role: str = "",
               target: str = "", detail: str = "", peer: str = "") -> None:
        with self._db.session() as s:
            s.add(AuditRow(time=self._clock.now(), token_id=token_id, token_name=token_name, role=role,
                           rpc=rpc, target=_text(target[:2000]), outcome=outcome, detail=_text(detail[:2000]),
                           peer=peer[:128]))

    def list(self, *, page_size: int = 0, page_token: str = "", rpc: str = "", token_id: str = "",
             outcome: str = "") -> AuditPage:
        size = page_size_or_default(page_size, field="page_size")
        before = decode_id_page_token(page_token, kind="audit", field="page_token")
        query = select(AuditRow).order_by(AuditRow.id.desc()).limit(size + 1)
        if before is not None:
            query = query.where(AuditRow.id < before)
        if rpc:
            query = query.where(AuditRow.rpc == rpc)
        if token_id:
            query = query.where(AuditRow.token_id == token_id)
        if outcome:
            query = query.where(AuditRow.outcome == outcome)
        with self._db.read() as s:
            rows = list(s.scalars(query))
        more = len(rows) > size
        rows = rows[:size]
        token = encode_page_token("audit", str(rows[-1].id)) if more and rows else ""
        return AuditPage([_event(r) for r in rows], token)


def _text(value: str) -> str:
    """PostgreSQL text cannot hold NUL: a request field quoted in the audit record must not lose the record."""
    return value.replace("\x00", "\\0")


def _event(r: AuditRow) -> AuditEvent:
    return AuditEvent(id=r.id, time=r.time, token_id=r.token_id, token_name=r.token_name, role=r.role, rpc=r.rpc,
                      target=r.target, outcome=r.outcome, detail=r.detail, peer=r.peer)
