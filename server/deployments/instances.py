"""Serving instances: registration, heartbeats, and the version each must load.

Instances only report; which version they are assigned is decided by the
deployment controller (a rolling update moves them in batches, a success
assigns the new live version to all). A new instance starts on the live version.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol

from ..cache import InvalidatedCache
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


@dataclass(frozen=True)
class _Known:
    """An instance as last stored, not lost: what a heartbeat that changes nothing is compared with."""

    loaded_version: str | None
    healthy: bool
    assigned_version: str | None


class Liveness(Protocol):
    """Where a heartbeat that changes nothing goes: memory, flushed in batches (`store.liveness`)."""

    def seen(self, model: str, instance_id: str, at: dt.datetime) -> None: ...


class InstanceService:
    def __init__(self, repo: DeploymentRepository, clock: Clock, *, liveness: Liveness | None = None,
                 known: InvalidatedCache[tuple[str, str], _Known] | None = None) -> None:
        """With `liveness` and `known` (a cache the app empties on every committed write to the instances
        table), a heartbeat that changes nothing is answered from memory (`beat`); without, all are written."""
        self._repo = repo
        self._clock = clock
        self._liveness = liveness
        self._known = known

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

    def beat(self, model: str, instance_id: str, loaded_version: str | None, healthy: bool) -> HeartbeatResult | None:
        """A heartbeat that changes nothing, answered from memory without blocking; None: call `report`.

        Only "still alive" is new, and that is kept in memory and flushed in batches (see
        `store.liveness` for the trade-off); the assignment comes from the cache of known instances,
        which any committed write to the instances table (an assignment, `lost`) empties first.
        """
        if self._liveness is None or self._known is None:
            return None
        known = self._known.get((model, instance_id))
        if known is None or known.loaded_version != (loaded_version or None) or known.healthy != healthy:
            return None
        self._liveness.seen(model, instance_id, self._clock.now())
        return HeartbeatResult(known.assigned_version, False)

    def report(self, model: str, instance_id: str, loaded_version: str | None, healthy: bool) -> HeartbeatResult:
        """`heartbeat`, also saying whether the instance's state changed (what a rolling update waits for).

        Written before it returns: a change of loaded version or health is durable before it is answered.
        """
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
        self._remember(model, instance_id)
        return HeartbeatResult(after.assigned_version, changed)

    def _remember(self, model: str, instance_id: str) -> None:
        """Cache the instance as stored now, so its next unchanged heartbeat stays in memory."""
        if self._known is None:
            return
        # Read again after our own write committed (which emptied the cache): an assignment committing
        # between that write and this read wins, because the generation is taken before the read.
        generation = self._known.generation
        with self._repo.read() as tx:
            now = tx.get_instance(model, instance_id)
        if now is not None and not now.lost:
            self._known.put((model, instance_id), _Known(now.loaded_version, now.healthy, now.assigned_version),
                            generation)

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
