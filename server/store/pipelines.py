"""The SQL `PipelineRepository`: pipelines and their commands.

Rows map to the frozen records of `pipelines.model` here and nowhere else. The
unique `open_optimize` column makes "one open OPTIMIZE per model" a fact the
database keeps, so two operators racing each other cannot both start one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
from typing import Any, Collection, Iterator

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..deployments.params import ParamOverrides
from ..deployments.phases import Strategy
from ..errors import FailedPreconditionError, NotFoundError
from ..pipelines.model import (
    CommandKind,
    Pipeline,
    PipelineCommand,
    PipelineResult,
    PipelineState,
    ThenDeploy,
)
from ..pipelines.states import UNACKNOWLEDGED, CommandState
from .db import Database
from .pipeline_tables import PipelineCommandRow, PipelineRow


class SqlPipelineRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    @contextlib.contextmanager
    def transaction(self) -> Iterator[SqlPipelineTx]:
        with self._db.session() as session:
            yield SqlPipelineTx(session)

    @contextlib.contextmanager
    def read(self) -> Iterator[SqlPipelineTx]:
        with self._db.read() as session:
            yield SqlPipelineTx(session)


class SqlPipelineTx:
    def __init__(self, session: Session) -> None:
        self._s = session

    # --- pipelines ------------------------------------------------------------------------------------------

    def get_pipeline(self, name: str, *, lock: bool = False) -> Pipeline | None:
        query = select(PipelineRow).where(PipelineRow.name == name).execution_options(populate_existing=True)
        row = self._s.scalars(query.with_for_update() if lock else query).first()
        return _pipeline(row) if row is not None else None

    def save_pipeline(self, p: Pipeline) -> None:
        row = self._s.get(PipelineRow, p.name)
        if row is None:
            row = PipelineRow(name=p.name)
            self._s.add(row)
        row.models, row.version, row.labels = list(p.models), p.version, dict(p.labels)  # type: ignore[assignment]
        row.state, row.job, row.progress, row.last_seen = p.state.value, p.job, p.progress, p.last_seen
        row.last_result = _result_dict(p.last_result)
        row.details, row.registered_at, row.registered_by = dict(p.details), p.registered_at, p.registered_by
        self._s.flush()

    def touch(self, name: str, now: dt.datetime) -> None:
        self._s.execute(update(PipelineRow).where(PipelineRow.name == name, PipelineRow.last_seen < now)
                        .values(last_seen=now).execution_options(synchronize_session=False))

    def list_pipelines(self, *, model: str | None = None, after: str | None = None,
                       limit: int = 100) -> list[Pipeline]:
        query = select(PipelineRow).order_by(PipelineRow.name)
        if after is not None:
            query = query.where(PipelineRow.name > after)
        if model is None:
            return [_pipeline(r) for r in self._s.scalars(query.limit(limit))]
        # The models are a JSON list (no portable containment query): filter while paging by name.
        out: list[Pipeline] = []
        for row in self._s.scalars(query):
            if model in (row.models or []):
                out.append(_pipeline(row))
                if len(out) >= limit:
                    break
        return out

    def all_pipelines(self) -> list[Pipeline]:
        return [_pipeline(r) for r in self._s.scalars(select(PipelineRow).order_by(PipelineRow.name))]

    # --- commands -------------------------------------------------------------------------------------------

    def insert_command(self, c: PipelineCommand) -> None:
        row = PipelineCommandRow(id=c.id)
        _copy_into(row, c)
        try:
            with self._s.begin_nested():  # a savepoint: the unique open_optimize refuses a second one
                self._s.add(row)
                self._s.flush()
        except IntegrityError:
            raise FailedPreconditionError(
                f"another OPTIMIZE of {c.model or c.pipeline} was sent at the same time; retry") from None

    def get_command(self, command_id: str, *, lock: bool = False) -> PipelineCommand | None:
        query = select(PipelineCommandRow).where(PipelineCommandRow.id == command_id)
        query = query.execution_options(populate_existing=True)
        row = self._s.scalars(query.with_for_update() if lock else query).first()
        return _command(row) if row is not None else None

    def update_command(self, c: PipelineCommand) -> None:
        row = self._s.get(PipelineCommandRow, c.id)
        if row is None:
            raise NotFoundError(f"pipeline command {c.id!r} not found")
        _copy_into(row, c)
        self._s.flush()

    def open_optimize(self, key: str) -> PipelineCommand | None:
        row = self._s.scalars(select(PipelineCommandRow).where(PipelineCommandRow.open_optimize == key)).first()
        return _command(row) if row is not None else None

    def list_commands(self, *, pipeline: str | None = None, states: Collection[CommandState] | None = None,
                      after: str | None = None, limit: int = 100) -> list[PipelineCommand]:
        query = select(PipelineCommandRow)
        if pipeline is not None:
            query = query.where(PipelineCommandRow.pipeline == pipeline)
        if states is not None:
            query = query.where(PipelineCommandRow.state.in_([s.value for s in states]))
        if after is not None:
            cursor = self._s.get(PipelineCommandRow, after)
            if cursor is None:
                return []
            same_time = and_(PipelineCommandRow.created_at == cursor.created_at, PipelineCommandRow.id < cursor.id)
            query = query.where(or_(PipelineCommandRow.created_at < cursor.created_at, same_time))
        query = query.order_by(PipelineCommandRow.created_at.desc(), PipelineCommandRow.id.desc()).limit(limit)
        return [_command(r) for r in self._s.scalars(query)]

    def unacknowledged(self, pipeline: str) -> list[PipelineCommand]:
        query = (select(PipelineCommandRow)
                 .where(PipelineCommandRow.pipeline == pipeline,
                        PipelineCommandRow.state.in_([s.value for s in UNACKNOWLEDGED]))
                 .order_by(PipelineCommandRow.created_at, PipelineCommandRow.id)
                 .execution_options(populate_existing=True))
        return [_command(r) for r in self._s.scalars(query)]

    def due(self, now: dt.datetime) -> list[PipelineCommand]:
        query = (select(PipelineCommandRow)
                 .where(PipelineCommandRow.state.in_([s.value for s in UNACKNOWLEDGED]),
                        PipelineCommandRow.deadline <= now)
                 .order_by(PipelineCommandRow.deadline))
        return [_command(r) for r in self._s.scalars(query)]

    def acknowledged_with_deploy(self) -> list[PipelineCommand]:
        query = (select(PipelineCommandRow)
                 .where(PipelineCommandRow.state == CommandState.ACKNOWLEDGED.value,
                        PipelineCommandRow.then_deploy.is_not(None))
                 .order_by(PipelineCommandRow.created_at))
        return [c for c in (_command(r) for r in self._s.scalars(query)) if c.then_deploy is not None]


# --- rows <-> records -------------------------------------------------------------------------------------


def optimize_key(c: PipelineCommand) -> str | None:
    """The `open_optimize` value of an open OPTIMIZE: its model, or the pipeline's name without one."""
    if c.kind is not CommandKind.OPTIMIZE or c.state.is_final:
        return None
    return c.model or f"@{c.pipeline}"


