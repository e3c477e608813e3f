"""The SQL `ExperimentRepository`: experiments, their arms' running sums, and the model's traffic.

`SqlExperimentTx` extends the deployments' transaction, so an experiment reads
the model row (and its lock), the versions, the active deployment and the
traffic split with the very code the deployment engine uses. Arms are added to
with `UPDATE ... SET x = x + :d` inside the metrics journal's transaction: sums
commute, so concurrent reports never lose one another's samples, and a report
counts only if its journal row commits.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Callable, Collection, Iterator, Sequence

from sqlalchemy import and_, case, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..errors import FailedPreconditionError, NotFoundError
from ..experiments.model import Arm, ArmIncrement, ArmTotals, Experiment, Metric
from ..experiments.states import ExperimentState
from .analysis_tables import ExperimentArmRow, ExperimentRow
from .db import Database
from .deployments import SqlDeploymentTx
from .tables import ModelRow

_SUMS = tuple(f.name for f in dataclasses.fields(ArmTotals))
#: The integer sums (BIGINT columns), and the most they hold.
_COUNTS = frozenset(name for name in _SUMS if isinstance(getattr(ArmTotals(), name), int))
MAX_COUNT = 2 ** 63 - 1


class SqlExperimentRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    @contextlib.contextmanager
    def transaction(self) -> Iterator[SqlExperimentTx]:
        with self._db.session() as session:
            yield SqlExperimentTx(session)

    @contextlib.contextmanager
    def read(self) -> Iterator[SqlExperimentTx]:
        with self._db.read() as session:
            yield SqlExperimentTx(session)

    def writer(self, increments: Sequence[ArmIncrement]) -> Callable[[Session], None]:
        """Adds `increments` in the session given (the journal's), to experiments still running."""
        def write(session: Session) -> None:
            for inc in increments:
                deltas = {name: getattr(inc.totals, name) for name in _SUMS if getattr(inc.totals, name)}
                if not deltas:
                    continue
                values = {}
                for name, delta in deltas.items():
                    column = getattr(ExperimentArmRow, name)
                    if name in _COUNTS:
                        # BIGINT sums saturate instead of overflowing (PostgreSQL refuses, SQLite turns REAL).
                        delta = min(delta, MAX_COUNT)
                        values[column] = case((column > MAX_COUNT - delta, MAX_COUNT), else_=column + delta)
                    else:
                        values[column] = column + delta
                still_running = select(ExperimentRow.id).where(ExperimentRow.id == inc.experiment_id,
                                                                ExperimentRow.active_model_id.is_not(None))
                session.execute(
                    update(ExperimentArmRow)
                    .where(ExperimentArmRow.experiment_id == inc.experiment_id,
                           ExperimentArmRow.arm == inc.arm.value,
                           ExperimentArmRow.experiment_id.in_(still_running))
                    .values(values)
                    .execution_options(synchronize_session=False))
        return write


class SqlExperimentTx(SqlDeploymentTx):
    """The deployment transaction's model, version, deployment and traffic methods, plus experiments."""

    def running_experiments(self) -> list[Experiment]:
        return [_experiment(row, name) for row, name in self._s.execute(
            _with_model().where(ExperimentRow.active_model_id.is_not(None)).order_by(ExperimentRow.created_at))]

    def insert_experiment(self, experiment: Experiment) -> None:
        model_id = self._model_id(experiment.model)
        row = ExperimentRow(id=experiment.id, model_id=model_id)
        _copy_into(row, experiment, model_id)
        try:
            # A savepoint: the unique active_model_id refuses a second running experiment of the model.
            with self._s.begin_nested():
                self._s.add(row)
                self._s.flush()
                self._s.add_all(ExperimentArmRow(experiment_id=experiment.id, arm=arm.value,
                                                 version=experiment.version_of(arm),
                                                 **{name: 0 for name in _SUMS}) for arm in Arm)
                self._s.flush()
        except IntegrityError:
            raise FailedPreconditionError(
                f"another experiment of {experiment.model} started at the same time; retry") from None

    def get_experiment(self, experiment_id: str, *, lock: bool = False) -> Experiment | None:
        query = _with_model().where(ExperimentRow.id == experiment_id)
        if lock:
            query = query.with_for_update(of=ExperimentRow)
        found = self._s.execute(query.execution_options(populate_existing=True)).first()
        return _experiment(found[0], found[1]) if found is not None else None

    def update_experiment(self, experiment: Experiment) -> None:
        row = self._s.get(ExperimentRow, experiment.id)
        if row is None:
            raise NotFoundError(f"experiment {experiment.id!r} not found")
        _copy_into(row, experiment, row.model_id)
        self._s.flush()

    def lower_sequential_p(self, experiment_id: str, p_value: float) -> None:
        self._s.execute(update(ExperimentRow)
                        .where(ExperimentRow.id == experiment_id, ExperimentRow.active_model_id.is_not(None),
                               ExperimentRow.sequential_p_value > p_value)
                        .values(sequential_p_value=p_value).execution_options(synchronize_session=False))

    def list_experiments(self, *, model: str | None = None, states: Collection[ExperimentState] | None = None,
                         after: str | None = None, limit: int = 100) -> list[Experiment]:
        query = _with_model()
        if model is not None:
            query = query.where(ModelRow.name == model)
        if states is not None:
            query = query.where(ExperimentRow.state.in_([s.value for s in states]))
        if after is not None:
            cursor = self._s.get(ExperimentRow, after)
            if cursor is None:
                return []
            same_time = and_(ExperimentRow.created_at == cursor.created_at, ExperimentRow.id < cursor.id)
            query = query.where(or_(ExperimentRow.created_at < cursor.created_at, same_time))
        query = query.order_by(ExperimentRow.created_at.desc(), ExperimentRow.id.desc()).limit(limit)
        return [_experiment(row, name) for row, name in self._s.execute(query)]

    def arms(self, experiment_ids: Collection[str]) -> dict[str, tuple[ArmTotals, ArmTotals]]:
        if not experiment_ids:
            return {}
        found: dict[str, dict[str, ArmTotals]] = {}
        rows = self._s.scalars(select(ExperimentArmRow)
                               .where(ExperimentArmRow.experiment_id.in_(list(experiment_ids)))
                               .execution_options(populate_existing=True))
        for row in rows:
            found.setdefault(row.experiment_id, {})[row.arm] = ArmTotals(
                **{name: getattr(row, name) for name in _SUMS})
        return {eid: (arms.get(Arm.CONTROL.value, ArmTotals()), arms.get(Arm.TREATMENT.value, ArmTotals()))
                for eid, arms in found.items()}


def _with_model():  # type: ignore[no-untyped-def]
    return select(ExperimentRow, ModelRow.name).join(ModelRow, ModelRow.id == ExperimentRow.model_id)


def _experiment(row: ExperimentRow, model: str) -> Experiment:
    return Experiment(
        id=row.id, model=model, control_version=row.control_version, treatment_version=row.treatment_version,
        treatment_percent=row.treatment_percent, metric=Metric(row.metric), state=ExperimentState(row.state),
        min_effect=row.min_effect, alpha=row.alpha, power=row.power, sequential_p_value=row.sequential_p_value,
        created_at=row.created_at, stopped_at=row.stopped_at, created_by=row.created_by,
        stopped_by=row.stopped_by, reason=row.reason, deployment_id=row.deployment_id)


def _copy_into(row: ExperimentRow, e: Experiment, model_id: int) -> None:
    row.active_model_id = model_id if e.state is ExperimentState.RUNNING else None
    row.control_version, row.treatment_version = e.control_version, e.treatment_version
    row.treatment_percent, row.metric, row.state = e.treatment_percent, e.metric.value, e.state.value
    row.min_effect, row.alpha, row.power = e.min_effect, e.alpha, e.power
    row.sequential_p_value = e.sequential_p_value
    row.created_at, row.stopped_at = e.created_at, e.stopped_at
    row.created_by, row.stopped_by, row.reason = e.created_by, e.stopped_by, e.reason
    row.deployment_id = e.deployment_id
