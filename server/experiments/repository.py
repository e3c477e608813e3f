"""Everything the experiment service reads and writes, as one transactional interface.

An experiment's start or stop, the traffic split it sets and the model row lock
it holds are one transaction, so an experiment and a deployment of the same
model can never both begin: both take the model's lock first, then look for
the other. `modelctl_server.store.experiments.SqlExperimentRepository` serves
the server.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Collection, ContextManager, Mapping, Protocol, Sequence

from ..deployments.model import Deployment, ModelInfo, VersionInfo
from .model import ArmIncrement, ArmTotals, Experiment
from .states import ExperimentState

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


class ExperimentTx(Protocol):
    # --- the model, its versions and its traffic (shared with the deployments) ---
    def get_model(self, name: str, *, lock: bool = False) -> ModelInfo | None:
        """`lock` holds the model until the transaction ends: starts, stops and deploys of it queue."""

    def get_version(self, model: str, version: str) -> VersionInfo | None: ...

    def active_deployment(self, model: str) -> Deployment | None: ...

    def set_traffic(self, model: str, weights: Mapping[str, float]) -> None: ...

    # --- experiments ---
    def running_experiment(self, model: str) -> str | None:
        """The id of the model's running experiment."""

    def running_experiments(self) -> list[Experiment]: ...

    def insert_experiment(self, experiment: Experiment) -> None:
        """Stores it with both arms at zero."""

    def get_experiment(self, experiment_id: str, *, lock: bool = False) -> Experiment | None: ...

    def update_experiment(self, experiment: Experiment) -> None: ...

    def lower_sequential_p(self, experiment_id: str, p_value: float) -> None:
        """Store `p_value` if it is below the stored one and the experiment still runs."""

    def list_experiments(self, *, model: str | None = None, states: Collection[ExperimentState] | None = None,
                         after: str | None = None, limit: int = 100) -> list[Experiment]:
        """Newest first; `after` is the id of the last experiment of the previous page."""

    def arms(self, experiment_ids: Collection[str]) -> dict[str, tuple[ArmTotals, ArmTotals]]:
        """experiment id -> (control, treatment) sums."""


class ExperimentRepository(Protocol):
    def transaction(self) -> ContextManager[ExperimentTx]:
        """Commits when the block ends, rolls back if it raises."""

    def read(self) -> ContextManager[ExperimentTx]:
        """A transaction that only reads."""

    def writer(self, increments: Sequence[ArmIncrement]) -> Callable[[Session], None]:
        """A function that adds `increments` inside the session it is given (the metrics journal's)."""