def _pipeline(row: PipelineRow) -> Pipeline:
    return Pipeline(
        name=row.name, models=tuple(row.models or ()), version=row.version, labels=dict(row.labels or {}),
        state=PipelineState(row.state), job=row.job, progress=row.progress, last_seen=row.last_seen,
        last_result=_result_of(row.last_result), details=dict(row.details or {}),
        registered_at=row.registered_at, registered_by=row.registered_by)


def _result_dict(r: PipelineResult | None) -> dict[str, Any] | None:
    if r is None:
        return None
    return {"model": r.model, "version": r.version, "metrics": dict(r.metrics), "summary": r.summary,
            "finished_at": r.finished_at.isoformat() if r.finished_at else None}


def _result_of(data: dict[str, Any] | None) -> PipelineResult | None:
    if not data:
        return None
    finished = data.get("finished_at")
    return PipelineResult(model=data.get("model", ""), version=data.get("version", ""),
                          metrics={k: float(v) for k, v in (data.get("metrics") or {}).items()},
                          summary=data.get("summary", ""),
                          finished_at=dt.datetime.fromisoformat(finished) if finished else None)


def _then_deploy_dict(t: ThenDeploy | None) -> dict[str, Any] | None:
    if t is None:
        return None
    overrides = {k: (list(v) if isinstance(v, tuple) else v)
                 for k, v in dataclasses.asdict(t.overrides).items() if v is not None}
    return {"strategy": t.strategy.value, "overrides": overrides}


def _then_deploy_of(data: dict[str, Any] | None) -> ThenDeploy | None:
    if not data:
        return None
    known = {f.name for f in dataclasses.fields(ParamOverrides)}
    overrides = {k: (tuple(v) if isinstance(v, list) else v)
                 for k, v in (data.get("overrides") or {}).items() if k in known}
    return ThenDeploy(Strategy(data["strategy"]), ParamOverrides(**overrides))


def _command(row: PipelineCommandRow) -> PipelineCommand:
    return PipelineCommand(
        id=row.id, pipeline=row.pipeline, kind=CommandKind(row.kind), model=row.model,
        parameters=dict(row.parameters or {}), config=row.config, then_deploy=_then_deploy_of(row.then_deploy),
        state=CommandState(row.state), result=row.result, error=row.error, result_version=row.result_version,
        deployment_id=row.deployment_id, created_at=row.created_at, updated_at=row.updated_at,
        deadline=row.deadline, created_by=row.created_by, delivered_at=row.delivered_at,
        acknowledged_at=row.acknowledged_at, finished_at=row.finished_at)


def _copy_into(row: PipelineCommandRow, c: PipelineCommand) -> None:
    row.pipeline, row.kind, row.model, row.open_optimize = c.pipeline, c.kind.value, c.model, optimize_key(c)
    row.parameters, row.config = dict(c.parameters), c.config  # type: ignore[assignment]
    row.then_deploy = _then_deploy_dict(c.then_deploy)
    row.state, row.result, row.error = c.state.value, c.result, c.error
    row.result_version, row.deployment_id = c.result_version, c.deployment_id
    row.created_at, row.updated_at, row.deadline, row.created_by = c.created_at, c.updated_at, c.deadline, c.created_by
    row.delivered_at, row.acknowledged_at, row.finished_at = c.delivered_at, c.acknowledged_at, c.finished_at
