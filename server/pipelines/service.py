"""The pipeline service: the only writer of pipelines and their commands.

Every change of a command is one transaction, checked against
`states.TRANSITIONS`, and returned as a `CommandChange` for the runtime to
announce after the commit (streams, metrics). The lifecycle, and when a
command ends:

- `send` stores it PENDING, with a deadline for its acknowledgement;
- `deliver` (a WatchPipelineCommands stream) marks it DELIVERED; every new
  stream of the pipeline receives it again until it is acknowledged;
- `update` (the pipeline) acknowledges it, then ends it SUCCEEDED or FAILED;
  acknowledging twice is refused, which is how a restarted pipeline knows a
  redelivered command is already someone's;
- `expire_due` (the sweep) ends unacknowledged commands past their deadline;
- `cancel` (an operator) ends any open command.

"Optimise -> safely live": an OPTIMIZE (or RETRAIN) with `then_deploy` whose
pipeline reports SUCCEEDED with a version stays ACKNOWLEDGED. The sweep then
starts that deployment (`start_deployments`) and links its id, and once the
deployment is final (`conclude_deployments`) the command ends with it:
SUCCEEDED when the version went live, FAILED ("rolled back: <reason>") when it
did not. Both steps are level-triggered on the stored rows, so a restart in
between resumes them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Callable, Collection

from ..clock import Clock
from ..config import PipelineSettings
from ..deployments.engine import DeploymentController, DeploymentUpdate
from ..deployments.phases import Phase
from ..durations import format_duration
from ..errors import (
    FailedPreconditionError,
    FieldViolation,
    ModelctlError,
    NotFoundError,
    ValidationError,
    Violations,
)
from .model import (
    CommandKind,
    CommandUpdate,
    NewCommand,
    Pipeline,
    PipelineCommand,
    PipelineState,
    Registration,
    StatusReport,
)
from .repository import PipelineRepository, PipelineTx
from .states import UNACKNOWLEDGED, CommandState, check_transition

log = logging.getLogger(__name__)

#: The states a pipeline may report a command in; the others are the controller's to set.
PIPELINE_SETS = frozenset({CommandState.ACKNOWLEDGED, CommandState.SUCCEEDED, CommandState.FAILED})


@dataclass(frozen=True)
class CommandChange:
    """A command as stored after a change, and the state it had before (None: just created)."""

    before: CommandState | None
    command: PipelineCommand


class PipelineService:
    def __init__(self, repo: PipelineRepository, clock: Clock, settings: PipelineSettings,
                 deployments: DeploymentController, *, new_id: Callable[[], str] | None = None) -> None:
        self._repo = repo
        self._clock = clock
        self.settings = settings
        self._deployments = deployments
        self._new_id = new_id or _SortableIds()
        #: Starting a deployment spans two transactions; one starter at a time in this process.
        self._deploying = threading.Lock()

    def reconfigure(self, settings: PipelineSettings) -> None:
        self.settings = settings

    # --- pipelines ------------------------------------------------------------------------------------------

    def register(self, reg: Registration, *, by: str = "") -> Pipeline:
        """Store a pipeline, or update the models, version and labels of the one with this name."""
        with self._repo.transaction() as tx:
            now = self._clock.now()
            current = tx.get_pipeline(reg.name, lock=True)
            if current is None:
                pipeline = Pipeline(name=reg.name, models=reg.models, version=reg.version, labels=dict(reg.labels),
                                    state=PipelineState.IDLE, job="", progress=0.0, last_seen=now, last_result=None,
                                    details={}, registered_at=now, registered_by=by)
            else:
                pipeline = dataclasses.replace(current, models=reg.models, version=reg.version,
                                               labels=dict(reg.labels), last_seen=now, registered_by=by)
            tx.save_pipeline(pipeline)
        return pipeline

    def report(self, report: StatusReport) -> tuple[Pipeline, bool]:
        """Store a status report; returns the pipeline and whether it was stale until now."""
        if not 0 <= report.progress <= 100:
            raise ValidationError(FieldViolation("progress", "must be between 0 and 100"))
        with self._repo.transaction() as tx:
            now = self._clock.now()
            current = self._pipeline(tx, report.name, lock=True)
            was_stale = current.stale(now, self.settings.stale_after)
            pipeline = dataclasses.replace(
                current, state=report.state, job=report.job, progress=report.progress, last_seen=now,
                last_result=report.last_result if report.last_result is not None else current.last_result,
                details=dict(report.details))
            tx.save_pipeline(pipeline)
        return pipeline, was_stale

    def get(self, name: str) -> Pipeline:
        with self._repo.read() as tx:
            return self._pipeline(tx, name)

    def list(self, *, model: str | None = None, after: str | None = None, limit: int = 100) -> list[Pipeline]:
        with self._repo.read() as tx:
            return tx.list_pipelines(model=model, after=after, limit=limit)

    def all(self) -> list[Pipeline]:
        with self._repo.read() as tx:
            return tx.all_pipelines()

    def is_stale(self, pipeline: Pipeline) -> bool:
        return pipeline.stale(self._clock.now(), self.settings.stale_after)

    # --- commands: operators --------------------------------------------------------------------------------

    def send(self, new: NewCommand, *, by: str = "") -> CommandChange:
        """Store a PENDING command for the pipeline's stream to deliver."""
        _check_command(new)
        with self._repo.transaction() as tx:
            now = self._clock.now()
            pipeline = self._pipeline(tx, new.pipeline, lock=True)
            # check the model is one the pipeline declared (when it declared any)
            if new.model and pipeline.models and new.model not in pipeline.models:
                raise FailedPreconditionError(
                    f"pipeline {pipeline.name} serves {', '.join(pipeline.models)}, not {new.model}")
            # check no other OPTIMIZE of the model is open
            if new.kind is CommandKind.OPTIMIZE:
                key = new.model or f"@{new.pipeline}"
                open_one = tx.open_optimize(key)
                if open_one is not None:
                    what = new.model or f"pipeline {new.pipeline}"
                    raise FailedPreconditionError(
                        f"{what} already has an open OPTIMIZE {open_one.id} ({open_one.state.value}, on pipeline "
                        f"{open_one.pipeline}); wait for it to end or cancel it "
                        f"(modelctl pipelines cancel {open_one.id})")
            timeout = self.settings.command_timeout if new.ack_timeout is None else new.ack_timeout
            command = PipelineCommand(
                id=self._new_id(), pipeline=new.pipeline, kind=new.kind, model=new.model,
                parameters=dict(new.parameters), config=new.config, then_deploy=new.then_deploy,
                state=CommandState.PENDING, result="", error="", result_version="", deployment_id="",
                created_at=now, updated_at=now, deadline=now + dt.timedelta(seconds=timeout), created_by=by)
            tx.insert_command(command)
        return CommandChange(None, command)

    def cancel(self, command_id: str, *, by: str = "", reason: str = "") -> CommandChange:
        def decide(tx: PipelineTx, c: PipelineCommand, now: dt.datetime) -> PipelineCommand:
            check_transition(c.state, CommandState.CANCELLED, f"command {c.id}", _why(c))
            error = f"cancelled by {by or 'an operator'}" + (f": {reason}" if reason else "")
            if c.deployment_id:
                error += (f"; deployment {c.deployment_id} goes on "
                          f"(modelctl deployments abort {c.deployment_id} stops it)")
            return _end(c, CommandState.CANCELLED, now, error=error)
        return self._change(command_id, decide)

    # --- commands: the pipeline -----------------------------------------------------------------------------

    def deliver(self, pipeline: str) -> tuple[list[PipelineCommand], list[CommandChange]]:
        """Every unacknowledged command of the pipeline, oldest first; PENDING ones become DELIVERED."""
        with self._repo.transaction() as tx:
            now = self._clock.now()
            self._pipeline(tx, pipeline)
            changes, out = [], []
            for c in tx.unacknowledged(pipeline):
                if c.state is CommandState.PENDING:
                    check_transition(c.state, CommandState.DELIVERED, f"command {c.id}")
                    delivered = dataclasses.replace(c, state=CommandState.DELIVERED, delivered_at=now, updated_at=now)
                    tx.update_command(delivered)
                    changes.append(CommandChange(c.state, delivered))
                    c = delivered
                out.append(c)
        return out, changes

    def update(self, update: CommandUpdate) -> CommandChange:
        """The pipeline acknowledges a command, or ends it with a result or an error."""
        if update.state not in PIPELINE_SETS:
            raise ValidationError(FieldViolation("state", "must be ACKNOWLEDGED, SUCCEEDED or FAILED"))

        def decide(tx: PipelineTx, c: PipelineCommand, now: dt.datetime) -> PipelineCommand:
            subject = f"command {c.id}"
            check_transition(c.state, update.state, subject, _why(c))
            tx.touch(c.pipeline, now)
            if update.state is CommandState.ACKNOWLEDGED:
                return dataclasses.replace(c, state=update.state, acknowledged_at=now, updated_at=now,
                                           delivered_at=c.delivered_at or now, result=update.result or c.result)
            # check the pipeline has not already ended it with a version its deployment now decides on
            if c.then_deploy is not None and c.result_version:
                raise FailedPreconditionError(
                    f"{subject} already reported {c.model} {c.result_version}; its deployment"
                    f"{' ' + c.deployment_id if c.deployment_id else ''} decides how the command ends")
            if update.state is CommandState.FAILED:
                return _end(c, CommandState.FAILED, now, result=update.result,
                            error=update.error or f"pipeline {c.pipeline} reported a failure without a reason",
                            result_version=update.version)
            result = update.result or (f"registered {c.model} {update.version}" if update.version else "done")
            if c.then_deploy is not None and update.version:
                # Not ended yet: the sweep starts the rollout, and the command ends with it.
                return dataclasses.replace(c, result=result, result_version=update.version, updated_at=now)
            if c.then_deploy is not None:
                result += " (no new version reported: nothing deployed)"
            return _end(c, CommandState.SUCCEEDED, now, result=result, result_version=update.version)
        return self._change(update.command_id, decide)

    # --- the sweep ------------------------------------------------------------------------------------------

    def expire_due(self) -> list[CommandChange]:
        """End every unacknowledged command whose deadline has passed."""
        with self._repo.read() as tx:
            due = tx.due(self._clock.now())
        changes = []
        for found in due:
            def decide(tx: PipelineTx, c: PipelineCommand, now: dt.datetime) -> PipelineCommand | None:
                # check it is still unacknowledged and due: it may have been acknowledged since the read
                if c.state not in UNACKNOWLEDGED or c.deadline > now:
                    return None
                waited = format_duration((c.deadline - c.created_at).total_seconds())
                return _end(c, CommandState.EXPIRED, now,
                            error=f"not acknowledged within {waited}: is pipeline {c.pipeline} running and "
                                  "watching its commands?")
            change = self._change(found.id, decide)
            if change.before is not change.command.state:
                changes.append(change)
        return changes

    def start_deployments(self) -> tuple[list[CommandChange], list[DeploymentUpdate]]:
        """Start the rollout of every command whose pipeline registered a version to deploy."""
        changes: list[CommandChange] = []
        started: list[DeploymentUpdate] = []
        with self._deploying:
            with self._repo.read() as tx:
                waiting = [c for c in tx.acknowledged_with_deploy() if c.awaits_deployment]
            for c in waiting:
                change, update = self._start_deployment(c)
                if change is not None:
                    changes.append(change)
                if update is not None:
                    started.append(update)
        return changes, started

    def conclude_deployments(self) -> list[CommandChange]:
        """End every command whose deployment reached a final state, with that deployment's outcome."""
        with self._repo.read() as tx:
            running = [c for c in tx.acknowledged_with_deploy() if c.deployment_id]
        changes = []
        for found in running:
            try:
                dep = self._deployments.get(found.deployment_id)
            except NotFoundError:
                dep = None
            if dep is not None and not dep.phase.is_final:
                continue

            def decide(tx: PipelineTx, c: PipelineCommand, now: dt.datetime, dep=dep) -> PipelineCommand | None:
                # check it still waits on this deployment (an operator may have cancelled it meanwhile)
                if c.state is not CommandState.ACKNOWLEDGED or c.deployment_id != found.deployment_id:
                    return None
                if dep is None:
                    return _end(c, CommandState.FAILED, now, error=f"deployment {c.deployment_id} disappeared")
                if dep.phase is Phase.SUCCEEDED:
                    return _end(c, CommandState.SUCCEEDED, now,
                                result=f"{c.result}; deployment {dep.id} SUCCEEDED: {dep.model} {dep.version} is live")
                outcome = dep.phase.value.lower().replace("_", " ")
                why = dep.reason or "no reason given"
                return _end(c, CommandState.FAILED, now, error=f"{outcome}: {why}",
                            result=f"{c.result}; deployment {dep.id} {dep.phase.value}: {why}")
            change = self._change(found.id, decide)
            if change.before is not change.command.state:
                changes.append(change)
        return changes

    # --- reads ----------------------------------------------------------------------------------------------

    def get_command(self, command_id: str) -> PipelineCommand:
        with self._repo.read() as tx:
            c = tx.get_command(command_id)
        if c is None:
            raise NotFoundError(f"pipeline command {command_id!r} not found")
        return c

    def list_commands(self, *, pipeline: str | None = None, states: Collection[CommandState] | None = None,
                      after: str | None = None, limit: int = 100) -> list[PipelineCommand]:
        """Newest first; an unknown pipeline is NOT_FOUND rather than an empty list."""
        with self._repo.read() as tx:
            if pipeline is not None:
                self._pipeline(tx, pipeline)
            return tx.list_commands(pipeline=pipeline, states=states, after=after, limit=limit)

    # --- helpers --------------------------------------------------------------------------------------------

    def _start_deployment(self, c: PipelineCommand) -> tuple[CommandChange | None, DeploymentUpdate | None]:
        assert c.then_deploy is not None
        marker = f"pipeline {c.pipeline} (command {c.id}, sent by {c.created_by or 'an operator'})"
        update: DeploymentUpdate | None = None
        # check a deployment started before a crash, whose id was not linked yet
        earlier = next((d for d in self._deployments.list(model=c.model, limit=20) if d.created_by == marker), None)
        failure = ""
        if earlier is None:
            try:
                update = self._deployments.create(c.model, c.result_version, c.then_deploy.strategy,
                                                  c.then_deploy.overrides, created_by=marker)
            except ModelctlError as exc:
                failure = exc.message
        dep_id = earlier.id if earlier is not None else update.deployment.id if update is not None else ""
        strategy = c.then_deploy.strategy.value.lower().replace("_", "-")

        def decide(tx: PipelineTx, cur: PipelineCommand, now: dt.datetime) -> PipelineCommand | None:
            if not cur.awaits_deployment:
                return None  # cancelled meanwhile; a deployment just created goes on, as a cancel says
            if failure:
                return _end(cur, CommandState.FAILED, now, error=f"the {strategy} deployment of {cur.model} "
                            f"{cur.result_version} could not start: {failure}")
            return dataclasses.replace(cur, deployment_id=dep_id, updated_at=now,
                                       result=f"{cur.result}; {strategy} deployment {dep_id} started")
        change = self._change(c.id, decide)
        return (change if change.command != c else None), update

    def _change(self, command_id: str, decide: Callable[[PipelineTx, PipelineCommand, dt.datetime],
                                                         PipelineCommand | None]) -> CommandChange:
        with self._repo.transaction() as tx:
            current = tx.get_command(command_id, lock=True)
            if current is None:
                raise NotFoundError(f"pipeline command {command_id!r} not found")
            changed = decide(tx, current, self._clock.now())
            if changed is None or changed == current:
                return CommandChange(current.state, current)
            if changed.state is not current.state:
                check_transition(current.state, changed.state, f"command {current.id}")
            tx.update_command(changed)
        return CommandChange(current.state, changed)

    @staticmethod
    def _pipeline(tx: PipelineTx, name: str, *, lock: bool = False) -> Pipeline:
        found = tx.get_pipeline(name, lock=lock)
        if found is None:
            raise NotFoundError(f"pipeline {name!r} not found: it registers itself with RegisterPipeline")
        return found


