"""Serving instances: registration, heartbeats, and the version each must load.

Instances only report; which version they are assigned is decided by the
deployment controller (a rolling update moves them in batches, a success
assigns the new live version to all). A new instance starts on the live version.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..clock import Clock
from ..errors import NotFoundError, Violations
from .model import Instance
from .repository import DeploymentRepository

MAX_ID_LENGTH = 128


@dataclass(frozen=True)
class HeartbeatResult:
    #: The version the instance must load (None: nothing yet).
    assigned_version: str | None
    #: Whether it now reports a different version, health or liveness than before.
    changed: bool


class InstanceService:
    def __init__(self, repo: DeploymentRepository, clock: Clock) -> None:
        self._repo = repo
        self._clock = clock

    def register(self, model: str, instance_id: str, address: str) -> Instance:
        """Add a serving instance, or re-add one that restarted; returns it with its assignment."""
        problems = Violations()
        _check_id(instance_id, problems)
        if len(address) > 256:
            problems.add("address", "must be at most 256 characters")
        problems.raise_if_any()
        with self._repo.transaction() as tx:
            # Locked: a deployment succeeding at this moment must not miss this instance (see _succeed).
            info = tx.get_model(model, lock=True)
            if info is None:
                raise NotFoundError(f"model {model!r} not found")
            now = self._clock.now()
            # Locked: a rolling update must not reassign it between this read and the write below.
            known = tx.get_instance(model, instance_id, lock=True)
            instance = Instance(
                model=model, instance_id=instance_id, address=address,
                # A returning instance keeps its assignment: a rolling update may have moved it already.
                assigned_version=known.assigned_version if known else info.live_version,
                loaded_version=known.loaded_version if known else None,
                healthy=known.healthy if known else False,
                registered_at=known.registered_at if known else now, last_heartbeat_at=now, lost=False)
            tx.save_instance(instance)
        return instance

    def heartbeat(self, model: str, instance_id: str, loaded_version: str | None,
                  healthy: bool) -> str | None:
        """Record what the instance serves; returns the version it must load (None: nothing yet)."""
        return self.report(model, instance_id, loaded_version, healthy).assigned_version

    def report(self, model: str, instance_id: str, loaded_version: str | None, healthy: bool) -> HeartbeatResult:
        """`heartbeat`, also saying whether the instance's state changed (what a rolling update waits for)."""
        problems = Violations()
        _check_id(instance_id, problems)
        problems.raise_if_any()
        with self._repo.transaction() as tx:
            before = tx.get_instance(model, instance_id)
            after = tx.record_heartbeat(model, instance_id, loaded_version or None, healthy, self._clock.now())
        if before is None or after is None:
            raise NotFoundError(
                f"instance {instance_id!r} of model {model!r} is not registered; register it first")
        changed = (before.loaded_version, before.healthy, before.lost) != (after.loaded_version, after.healthy,
                                                                           after.lost)
        return HeartbeatResult(after.assigned_version, changed)

    def assignment(self, model: str, instance_id: str) -> str | None:
        return self.get(model, instance_id).assigned_version

    def get(self, model: str, instance_id: str) -> Instance:
        with self._repo.read() as tx:
            instance = tx.get_instance(model, instance_id)
        if instance is None:
            raise NotFoundError(f"instance {instance_id!r} of model {model!r} is not registered")
        return instance

    def list(self, model: str) -> list[Instance]:
        with self._repo.read() as tx:
            if tx.get_model(model) is None:
                raise NotFoundError(f"model {model!r} not found")
            return tx.list_instances(model)


def _check_id(instance_id: str, problems: Violations) -> None:
    if not instance_id or not instance_id.strip():
        problems.add("instance_id", "must not be empty")
    elif len(instance_id) > MAX_ID_LENGTH:
        problems.add("instance_id", f"must be at most {MAX_ID_LENGTH} characters")
