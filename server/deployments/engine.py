"""The deployment controller: the only writer of deployment status.

Level-triggered, like a Kubernetes controller: `advance(id)` reads the stored
state and the latest metrics, runs ordered checks with early returns, takes at
most one step and stores the result. A restart simply ticks again, so a crash
mid-rollout neither repeats a step nor skips one: a step and the traffic it
moves commit in one transaction, and the events describing it are handed back
only after that commit, for the caller to announce.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import math
import uuid
from dataclasses import dataclass, field
from typing import Callable, Collection

from ..clock import Clock
from ..config import DeploymentSettings, ThresholdSettings
from ..durations import format_duration
from ..errors import FailedPreconditionError, NotFoundError, UnavailableError
from ..telemetry.window import DriftSource, MetricsSource
from . import rolling
from ._messages import already_active, back_on, experiment_running, step_message, strategy_name
from .dry_run import DryRunTx
from .gates import GateInputs, describe_failure, describe_wait, evaluate_gates, format_percent
from .model import Deployment, DeploymentEvent, EventKind, Gate, GateEvaluation, Instance, Verdict
from .params import ParamOverrides, resolve_params
from .phases import Phase, Strategy, check_transition
from .queries import DeploymentQueries
from .repository import ActiveDeploymentConflict, DeploymentRepository, DeploymentTx
from .strategies import PlannedStep, final_split, stable_split, stable_takes_traffic, step_split, traffic_plan

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeploymentUpdate:
    """A deployment as stored after an operation, and the events to announce (already stored)."""

    deployment: Deployment
    events: list[DeploymentEvent]


@dataclass(frozen=True)
class GateStatus:
    """Where the current step stands, computed when asked: nothing is stored per read or tick."""

    #: Every gate's verdict over the current step's window so far, WAIT included.
    evaluations: list[GateEvaluation]
    #: What the step waits for, in words ("latency-p95 has 2 of 5 samples"); empty when nothing.
    waiting_for: str


@dataclass
class _Change:
    """One decision about one deployment, inside one transaction."""

    tx: DeploymentTx
    dep: Deployment
    now: dt.datetime
    events: list[DeploymentEvent] = field(default_factory=list)

    def elapsed(self) -> float:
        """Seconds since the current step (or rollback) began."""
        start = self.dep.step_started_at or self.dep.created_at
        return (self.now - start).total_seconds()


class DeploymentController(DeploymentQueries):
    """Runs every deployment; the reads it inherits never write."""

    def __init__(self, repo: DeploymentRepository, clock: Clock, metrics: MetricsSource, *,
                 drift: DriftSource | None = None, defaults: DeploymentSettings | None = None,
                 thresholds: ThresholdSettings | None = None, heartbeat_interval: float = 5.0,
                 new_id: Callable[[], str] | None = None) -> None:
        super().__init__(repo)
        self._clock = clock
        self._metrics = metrics
        self._drift = drift
        self._defaults = defaults or DeploymentSettings()
        self._thresholds = thresholds or ThresholdSettings()
        #: How often serving instances are expected to heartbeat; silent for 3x this means lost.
        self.heartbeat_interval = heartbeat_interval
        self._new_id = new_id or (lambda: uuid.uuid4().hex[:12])
        #: Silence before this controller started is our downtime, not the instances'.
        self._started_at = clock.now()

    def reconfigure(self, defaults: DeploymentSettings, thresholds: ThresholdSettings) -> None:
        """New config defaults (RestartSystem); stored deployments keep the parameters they resolved."""
        self._defaults = defaults
        self._thresholds = thresholds

    # --- operations -----------------------------------------------------------------------------------------

    def create(self, model: str, version: str, strategy: Strategy,
               overrides: ParamOverrides | None = None, *, created_by: str = "") -> DeploymentUpdate:
        """Store a PENDING deployment; the next `advance` starts it."""
        model_threshold = getattr(self._drift, "threshold", None)
        if model_threshold is not None and (overrides is None or overrides.drift_score is None):
            # The model's own drift threshold (drift.model_thresholds) is its gate's default too.
            overrides = dataclasses.replace(overrides or ParamOverrides(), drift_score=model_threshold(model))
        params = resolve_params(strategy, overrides, defaults=self._defaults, thresholds=self._thresholds)
        try:
            with self._repo.transaction() as tx:
                now = self._clock.now()
                info = tx.get_model(model, lock=True)
                if info is None:
                    raise NotFoundError(f"model {model!r} not found")
                found = tx.get_version(model, version)
                if found is None:
                    raise NotFoundError(f"model {model} has no version {version!r}")
                if found.archived:
                    raise FailedPreconditionError(
                        f"{model} version {version} is archived and cannot be deployed")
                active = tx.active_deployment(model)
                if active is not None:
                    raise already_active(active)
                experiment = tx.running_experiment(model)
                if experiment is not None:
                    raise experiment_running(model, experiment)
                if info.live_version == version:
                    raise FailedPreconditionError(f"{model} version {version} is already live")
                if strategy is Strategy.ROLLING:
                    cutoff = rolling.lost_cutoff(now, self.heartbeat_interval)
                    alive = [i for i in tx.list_instances(model) if i.last_heartbeat_at >= cutoff and not i.lost]
                    if not alive:
                        raise FailedPreconditionError(
                            f"a rolling deployment moves serving instances, and {model} has none alive: "
                            "register instances and send heartbeats first")
                    total = rolling.batch_count(alive, version, rolling.batch_size(params, len(alive)))
                else:
                    total = len(traffic_plan(strategy, params))
                dep = Deployment(
                    id=self._new_id(), model=model, version=version, previous_version=info.live_version,
                    strategy=strategy, phase=Phase.PENDING, step=0, traffic_percent=0.0, failed_checks=0,
                    reason="", params=params, created_at=now, updated_at=now, step_started_at=None,
                    finished_at=None, created_by=created_by, total_steps=total)
                tx.insert_deployment(dep)
                change = _Change(tx, dep, now)
                previous = f"replacing {info.live_version}" if info.live_version else "first deployment"
                self._record(change, EventKind.CREATED,
                             f"{strategy_name(strategy)} deployment of {model} {version} created by "
                             f"{created_by or 'an operator'} ({previous})")
        except ActiveDeploymentConflict:
            # Lost a race with a concurrent create for the same model: report the winner.
            with self._repo.transaction() as tx:
                active = tx.active_deployment(model)
            raise already_active(active) from None
        return DeploymentUpdate(change.dep, change.events)

    def rollback(self, model: str, to_version: str | None = None, *, created_by: str = "",
                 overrides: ParamOverrides | None = None) -> DeploymentUpdate:
        """An immediate deployment back to the previous version (or `to_version`), switched at once.

        It is not watched (bake time 0) unless `overrides` says so: the operator
        has already judged, and a rollback that rolls back would go nowhere useful.
        """
        with self._repo.transaction() as tx:
            info = tx.get_model(model)
        if info is None:
            raise NotFoundError(f"model {model!r} not found")
        target = to_version or info.previous_version
        if target is None:
            raise FailedPreconditionError(
                f"{model} has no previous version to roll back to; name one to deploy")
        overrides = overrides or ParamOverrides()
        if overrides.bake_time is None:
            overrides = dataclasses.replace(overrides, bake_time=0.0)
        created = self.create(model, target, Strategy.IMMEDIATE, overrides, created_by=created_by)
        switched = self._decide(created.deployment.id, self._advance)
        events = created.events + switched.events
        if switched.deployment.params.bake_time == 0:
            # Nothing to watch: finish now, so the operator's rollback answers SUCCEEDED, not PROGRESSING.
            try:
                finished = self._decide(created.deployment.id, self._advance)
            except Exception:  # noqa: BLE001 - traffic is already back: return that, the reconciler finishes it
                log.exception("finishing rollback %s failed; the reconcile loop will", created.deployment.id)
            else:
                switched = finished
                events += finished.events
        return DeploymentUpdate(switched.deployment, events)

    def promote(self, deployment_id: str, *, by: str = "") -> DeploymentUpdate:
        """Skip the remaining steps: the new version takes everything and is live."""
        def decide(c: _Change) -> None:
            check_transition(c.dep.phase, Phase.SUCCEEDED, f"deployment {c.dep.id}")
            self._succeed(c, f"promoted by {by or 'an operator'}: {c.dep.version} takes 100% and is live")
        return self._decide(deployment_id, decide)

    def pause(self, deployment_id: str, *, by: str = "") -> DeploymentUpdate:
        def decide(c: _Change) -> None:
            self._set_phase(c, Phase.PAUSED, EventKind.PAUSED,
                            f"paused by {by or 'an operator'} at step {c.dep.step} "
                            f"({format_percent(c.dep.traffic_percent)})")
        return self._decide(deployment_id, decide)

    def resume(self, deployment_id: str, *, by: str = "") -> DeploymentUpdate:
        def decide(c: _Change) -> None:
            # check it is paused: the table lets PENDING become PROGRESSING too, but only by taking
            # its first step; a resume there would store PROGRESSING at step 0 with no traffic moved
            if c.dep.phase is not Phase.PAUSED:
                raise FailedPreconditionError(f"deployment {c.dep.id} is {c.dep.phase.value}, not PAUSED; "
                                              "only a paused deployment can be resumed")
            # Paused time is not analysis time: the step's window and deadline start again.
            self._sync_status(c, step_started_at=c.now)
            self._set_phase(c, Phase.PROGRESSING, EventKind.RESUMED,
                            f"resumed by {by or 'an operator'}; step {c.dep.step} is analysed again from now")
        return self._decide(deployment_id, decide)

    def abort(self, deployment_id: str, *, by: str = "") -> DeploymentUpdate:
        """Stop for good and give the traffic back to the previous version."""
        def decide(c: _Change) -> None:
            who = by or "an operator"
            check_transition(c.dep.phase, Phase.ABORTED, f"deployment {c.dep.id}")
            self._restore_stable(c)
            self._set_phase(c, Phase.ABORTED, EventKind.ABORTED,
                            f"aborted by {who}; {back_on(c.dep)}", reason=f"aborted by {who}")
        return self._decide(deployment_id, decide)

    # --- reconcile ------------------------------------------------------------------------------------------

    def advance(self, deployment_id: str) -> list[DeploymentEvent]:
        """Take at most one step of one deployment; returns the events to announce."""
        return self._decide(deployment_id, self._advance).events

    def advance_all(self) -> list[DeploymentEvent]:
        """One tick of the reconcile loop over every active deployment; one failing does not stop the rest.

        Only the deployments whose step is due take their row lock (see `dry_run`): a tick where nothing
        is due is one read-only transaction, however many deployments are running.
        """
        events: list[DeploymentEvent] = []
        for deployment_id in self.due_ids():
            try:
                events += self.advance(deployment_id)
            except UnavailableError:
                raise  # the database is out, not this deployment: the loop backs off (PeriodicTask)
            except Exception:  # noqa: BLE001 - the loop must go on; the next tick retries
                log.exception("advancing deployment %s failed; retrying on the next tick", deployment_id)
        return events

    def due_ids(self) -> list[str]:
        """The active deployments, oldest first, whose next `advance` would change something."""
        now = self._clock.now()
        due: list[str] = []
        with self._repo.read() as tx:
            active = tx.list_deployments(phases=_ACTIVE_PHASES, limit=_NO_LIMIT)
            for dep in reversed(active):  # oldest first, as the loop has always gone
                change = _Change(DryRunTx(tx), dep, now)  # type: ignore[arg-type]
                try:
                    self._advance(change)
                except Exception:  # noqa: BLE001 - WouldWrite: due; any other error: the real advance logs it
                    due.append(dep.id)
                    continue
                if change.dep != dep or change.events:
                    due.append(dep.id)
        return due

    def on_metrics(self, model: str, version: str | Collection[str]) -> list[DeploymentEvent]:
        """Fast-fail: call once per model after metrics for its `version` (or versions) are ingested.

        A critical gate breached with enough samples rolls back now, not at the
        end of the step. The check is read-only until it finds a breach, and the
        active deployment comes from memory (`active_deployment`), so the common
        case of healthy metrics reads no database at all.
        """
        versions = {version} if isinstance(version, str) else set(version)
        dep = self.active_deployment(model)
        if dep is None or not versions & {dep.version, dep.previous_version} or not _watched(dep):
            return []
        if not self._critical_failures(dep, self._clock.now()):
            return []
        # Decide again under the row lock: the deployment may have moved since the read.
        return self._decide(dep.id, lambda c: _watched(c.dep) and self._fast_fail(c)).events

    def on_instance_health(self, model: str) -> list[DeploymentEvent]:
        """Fast-fail for rolling updates: call after a heartbeat reported an instance unhealthy.

        A moved instance that has the new version loaded and says it is unhealthy is
        the rolling update's critical gate: its batch rolls back inside that Heartbeat,
        not at the progress deadline. Read-only until it finds such an instance.
        """
        dep = self.active_deployment(model)  # from memory: most unhealthy instances have no rollout to stop
        if dep is None or dep.strategy is not Strategy.ROLLING or not _watched(dep):
            return []
        with self._repo.read() as tx:
            if not rolling.failing(tx.list_instances(model), dep.version):
                return []
        # Decide again under the row lock: the batch may have moved or rolled back since the read.
        return self._decide(dep.id, lambda c: _watched(c.dep) and self._instance_fast_fail(c)).events

    def gate_status(self, dep: Deployment) -> GateStatus:
        """The verdict every gate would give now over the current step's window, and what it waits for.

        Read-only and computed on demand, so `GetDeployment` can explain a step that
        has not decided yet without a row per tick; any replica gives the same answer.
        """
        now = self._clock.now()
        if not _watched(dep):
            return GateStatus([], "")
        if dep.strategy is Strategy.ROLLING:
            with self._repo.read() as tx:
                instances = tx.list_instances(dep.model)
            waiting = rolling.unconfirmed(instances, dep.version)
            what = f"batch {dep.step} to report {dep.version} loaded and healthy: " \
                   f"{rolling.describe(waiting, dep.version)}" if waiting else ""
            return GateStatus([], what)
        step = traffic_plan(dep.strategy, dep.params)[dep.step - 1]
        if not step.analysed:
            return GateStatus([], "")
        evaluations = evaluate_gates(self._inputs(dep, now))
        if dep.phase is Phase.PAUSED:
            return GateStatus(evaluations, f"paused at step {dep.step}: resume to continue")
        waiting = describe_wait(evaluations)
        remaining = step.duration - (now - (dep.step_started_at or dep.created_at)).total_seconds()
        if remaining > 0:
            clock = f"step {dep.step} is watched for {format_duration(math.ceil(remaining))} more"
            waiting = f"{clock}; {waiting}" if waiting else clock
        return GateStatus(evaluations, waiting)

    # --- the reconcile step ---------------------------------------------------------------------------------

    def _advance(self, c: _Change) -> None:
        # check the deployment is still running
        if c.dep.phase.is_final:
            return
        # check a rollback waiting for instances to confirm the previous version
        if c.dep.phase is Phase.ROLLING_BACK:
            self._finish_rollback(c)
            return
        # check the rollout has started: the first step moves the first traffic
        if c.dep.phase is Phase.PENDING and c.dep.strategy is not Strategy.ROLLING:
            self._enter_step(c, 1)
            return
        # check the critical gates: a breach rolls back at once, paused or not
        if _watched(c.dep) and self._fast_fail(c):
            return
        # check no moved instance runs the new version unhealthy (rolling's own critical gate), paused or not
        if _watched(c.dep) and self._instance_fast_fail(c):
            return
        # check the operator has not paused it
        if c.dep.phase is Phase.PAUSED:
            return
        if c.dep.strategy is Strategy.ROLLING:
            self._advance_rolling(c)
        else:
            self._advance_plan(c)

    def _advance_plan(self, c: _Change) -> None:
        plan = traffic_plan(c.dep.strategy, c.dep.params)
        step = plan[c.dep.step - 1]
        # check the step has been watched for its whole duration
        if c.elapsed() < step.duration:
            return
        # check for an unwatched step (bake time 0): there is nothing to judge
        if not step.analysed:
            self._next_step(c, plan)
            return
        evaluations = evaluate_gates(self._inputs(c.dep, c.now))
        failed = [e for e in evaluations if e.verdict is Verdict.FAIL]
        # check for failed gates: each failed analysis counts toward the failure limit
        if failed:
            self._count_failure(c, evaluations, failed)
            return
        # check every gate has its samples; a gate without them never passes
        if any(e.verdict is Verdict.WAIT for e in evaluations):
            if c.elapsed() >= c.dep.params.progress_deadline:
                c.tx.add_evaluations(evaluations)
                deadline = format_duration(c.dep.params.progress_deadline)
                self._fail(c, f"progress deadline of {deadline} exceeded at step {c.dep.step} "
                              f"({format_percent(c.dep.traffic_percent)}): {describe_wait(evaluations)}")
            return
        c.tx.add_evaluations(evaluations)
        self._next_step(c, plan)

    def _advance_rolling(self, c: _Change) -> None:
        instances = self._drop_silent(c)
        live = rolling.serving(instances)
        started = c.dep.step > 0
        deadline = c.dep.params.progress_deadline
        # check the current batch is confirmed: loaded the new version and healthy
        waiting = rolling.unconfirmed(instances, c.dep.version) if started else []
        if waiting:
            if c.elapsed() >= deadline:
                self._roll_back(c, f"batch {c.dep.step} not healthy within {format_duration(deadline)}: "
                                   f"{rolling.describe(waiting, c.dep.version)}")
            return
        # check there is a serving instance left to move or to confirm
        if not live:
            if c.elapsed() >= deadline:
                self._fail(c, f"no serving instance of {c.dep.model} for {format_duration(deadline)}: "
                              "every one stopped sending heartbeats")
            return
        # check the confirmed batch has served for the step interval before the next moves
        if started and c.elapsed() < c.dep.params.step_interval:
            return
        batch = rolling.next_batch(instances, c.dep.version, rolling.batch_size(c.dep.params, len(live)))
        if not batch:
            self._succeed(c, f"every instance serves {c.dep.version}; it is live")
            return
        self._move_batch(c, instances, batch)

    def _finish_rollback(self, c: _Change) -> None:
        if c.dep.strategy is not Strategy.ROLLING:
            # Traffic went back with ROLLING_BACK itself; nothing is left to confirm.
            self._set_phase(c, Phase.ROLLED_BACK, EventKind.ROLLED_BACK, back_on(c.dep))
            return
        behind = rolling.not_yet_back(self._drop_silent(c), c.dep.previous_version)
        # check every serving instance has loaded the previous version again
        if not behind:
            self._set_phase(c, Phase.ROLLED_BACK, EventKind.ROLLED_BACK,
                            f"every instance serves {c.dep.previous_version or 'nothing'} again")
            return
        # check the rollback deadline
        deadline = c.dep.params.progress_deadline
        if c.elapsed() >= deadline:
            why = (f"rollback not confirmed within {format_duration(deadline)}: "
                   f"{rolling.describe(behind, c.dep.previous_version)}")
            self._set_phase(c, Phase.FAILED, EventKind.FAILED, f"failed: {why}",
                            reason=f"{c.dep.reason}; {why}")

    # --- decisions ------------------------------------------------------------------------------------------

    def _fast_fail(self, c: _Change) -> bool:
        failed = self._critical_failures(c.dep, c.now)
        if not failed:
            return False
        c.tx.add_evaluations(failed)
        self._roll_back(c, describe_failure(failed[0], c.dep.traffic_percent))
        return True

    def _instance_fast_fail(self, c: _Change) -> bool:
        if c.dep.strategy is not Strategy.ROLLING:
            return False
        failing = rolling.failing(c.tx.list_instances(c.dep.model), c.dep.version)
        if not failing:
            return False
        names = ", ".join(i.instance_id for i in failing)
        self._roll_back(c, f"batch {c.dep.step}: {names} reported {c.dep.version} loaded but unhealthy")
        return True

    def _critical_failures(self, dep: Deployment, now: dt.datetime) -> list[GateEvaluation]:
        evaluations = evaluate_gates(self._inputs(dep, now, only_critical=True), only_critical=True)
        return [e for e in evaluations if e.verdict is Verdict.FAIL]

    def _count_failure(self, c: _Change, evaluations: list[GateEvaluation],
                       failed: list[GateEvaluation]) -> None:
        c.tx.add_evaluations(evaluations)
        count, limit = c.dep.failed_checks + 1, c.dep.params.failure_limit
        reason = describe_failure(failed[0], c.dep.traffic_percent)
        self._set_failed_checks(c, count)
        # check whether the failure limit is reached
        if count >= limit:
            self._record(c, EventKind.GATE_FAILED, f"{reason} (failure {count} of {limit})")
            self._roll_back(c, f"failure limit reached ({count} of {limit}): {reason}")
            return
        # analyse the same step again, over a fresh window
        self._sync_status(c, step_started_at=c.now)
        self._record(c, EventKind.GATE_FAILED,
                     f"{reason} (failure {count} of {limit}); analysing the step again")

    def _next_step(self, c: _Change, plan: tuple[PlannedStep, ...]) -> None:
        if c.dep.step < len(plan):
            self._enter_step(c, c.dep.step + 1)
        else:
            self._succeed(c, f"{c.dep.version} passed every step and is live")

    def _enter_step(self, c: _Change, number: int) -> None:
        plan = traffic_plan(c.dep.strategy, c.dep.params)
        weights = step_split(c.dep.version, c.dep.previous_version, plan[number - 1].percent)
        self._set_traffic(c, weights)
        self._sync_status(c, step=number, step_started_at=c.now)
        self._step_started(c, step_message(c.dep, plan, number))

    def _move_batch(self, c: _Change, instances: list[Instance], batch: list[Instance]) -> None:
        moved = {i.instance_id for i in batch}
        c.tx.assign_instances(c.dep.model, moved, c.dep.version)
        after = [dataclasses.replace(i, assigned_version=c.dep.version) if i.instance_id in moved else i
                 for i in instances]
        self._set_traffic(c, rolling.instance_split(after, c.dep.version, c.dep.previous_version))
        # The count of batches follows the instances: one registering or lost mid-rollout changes it.
        size = rolling.batch_size(c.dep.params, len(rolling.serving(instances)))
        total = c.dep.step + 1 + rolling.batch_count(after, c.dep.version, size)
        self._sync_status(c, step=c.dep.step + 1, step_started_at=c.now, total_steps=total)
        self._step_started(c, f"batch {c.dep.step}: {', '.join(sorted(moved))} -> {c.dep.version} "
                              f"({format_percent(c.dep.traffic_percent)} of instances)")

    def _step_started(self, c: _Change, message: str) -> None:
        """Announce the step just taken; the first one is what takes a deployment out of PENDING."""
        if c.dep.phase is Phase.PENDING:
            self._set_phase(c, Phase.PROGRESSING, EventKind.STEP_STARTED, message)
        else:
            self._record(c, EventKind.STEP_STARTED, message)

    def _drop_silent(self, c: _Change) -> list[Instance]:
        """Mark instances whose heartbeat stopped as lost; returns the instances as they now are."""
        instances = c.tx.list_instances(c.dep.model)
        cutoff = rolling.lost_cutoff(c.now, self.heartbeat_interval)
        # check the controller has been up long enough to have heard every live instance:
        # after a restart, heartbeats sent while it was down went nowhere
        if self._started_at >= cutoff:
            return instances
        silent = rolling.silent(instances, c.now, self.heartbeat_interval)
        if not silent:
            return instances
        lost = c.tx.mark_lost(c.dep.model, [i.instance_id for i in silent], heard_before=cutoff)
        instances = c.tx.list_instances(c.dep.model)
        if lost and c.dep.phase is not Phase.ROLLING_BACK and c.dep.step > 0:
            # Shares are of the instances still serving: keep the split honest.
            self._set_traffic(c, rolling.instance_split(instances, c.dep.version, c.dep.previous_version))
        for instance_id in lost:
            self._record(c, EventKind.INSTANCE_LOST,
                         f"instance {instance_id} lost: no heartbeat for "
                         f"{format_duration(rolling.MISSED_HEARTBEATS * self.heartbeat_interval)}; excluded")
        return instances

    def _succeed(self, c: _Change, message: str) -> None:
        # The model row first: it locks the model, so an instance registering meanwhile either
        # commits before the list below sees it, or waits and then starts on the new live version.
        c.tx.set_live_versions(c.dep.model, c.dep.version, c.dep.previous_version)
        # Outside a rolling update every instance is assigned the live version, lost ones
        # too: one that comes back must load what is live now.
        behind = [i.instance_id for i in c.tx.list_instances(c.dep.model)
                  if i.assigned_version != c.dep.version]
        c.tx.assign_instances(c.dep.model, behind, c.dep.version)
        self._set_traffic(c, final_split(c.dep.version))
        if c.dep.strategy is Strategy.ROLLING and c.dep.step > 0:
            # Done after the batches it took, whatever the estimate said.
            self._sync_status(c, total_steps=c.dep.step)
        self._set_phase(c, Phase.SUCCEEDED, EventKind.SUCCEEDED, message)

    def _roll_back(self, c: _Change, reason: str) -> None:
        """Traffic back on the previous version first, then the phases that record it."""
        self._restore_stable(c)
        self._sync_status(c, step_started_at=c.now)
        self._set_phase(c, Phase.ROLLING_BACK, EventKind.ROLLBACK_STARTED,
                        f"rolling back to {c.dep.previous_version or 'nothing'}: {reason}", reason=reason)
        if c.dep.strategy is not Strategy.ROLLING:
            # The split is the whole rollback and it is stored: done in the same transaction.
            self._set_phase(c, Phase.ROLLED_BACK, EventKind.ROLLED_BACK, back_on(c.dep))

    def _fail(self, c: _Change, reason: str) -> None:
        self._restore_stable(c)
        self._set_phase(c, Phase.FAILED, EventKind.FAILED, f"failed: {reason}; {back_on(c.dep)}",
                        reason=reason)

    def _restore_stable(self, c: _Change) -> None:
        if c.dep.strategy is Strategy.ROLLING:
            moved = [i.instance_id for i in c.tx.list_instances(c.dep.model)
                     if i.assigned_version == c.dep.version]
            c.tx.assign_instances(c.dep.model, moved, c.dep.previous_version)
        self._set_traffic(c, stable_split(c.dep.previous_version))

    # --- the status writers: every change of a deployment goes through these -----------------------------

    def _decide(self, deployment_id: str, decide: Callable[[_Change], object]) -> DeploymentUpdate:
        with self._repo.transaction() as tx:
            dep = tx.get_deployment(deployment_id, lock=True)
            if dep is None:
                raise NotFoundError(f"deployment {deployment_id!r} not found")
            change = _Change(tx, dep, self._clock.now())
            decide(change)
            if change.dep != dep:
                tx.update_deployment(change.dep)
        # Only now, committed, may the events be announced.
        return DeploymentUpdate(change.dep, change.events)

    def _set_phase(self, c: _Change, phase: Phase, kind: EventKind, message: str, *,
                   reason: str | None = None) -> None:
        check_transition(c.dep.phase, phase, f"deployment {c.dep.id}")
        c.dep = dataclasses.replace(c.dep, phase=phase, updated_at=c.now,
                                    reason=c.dep.reason if reason is None else reason,
                                    finished_at=c.now if phase.is_final else None)
        self._record(c, kind, message)

    def _sync_status(self, c: _Change, **fields: object) -> None:
        c.dep = dataclasses.replace(c.dep, updated_at=c.now, **fields)  # type: ignore[arg-type]

    def _set_failed_checks(self, c: _Change, count: int) -> None:
        self._sync_status(c, failed_checks=count)

    def _set_traffic(self, c: _Change, weights: dict[str, float]) -> None:
        c.tx.set_traffic(c.dep.model, weights)
        self._sync_status(c, traffic_percent=weights.get(c.dep.version, 0.0))

    def _record(self, c: _Change, kind: EventKind, message: str) -> None:
        d = c.dep
        c.events.append(c.tx.append_event(d.id, kind, d.phase, d.step, d.traffic_percent, message, c.now))

    # --- inputs ---------------------------------------------------------------------------------------------

    def _inputs(self, dep: Deployment, now: dt.datetime, *, only_critical: bool = False) -> GateInputs:
        since = dep.step_started_at or dep.created_at
        params = dep.params
        candidate = self._metrics.window(dep.model, dep.version, since, now)
        stable = None
        if (params.thresholds.max_error_rate_increase is not None and dep.previous_version is not None
                and stable_takes_traffic(dep.previous_version, dep.traffic_percent)):
            stable = self._metrics.window(dep.model, dep.previous_version, since, now)
        drift = None
        if self._drift is not None and (not only_critical or Gate.DRIFT_SCORE in params.critical_gates):
            drift = self._drift.drift_score(dep.model, dep.version, since, now)
        return GateInputs(deployment_id=dep.id, step=dep.step, params=params, candidate=candidate,
                          stable=stable, drift=drift)


_ACTIVE_PHASES = frozenset(p for p in Phase if p.is_active)
_NO_LIMIT = 1 << 31


def _watched(dep: Deployment) -> bool:
    """Gates apply while traffic is moving or held, once the first step has been taken."""
    return dep.phase in (Phase.PROGRESSING, Phase.PAUSED) and dep.step > 0
