"""The experiment service: the only writer of experiments, their traffic split and their verdicts.

An experiment's start and stop each run in one transaction under the model's
row lock, the same lock `DeploymentController.create` takes, so an experiment
and a deployment of one model exclude each other whatever races: each looks
for the other after taking the lock. Every state change is checked against
`states.TRANSITIONS`. Verdicts are computed from the arms' sums on read; each
read is a look of the sequential test, and a lower always-valid p-value is
stored so it never rises again.

Ingest stays cheap: `journal_hook` consults an in-memory map of the running
experiments (loaded at startup, replaced on every start, stop and refresh), so
a report for a model with no experiment costs no database read at all.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Collection, Sequence

from ..clock import Clock
from ..config import ExperimentSettings
from ..deployments.engine import DeploymentController, DeploymentUpdate
from ..deployments.phases import Strategy
from ..errors import FailedPreconditionError, ModelctlError, NotFoundError, Violations
from ..telemetry.sample import TelemetrySample
from .ingest import increments
from .model import ArmTotals, Experiment, StartRequest
from .repository import ExperimentRepository, ExperimentTx
from .results import ExperimentResult, analyse, format_p
from .states import ExperimentState, check_transition

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExperimentView:
    """An experiment as stored, with its verdict computed from the arms now."""

    experiment: Experiment
    result: ExperimentResult


@dataclass(frozen=True)
class StopOutcome:
    view: ExperimentView
    #: The canary of the winning treatment, with its events to announce; None for a plain stop.
    deployment: DeploymentUpdate | None = None


class ExperimentService:
    def __init__(self, repo: ExperimentRepository, clock: Clock, settings: ExperimentSettings,
                 deployments: DeploymentController, *, new_id: Callable[[], str] | None = None) -> None:
        self._repo = repo
        self._clock = clock
        self._settings = settings
        self._deployments = deployments
        self._new_id = new_id or (lambda: uuid.uuid4().hex[:12])
        #: model -> its running experiment; replaced whole, never mutated, so readers need no lock.
        self._running: dict[str, Experiment] = {}
        self._cache_lock = threading.Lock()
        #: Bumped by every local start and stop, so a refresh read before one cannot undo it.
        self._cache_generation = 0

    def reconfigure(self, settings: ExperimentSettings) -> None:
        """New defaults (RestartSystem); running experiments keep the alpha, power and effect they began with."""
        self._settings = settings

    def load(self) -> int:
        """Fill the running-experiments cache from the database (at startup); returns how many run."""
        generation = self._cache_generation
        with self._repo.read() as tx:
            running = tx.running_experiments()
        self._replace_cache(running, generation)
        return len(running)

    @property
    def running_models(self) -> frozenset[str]:
        return frozenset(self._running)

    # --- operations -----------------------------------------------------------------------------------------

    def start(self, request: StartRequest, *, created_by: str = "") -> ExperimentView:
        """Store a RUNNING experiment and give it the model's traffic split, in one transaction."""
        min_effect = self._settings.min_effect if request.min_effect is None else request.min_effect
        _check_request(request, min_effect)
        model, control, treatment = request.model, request.control_version, request.treatment_version
        with self._repo.transaction() as tx:
            now = self._clock.now()
            info = tx.get_model(model, lock=True)
            # check the model exists
            if info is None:
                raise NotFoundError(f"model {model!r} not found")
            # check both versions exist and may serve
            for version in (control, treatment):
                found = tx.get_version(model, version)
                if found is None:
                    raise NotFoundError(f"model {model} has no version {version!r}")
                if found.archived:
                    raise FailedPreconditionError(
                        f"{model} version {version} is archived and cannot be in an experiment")
            # check no deployment is moving the model's traffic
            active = tx.active_deployment(model)
            if active is not None:
                raise FailedPreconditionError(
                    f"{model} has an active deployment {active.id} ({active.version}, {active.phase.value}); "
                    "an experiment can start once it finishes or is aborted")
            # check no other experiment owns the split
            running = tx.running_experiment(model)
            if running is not None:
                raise FailedPreconditionError(f"{model} already has a running experiment {running}; stop it first")
            # check the control is what serves today, so the experiment compares against reality
            if info.live_version is not None and info.live_version != control:
                raise FailedPreconditionError(
                    f"the control must be {model}'s live version {info.live_version}, not {control}")
            exp = Experiment(
                id=self._new_id(), model=model, control_version=control, treatment_version=treatment,
                treatment_percent=request.treatment_percent, metric=request.metric,
                state=ExperimentState.RUNNING, min_effect=min_effect, alpha=self._settings.alpha,
                power=self._settings.power, sequential_p_value=1.0, created_at=now, created_by=created_by)
            tx.insert_experiment(exp)
            tx.set_traffic(model, exp.split)
        self._cache_put(exp)
        return ExperimentView(exp, analyse(exp, ArmTotals(), ArmTotals()))

    def get(self, experiment_id: str) -> ExperimentView:
        with self._repo.read() as tx:
            exp = tx.get_experiment(experiment_id)
            arms = tx.arms([experiment_id]) if exp is not None else {}
        if exp is None:
            raise NotFoundError(f"experiment {experiment_id!r} not found")
        return self._look([exp], arms)[0]

    def list(self, *, model: str | None = None, states: Collection[ExperimentState] | None = None,
             after: str | None = None, limit: int = 100) -> list[ExperimentView]:
        """Newest first; pass the last id of a page as `after` for the next."""
        with self._repo.read() as tx:
            found = tx.list_experiments(model=model, states=states, after=after, limit=limit)
            arms = tx.arms([e.id for e in found])
        return self._look(found, arms)

    def refresh(self) -> list[ExperimentView]:
        """A look at every running experiment (for the metrics), and the cache read again from the database."""
        generation = self._cache_generation
        with self._repo.read() as tx:
            running = tx.running_experiments()
            arms = tx.arms([e.id for e in running])
        self._replace_cache(running, generation)
        return self._look(running, arms)

    def stop(self, experiment_id: str, *, promote_winner: bool = False, reason: str = "",
             by: str = "") -> StopOutcome:
        """Traffic back on the control; with `promote_winner`, a canary of a winning treatment starts."""
        who = by or "an operator"
        with self._repo.transaction() as tx:
            exp = self._locked(tx, experiment_id)
            subject = f"experiment {exp.id}"
            # check it still runs: the table says where a stopped experiment may go (nowhere)
            check_transition(exp.state, ExperimentState.PROMOTED if promote_winner else ExperimentState.STOPPED,
                             subject)
            control, treatment = tx.arms([exp.id]).get(exp.id, (ArmTotals(), ArmTotals()))
            result = analyse(exp, control, treatment)
            # check a promotion has a significant winner to promote
            if promote_winner and result.winner is None:
                raise FailedPreconditionError(
                    f"{subject} has no significant winner to promote: always-valid p = {format_p(result.p_value)} "
                    f"(needs < {exp.alpha:g}); {result.summary}. Stop it without --promote-winner, "
                    "or wait for more samples")
            promote = promote_winner and result.winner == exp.treatment_version
            if promote:
                why = f"treatment {exp.treatment_version} won; promoted by {who} with a canary deployment"
            elif promote_winner:
                why = f"control {exp.control_version} won ({result.summary}); stopped by {who}, traffic stays on it"
            else:
                why = f"stopped by {who}"
            if reason:
                why += f": {reason}"
            target = ExperimentState.PROMOTED if promote else ExperimentState.STOPPED
            check_transition(exp.state, target, subject)
            exp = dataclasses.replace(exp, state=target, stopped_at=self._clock.now(), stopped_by=who, reason=why,
                                      sequential_p_value=result.p_value)
            tx.update_experiment(exp)
            tx.set_traffic(exp.model, {exp.control_version: 100.0})
        self._cache_drop(exp.model)
        view = ExperimentView(exp, result)
        if not promote:
            return StopOutcome(view)
        return self._promote(view, by)

    def journal_hook(self, samples: Sequence[TelemetrySample]) -> Callable[[Session], None] | None:
        """What `MetricJournal.append(reports, also=...)` runs to add `samples` to experiment arms.

        None when no running experiment concerns them: the common case reads
        nothing but the in-memory map. The function returned takes the
        journal's SQLAlchemy `Session` and writes additive UPDATEs in it.
        """
        running = self._running
        if not running:
            return None
        added = increments(samples, running)
        if not added:
            return None
        return self._repo.writer(added)

    # --- helpers --------------------------------------------------------------------------------------------

    def _locked(self, tx: ExperimentTx, experiment_id: str) -> Experiment:
        """The experiment read under its model's lock (taken first, as deployments do)."""
        found = tx.get_experiment(experiment_id)
        if found is None:
            raise NotFoundError(f"experiment {experiment_id!r} not found")
        tx.get_model(found.model, lock=True)
        exp = tx.get_experiment(experiment_id, lock=True)
        assert exp is not None, "an experiment is deleted only with its model, whose row we hold"
        return exp

    def _promote(self, view: ExperimentView, by: str) -> StopOutcome:
        exp = view.experiment
        try:
            created = self._deployments.create(exp.model, exp.treatment_version, Strategy.CANARY,
                                               created_by=by or "experiment " + exp.id)
        except ModelctlError as exc:
            why = f"{exp.reason}; but the canary of {exp.treatment_version} could not start: {exc.message}"
            self._amend(dataclasses.replace(exp, reason=why))
            raise FailedPreconditionError(
                f"experiment {exp.id} stopped and traffic is back on {exp.control_version}, but the canary of "
                f"{exp.treatment_version} could not start: {exc.message}") from None
        dep_id = created.deployment.id
        exp = self._amend(dataclasses.replace(exp, deployment_id=dep_id,
                                              reason=f"{exp.reason} (deployment {dep_id})"))
        return StopOutcome(ExperimentView(exp, view.result), created)

    def _amend(self, exp: Experiment) -> Experiment:
        with self._repo.transaction() as tx:
            tx.update_experiment(exp)
        return exp

    def _look(self, found: Sequence[Experiment],
              arms: dict[str, tuple[ArmTotals, ArmTotals]]) -> list[ExperimentView]:
        """Verdicts now; a running experiment whose always-valid p-value fell keeps the lower one."""
        views, lowered = [], []
        for exp in found:
            control, treatment = arms.get(exp.id, (ArmTotals(), ArmTotals()))
            result = analyse(exp, control, treatment)
            if exp.state is ExperimentState.RUNNING and result.p_value < exp.sequential_p_value:
                exp = dataclasses.replace(exp, sequential_p_value=result.p_value)
                lowered.append(exp)
            views.append(ExperimentView(exp, result))
        if lowered:
            with self._repo.transaction() as tx:
                for exp in lowered:
                    tx.lower_sequential_p(exp.id, exp.sequential_p_value)
        return views

    def _replace_cache(self, running: Sequence[Experiment], generation: int) -> None:
        """Take what the database said, unless a local start or stop committed after it was read."""
        with self._cache_lock:
            if self._cache_generation == generation:
                self._running = {e.model: e for e in running}

    def _cache_put(self, exp: Experiment) -> None:
        with self._cache_lock:
            self._running = {**self._running, exp.model: exp}
            self._cache_generation += 1

    def _cache_drop(self, model: str) -> None:
        with self._cache_lock:
            self._running = {m: e for m, e in self._running.items() if m != model}
            self._cache_generation += 1


def _check_request(request: StartRequest, min_effect: float) -> None:
    """What any caller may get wrong; the RPC layer reports the same rules field by field first."""
    problems = Violations()
    if request.control_version == request.treatment_version:
        problems.add("treatment_version", f"must differ from control_version ({request.control_version})")
    if not (math.isfinite(request.treatment_percent) and 0 < request.treatment_percent < 100):
        problems.add("treatment_percent", "must be a percentage strictly between 0 and 100")
    if not (math.isfinite(min_effect) and min_effect > 0):
        problems.add("min_effect", "must be a finite relative lift above 0, e.g. 0.02 for 2 %")
    problems.raise_if_any()
