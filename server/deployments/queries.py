"""Read-only views of deployments for the API: status, history, analyses, traffic.

Kept apart from the controller's decisions; `DeploymentController` inherits
these, so the API holds one object, and none of them writes.
"""

from __future__ import annotations

from typing import Collection

from ..cache import InvalidatedCache
from ..errors import NotFoundError
from .model import Deployment, DeploymentEvent, GateEvaluation
from .phases import Phase
from .repository import DeploymentRepository

#: Cached for a model without an active deployment (None means "not cached").
_NO_DEPLOYMENT = object()


class DeploymentQueries:
    def __init__(self, repo: DeploymentRepository) -> None:
        self._repo = repo
        #: model -> its active deployment, when the app wires a cache invalidated by every committed write
        #: to the deployments table (see `server.cache`); None (unit tests' in-memory repository): no cache.
        self.active_cache: InvalidatedCache[str, object] | None = None

    def active_deployment(self, model: str) -> Deployment | None:
        """The model's active deployment, from memory when cached: every ReportMetrics asks."""
        cache = self.active_cache
        if cache is None:
            with self._repo.read() as tx:
                return tx.active_deployment(model)
        found = cache.get(model)
        if found is not None:
            return None if found is _NO_DEPLOYMENT else found  # type: ignore[return-value]
        generation = cache.generation  # before the read: a deployment write committing meanwhile wins
        with self._repo.read() as tx:
            dep = tx.active_deployment(model)
        cache.put(model, _NO_DEPLOYMENT if dep is None else dep, generation)
        return dep

    def get(self, deployment_id: str) -> Deployment:
        with self._repo.read() as tx:
            dep = tx.get_deployment(deployment_id)
        if dep is None:
            raise NotFoundError(f"deployment {deployment_id!r} not found")
        return dep

    def list(self, *, model: str | None = None, phases: Collection[Phase] | None = None,
             after: str | None = None, limit: int = 100) -> list[Deployment]:
        """Newest first; pass the last id of a page as `after` for the next."""
        with self._repo.read() as tx:
            return tx.list_deployments(model=model, phases=phases, after=after, limit=limit)

    def active_ids(self) -> list[str]:
        """The deployments the reconcile loop must keep advancing, oldest first."""
        with self._repo.read() as tx:
            return tx.active_deployment_ids()

    def events(self, deployment_id: str, *, after_seq: int = 0,
               limit: int | None = None) -> list[DeploymentEvent]:
        """The stored history after `after_seq`, for a stream to replay before it follows live events."""
        with self._repo.read() as tx:
            if tx.get_deployment(deployment_id) is None:
                raise NotFoundError(f"deployment {deployment_id!r} not found")
            return tx.list_events(deployment_id, after_seq=after_seq, limit=limit)

    def evaluations(self, deployment_id: str, *, limit: int = 50) -> list[GateEvaluation]:
        """The latest gate evaluations, oldest first: what `deployments show` prints."""
        with self._repo.read() as tx:
            if tx.get_deployment(deployment_id) is None:
                raise NotFoundError(f"deployment {deployment_id!r} not found")
            return tx.list_evaluations(deployment_id, limit=limit)

    def traffic_split(self, model: str) -> dict[str, float]:
        """version -> percent; a version at 0 is loaded (shadow, or kept for rollback) but gets no traffic."""
        with self._repo.read() as tx:
            if tx.get_model(model) is None:
                raise NotFoundError(f"model {model!r} not found")
            return tx.get_traffic(model)
