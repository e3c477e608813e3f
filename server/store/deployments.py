"""The SQL `DeploymentRepository`: one database transaction per controller decision.

Row locks (`SELECT ... FOR UPDATE` on PostgreSQL; SQLite's `BEGIN IMMEDIATE`
already serialises writers) make each decision about a deployment run alone,
even across controller replicas, and the unique `active_model_id` column makes a
second active deployment of a model impossible whatever races.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
from typing import Callable, Collection, Iterator, Mapping, Sequence

from sqlalchemy import Row, Text, and_, cast, delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..deployments.model import (
    Deployment,
    DeploymentEvent,
    EventKind,
    Gate,
    GateEvaluation,
    Instance,
    ModelInfo,
    Verdict,
    VersionInfo,
)
from ..deployments.params import DeploymentParams
from ..deployments.phases import Phase, Strategy
from ..deployments.repository import ActiveDeploymentConflict
from ..errors import NotFoundError
from .analysis_tables import ExperimentRow
from .db import Database
from .deployment_tables import (
    DeploymentEventRow,
    DeploymentRow,
    GateEvaluationRow,
    InstanceRow,
    TrafficWeightRow,
)
from .tables import ModelRow, VersionRow, VersionTagRow

log = logging.getLogger(__name__)

_ARCHIVED = "ARCHIVED"


class SqlDeploymentRepository:
    def __init__(self, db: Database, *,
                 on_evaluations: Callable[[list[tuple[str, GateEvaluation]]], None] | None = None) -> None:
        self._db = db
        #: Told (model, evaluation) for every gate evaluation stored, after its transaction committed (metrics).
        self._on_evaluations = on_evaluations

    @contextlib.contextmanager
    def transaction(self) -> Iterator[SqlDeploymentTx]:
        with self._db.session() as session:
            tx = SqlDeploymentTx(session)
            yield tx
        if tx.stored_evaluations and self._on_evaluations is not None:
            try:
                self._on_evaluations(tx.stored_evaluations)
            except Exception:  # noqa: BLE001 - metrics must never turn a committed decision into an error
                log.warning("could not count stored gate evaluations", exc_info=True)

    @contextlib.contextmanager
    def read(self) -> Iterator[SqlDeploymentTx]:
        with self._db.read() as session:
            yield SqlDeploymentTx(session)


class SqlDeploymentTx:
    def __init__(self, session: Session) -> None:
        self._s = session
        self._model_ids: dict[str, int] = {}
        self._model_names: dict[int, str] = {}
        #: Deployment id -> model, of the deployments this transaction read.
        self._deployment_models: dict[str, str] = {}
        #: (model, evaluation) stored by this transaction, for the repository's after-commit hook.
        self.stored_evaluations: list[tuple[str, GateEvaluation]] = []

    # --- models and versions ---
    def get_model(self, name: str, *, lock: bool = False) -> ModelInfo | None:
        query = select(ModelRow).where(ModelRow.name == name)
        row = self._s.scalars(query.with_for_update() if lock else query).first()
        if row is None:
            return None
        self._remember(name, row.id)
        return ModelInfo(row.name, row.live_version, row.previous_version)

    def get_version(self, model: str, version: str) -> VersionInfo | None:
        row = self._s.scalars(select(VersionRow).join(ModelRow).where(
            ModelRow.name == model, VersionRow.version == version)).first()
        if row is None:
            return None
        return VersionInfo(model, version, archived=row.state == _ARCHIVED or row.archived_at is not None)

    def set_live_versions(self, model: str, live: str | None, previous: str | None) -> None:
        self._s.execute(update(ModelRow).where(ModelRow.id == self._model_id(model))
                        .values(live_version=live, previous_version=previous))

    # --- deployments ---
    def get_deployment(self, deployment_id: str, *, lock: bool = False) -> Deployment | None:
        query = select(DeploymentRow).where(DeploymentRow.id == deployment_id)
        row = self._s.scalars(query.with_for_update() if lock else query).first()
        return self._deployment(row) if row is not None else None

    def active_deployment(self, model: str) -> Deployment | None:
        row = self._s.scalars(select(DeploymentRow)
                              .join(ModelRow, ModelRow.id == DeploymentRow.model_id)
                              .where(ModelRow.name == model, DeploymentRow.active_model_id.is_not(None))
                              ).first()
        if row is None:
            return None
        self._remember(model, row.model_id)  # known from the join: no second query for the name
        return self._deployment(row)

    def running_experiment(self, model: str) -> str | None:
        return self._s.scalar(select(ExperimentRow.id).join(ModelRow, ModelRow.id == ExperimentRow.model_id)
                              .where(ModelRow.name == model, ExperimentRow.active_model_id.is_not(None)))

    def active_deployment_ids(self) -> list[str]:
        return list(self._s.scalars(select(DeploymentRow.id).where(DeploymentRow.active_model_id.is_not(None))
                                    .order_by(DeploymentRow.created_at, DeploymentRow.id)))

    def list_deployments(self, *, model: str | None = None, phases: Collection[Phase] | None = None,
                         after: str | None = None, limit: int = 100) -> list[Deployment]:
        # A reconcile tick lists every active deployment: plain rows (no ORM instances) with the model's name
        # (a query per row for it was 85 % of a tick with nothing due) and the params as stored text, so an
        # unchanged row is not converted again (`_listed`).
        query = select(*_LISTED_COLUMNS).join(ModelRow, ModelRow.id == DeploymentRow.model_id)
        if model is not None:
            query = query.where(ModelRow.name == model)
        if phases is not None:
            query = query.where(DeploymentRow.phase.in_([p.value for p in phases]))
        if after is not None:
            cursor = self._s.get(DeploymentRow, after)
            if cursor is None:
                return []
            same_time = and_(DeploymentRow.created_at == cursor.created_at, DeploymentRow.id < cursor.id)
            query = query.where(or_(DeploymentRow.created_at < cursor.created_at, same_time))
        query = query.order_by(DeploymentRow.created_at.desc(), DeploymentRow.id.desc()).limit(limit)
        listed = []
        for row in self._s.execute(query):
            self._remember(row.model_name, row.model_id)
            self._deployment_models[row.id] = row.model_name
            listed.append(_listed(row))
        return listed

    def insert_deployment(self, deployment: Deployment) -> None:
        model_id = self._model_id(deployment.model)
        row = DeploymentRow(id=deployment.id, model_id=model_id, last_event_seq=0)
        _copy_into(row, deployment, model_id)
        try:
            # A savepoint: after a conflict the transaction can still read who won.
            with self._s.begin_nested():
                self._s.add(row)
        except IntegrityError as exc:
            if self.active_deployment(deployment.model) is not None:
                raise ActiveDeploymentConflict(deployment.model) from exc
            raise

    def update_deployment(self, deployment: Deployment) -> None:
        row = self._s.get(DeploymentRow, deployment.id)
        if row is None:
            raise NotFoundError(f"deployment {deployment.id!r} not found")
        _copy_into(row, deployment, row.model_id)

    # --- history ---
    def append_event(self, deployment_id: str, kind: EventKind, phase: Phase, step: int,
                     traffic_percent: float, message: str, time: dt.datetime) -> DeploymentEvent:
        row = self._s.get(DeploymentRow, deployment_id)
        if row is None:
            raise NotFoundError(f"deployment {deployment_id!r} not found")
        row.last_event_seq += 1
        self._s.add(DeploymentEventRow(deployment_id=deployment_id, seq=row.last_event_seq, kind=kind.value,
                                       phase=phase.value, step=step, traffic_percent=traffic_percent,
                                       message=message, time=time))
        return DeploymentEvent(seq=row.last_event_seq, deployment_id=deployment_id,
                               model=self._model_name(row.model_id), kind=kind, phase=phase, step=step,
                               traffic_percent=traffic_percent, message=message, time=time)

    def list_events(self, deployment_id: str, *, after_seq: int = 0,
                    limit: int | None = None) -> list[DeploymentEvent]:
        query = (select(DeploymentEventRow, ModelRow.name)
                 .join(DeploymentRow, DeploymentRow.id == DeploymentEventRow.deployment_id)
                 .join(ModelRow, ModelRow.id == DeploymentRow.model_id)
                 .where(DeploymentEventRow.deployment_id == deployment_id, DeploymentEventRow.seq > after_seq)
                 .order_by(DeploymentEventRow.seq))
        if limit is not None:
            query = query.limit(limit)
        return [DeploymentEvent(seq=e.seq, deployment_id=e.deployment_id, model=name, kind=EventKind(e.kind),
                                phase=Phase(e.phase), step=e.step, traffic_percent=e.traffic_percent,
                                message=e.message, time=e.time)
                for e, name in self._s.execute(query)]

    def add_evaluations(self, evaluations: Sequence[GateEvaluation]) -> None:
        self._s.add_all(GateEvaluationRow(
            deployment_id=e.deployment_id, step=e.step, gate=e.gate.value, value=e.value,
            threshold=e.threshold, window_start=e.window_start, window_end=e.window_end, samples=e.samples,
            verdict=e.verdict.value, critical=e.critical, detail=e.detail) for e in evaluations)
        self.stored_evaluations += [(self._deployment_models.get(e.deployment_id, ""), e) for e in evaluations]

    def list_evaluations(self, deployment_id: str, *, limit: int = 50) -> list[GateEvaluation]:
        rows = list(self._s.scalars(select(GateEvaluationRow)
                                    .where(GateEvaluationRow.deployment_id == deployment_id)
                                    .order_by(GateEvaluationRow.id.desc()).limit(limit)))
        return [GateEvaluation(deployment_id=r.deployment_id, step=r.step, gate=Gate(r.gate), value=r.value,
                               threshold=r.threshold, window_start=r.window_start, window_end=r.window_end,
                               samples=r.samples, verdict=Verdict(r.verdict), critical=r.critical,
                               detail=r.detail)
                for r in reversed(rows)]

    # --- traffic ---
    def get_traffic(self, model: str) -> dict[str, float]:
        return traffic_of(self._s, self._model_id(model))

    def set_traffic(self, model: str, weights: Mapping[str, float]) -> None:
        model_id = self._model_id(model)
        self._s.execute(delete(TrafficWeightRow).where(TrafficWeightRow.model_id == model_id))
        self._s.add_all(TrafficWeightRow(model_id=model_id, version=v, percent=p) for v, p in weights.items())
        self._s.flush()

    # --- serving instances ---
    def list_instances(self, model: str) -> list[Instance]:
        rows = self._s.scalars(select(InstanceRow).where(InstanceRow.model_id == self._model_id(model))
                               .order_by(InstanceRow.instance_id).execution_options(populate_existing=True))
        return [_instance(row, model) for row in rows]

    def get_instance(self, model: str, instance_id: str, *, lock: bool = False) -> Instance | None:
        model_id = self._model_id_or_none(model)
        if model_id is None:
            return None
        row = self._s.get(InstanceRow, (model_id, instance_id), populate_existing=True,
                          with_for_update=lock or None)
        return _instance(row, model) if row is not None else None

    def save_instance(self, instance: Instance) -> None:
        self._s.merge(InstanceRow(
            model_id=self._model_id(instance.model), instance_id=instance.instance_id,
            address=instance.address,
            assigned_version=instance.assigned_version, loaded_version=instance.loaded_version,
            healthy=instance.healthy, registered_at=instance.registered_at,
            last_heartbeat_at=instance.last_heartbeat_at, lost=instance.lost))
        self._s.flush()

    def record_heartbeat(self, model: str, instance_id: str, loaded_version: str | None, healthy: bool,
                         at: dt.datetime) -> Instance | None:
        model_id = self._model_id_or_none(model)
        if model_id is None:
            return None
        # Only the columns the instance reports: a rolling update may be changing its assignment concurrently.
        done = self._s.execute(update(InstanceRow).where(InstanceRow.model_id == model_id,
                                                         InstanceRow.instance_id == instance_id)
                               .values(loaded_version=loaded_version, healthy=healthy, last_heartbeat_at=at,
                                       lost=False).execution_options(synchronize_session=False))
        if done.rowcount == 0:  # type: ignore[attr-defined]
            return None
        return self.get_instance(model, instance_id)

    def assign_instances(self, model: str, instance_ids: Collection[str], version: str | None) -> None:
        if not instance_ids:
            return
        self._s.execute(update(InstanceRow).where(InstanceRow.model_id == self._model_id(model),
                                                  InstanceRow.instance_id.in_(list(instance_ids)))
                        .values(assigned_version=version).execution_options(synchronize_session=False))

    def mark_lost(self, model: str, instance_ids: Collection[str], heard_before: dt.datetime) -> list[str]:
        if not instance_ids:
            return []
        # The condition is checked again under the row lock: a heartbeat that raced in wins.
        result = self._s.execute(
            update(InstanceRow)
            .where(InstanceRow.model_id == self._model_id(model),
                   InstanceRow.instance_id.in_(list(instance_ids)),
                   InstanceRow.lost.is_(False), InstanceRow.last_heartbeat_at < heard_before)
            .values(lost=True).returning(InstanceRow.instance_id).execution_options(synchronize_session=False))
        return sorted(result.scalars())

    # --- mapping ---
    def _model_id(self, name: str) -> int:
        model_id = self._model_id_or_none(name)
        if model_id is None:
            raise NotFoundError(f"model {name!r} not found")
        return model_id

    def _model_id_or_none(self, name: str) -> int | None:
        if name not in self._model_ids:
            found = self._s.scalar(select(ModelRow.id).where(ModelRow.name == name))
            if found is None:
                return None
            self._remember(name, found)
        return self._model_ids[name]

    def _remember(self, name: str, model_id: int) -> None:
        self._model_ids[name] = model_id
        self._model_names[model_id] = name

    def _model_name(self, model_id: int) -> str:
        name = self._model_names.get(model_id)
        if name is None:
            name = self._s.scalar(select(ModelRow.name).where(ModelRow.id == model_id))
            assert name is not None, "a deployment's model row cannot vanish (foreign key)"
            self._remember(name, model_id)
        return name

    def _deployment(self, row: DeploymentRow) -> Deployment:
        model = self._deployment_models[row.id] = self._model_name(row.model_id)
        return Deployment(
            id=row.id, model=model, version=row.version,
            previous_version=row.previous_version, strategy=Strategy(row.strategy), phase=Phase(row.phase),
            step=row.step, traffic_percent=row.traffic_percent, failed_checks=row.failed_checks,
            reason=row.reason, params=DeploymentParams.from_dict(row.params), created_at=row.created_at,
            updated_at=row.updated_at,
            step_started_at=row.step_started_at, finished_at=row.finished_at, created_by=row.created_by,
            total_steps=row.total_steps or 0)


_LISTED_COLUMNS = (*(c for c in DeploymentRow.__table__.c if c.key != "params"),
                   cast(DeploymentRow.__table__.c.params, Text).label("params_text"),
                   ModelRow.name.label("model_name"))
#: Deployment id -> (its listed row, the Deployment built from it). Converting every active deployment's row
#: (params from JSON, enums, the dataclass) on every tick was most of a tick with nothing due. Checked
#: against the whole row, so never stale; bounded.
_LISTED: dict[str, tuple[Row, Deployment]] = {}
_LISTED_MAX = 16_384
_PARAMS: dict[str, DeploymentParams] = {}


def _listed(row: Row) -> Deployment:
    known = _LISTED.get(row.id)
    if known is not None and known[0] == row:
        return known[1]
    params = _PARAMS.get(row.params_text)
    if params is None:
        params = DeploymentParams.from_dict(json.loads(row.params_text))
        if len(_PARAMS) >= _LISTED_MAX:
            _PARAMS.clear()
        _PARAMS[row.params_text] = params
    dep = Deployment(
        id=row.id, model=row.model_name, version=row.version,
        previous_version=row.previous_version, strategy=Strategy(row.strategy), phase=Phase(row.phase),
        step=row.step, traffic_percent=row.traffic_percent, failed_checks=row.failed_checks,
        reason=row.reason, params=params, created_at=row.created_at, updated_at=row.updated_at,
        step_started_at=row.step_started_at, finished_at=row.finished_at, created_by=row.created_by,
        total_steps=row.total_steps or 0)
    if len(_LISTED) >= _LISTED_MAX:
        _LISTED.clear()
    _LISTED[row.id] = (row, dep)
    return dep


def _copy_into(row: DeploymentRow, d: Deployment, model_id: int) -> None:
    row.active_model_id = model_id if d.phase.is_active else None
    row.version, row.previous_version = d.version, d.previous_version
    row.strategy, row.phase = d.strategy.value, d.phase.value
    row.step, row.traffic_percent = d.step, d.traffic_percent
    row.failed_checks, row.reason = d.failed_checks, d.reason
    row.params = d.params.to_dict()
    row.created_at, row.updated_at = d.created_at, d.updated_at
    row.step_started_at, row.finished_at, row.created_by = d.step_started_at, d.finished_at, d.created_by
    row.total_steps = d.total_steps


def _instance(row: InstanceRow, model: str) -> Instance:
    return Instance(model=model, instance_id=row.instance_id, address=row.address,
                    assigned_version=row.assigned_version, loaded_version=row.loaded_version,
                    healthy=row.healthy,
                    registered_at=row.registered_at, last_heartbeat_at=row.last_heartbeat_at, lost=row.lost)


# --- hooks for the registry (RegistryService's protected_versions and traffic_lookup) ---------------------

#: Every table a model as GetModel and GetTrafficSplit show it is read from: the read cache's invalidators.
REGISTRY_READ_TABLES = frozenset({ModelRow.__tablename__, VersionRow.__tablename__, VersionTagRow.__tablename__,
                                  TrafficWeightRow.__tablename__})

def traffic_of(session: Session, model_id: int) -> dict[str, float]:
    rows = session.execute(select(TrafficWeightRow.version, TrafficWeightRow.percent)
                           .where(TrafficWeightRow.model_id == model_id).order_by(TrafficWeightRow.version))
    return {version: percent for version, percent in rows}


def traffic_lookup(session: Session, models: list[ModelRow]) -> dict[int, dict[str, float]]:
    """The traffic splits of `models` in one query, for GetModel and ListModels."""
    out: dict[int, dict[str, float]] = {}
    rows = session.execute(select(TrafficWeightRow.model_id, TrafficWeightRow.version, TrafficWeightRow.percent)
                           .where(TrafficWeightRow.model_id.in_([m.id for m in models]))
                           .order_by(TrafficWeightRow.model_id, TrafficWeightRow.version))
    for model_id, version, percent in rows:
        out.setdefault(model_id, {})[version] = percent
    return out


def protected_versions(session: Session, model: ModelRow) -> set[str]:
    """Versions an active deployment or a running experiment of the model needs: none may be archived meanwhile."""
    rows = session.execute(select(DeploymentRow.version, DeploymentRow.previous_version)
                           .where(DeploymentRow.active_model_id == model.id))
    arms = session.execute(select(ExperimentRow.control_version, ExperimentRow.treatment_version)
                           .where(ExperimentRow.active_model_id == model.id))
    return {v for pair in [*rows, *arms] for v in pair if v}