class _SortableIds:
    """Ids that sort in the order they were made (microseconds, then a counter; 14 hex digits, then 2 random),
    so "oldest first" holds among commands stored within one tick of a coarse or fake clock."""

    def __init__(self) -> None:
        self._last = 0
        self._lock = threading.Lock()

    def __call__(self) -> str:
        with self._lock:
            self._last = max(self._last + 1, time.time_ns() // 1000)
            return f"{self._last:014x}{uuid.uuid4().hex[:2]}"


def _end(c: PipelineCommand, state: CommandState, now: dt.datetime, *, result: str | None = None,
         error: str | None = None, result_version: str | None = None) -> PipelineCommand:
    return dataclasses.replace(c, state=state, updated_at=now, finished_at=now,
                               result=c.result if result is None else result,
                               error=c.error if error is None else error,
                               result_version=c.result_version if not result_version else result_version)


def _why(c: PipelineCommand) -> str:
    """What ended a command, for the message refusing a move out of it."""
    return c.error if c.state.is_final and c.error else ""


def _check_command(new: NewCommand) -> None:
    """What any caller may get wrong; the RPC layer converts the same rules first, field by field."""
    problems = Violations()
    if new.kind is CommandKind.RELOAD_CONFIG:
        if not new.config:
            problems.add("config", "is required for RELOAD_CONFIG: a JSON document")
        else:
            try:
                json.loads(new.config)
            except ValueError as exc:
                problems.add("config", f"is not valid JSON: {exc}")
    elif new.config:
        problems.add("config", "is only for RELOAD_CONFIG")
    if new.then_deploy is not None:
        if not new.kind.may_deploy:
            problems.add("then_deploy", "is only for OPTIMIZE and RETRAIN, whose result is a model version")
        if not new.model:
            problems.add("model", "is required with then_deploy: the model whose new version is rolled out")
    if new.ack_timeout is not None and not 1 <= new.ack_timeout <= 7 * 86400:
        problems.add("ack_timeout", "must be between 1s and 7 days")
    problems.raise_if_any()
