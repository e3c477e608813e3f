"""Rolling updates: which serving instances move next, and which have confirmed.

Pure functions over the instances' last heartbeats; the controller stores the
assignments they decide. Instances reload in place, so an instance switching
version is briefly unavailable: a batch moves at most `max_unavailable` of them
plus `max_surge` more where the platform starts a fresh copy first.
"""

from __future__ import annotations

import datetime as dt
from typing import Sequence

from .model import Instance
from .params import DeploymentParams, resolve_amount

#: Heartbeats an instance may miss before it is marked lost.
MISSED_HEARTBEATS = 3


def batch_size(params: DeploymentParams, live_count: int) -> int:
    unavailable = resolve_amount(params.max_unavailable, live_count, round_up=False)
    surge = resolve_amount(params.max_surge, live_count, round_up=True)
    # Percentages of a small pool can round to nothing; a rollout must still move.
    return max(1, unavailable + surge)


def batch_count(instances: Sequence[Instance], version: str, size: int) -> int:
    """Batches still to move: serving instances not yet assigned `version`, `size` at a time."""
    left = sum(1 for i in serving(instances) if i.assigned_version != version)
    return -(-left // max(1, size))


def silent(instances: Sequence[Instance], now: dt.datetime, heartbeat_interval: float) -> list[Instance]:
    """Instances not yet marked lost whose heartbeat stopped."""
    cutoff = lost_cutoff(now, heartbeat_interval)
    return [i for i in instances if not i.lost and i.last_heartbeat_at < cutoff]


def lost_cutoff(now: dt.datetime, heartbeat_interval: float) -> dt.datetime:
    return now - dt.timedelta(seconds=MISSED_HEARTBEATS * heartbeat_interval)


def serving(instances: Sequence[Instance]) -> list[Instance]:
    return [i for i in instances if not i.lost]


def unconfirmed(instances: Sequence[Instance], version: str | None) -> list[Instance]:
    """Serving instances assigned `version` that have not reported it loaded and healthy."""
    return [i for i in serving(instances) if i.assigned_version == version and not i.confirms(version)]


def failing(instances: Sequence[Instance], version: str) -> list[Instance]:
    """Moved instances that report `version` loaded but unhealthy: the new version does not run there."""
    return [i for i in serving(instances)
            if i.assigned_version == version and i.loaded_version == version and not i.healthy]


def not_yet_back(instances: Sequence[Instance], version: str | None) -> list[Instance]:
    """During a rollback: serving instances that have not reported `version` loaded (healthy or not)."""
    return [i for i in serving(instances) if i.loaded_version != version]


def next_batch(instances: Sequence[Instance], version: str, size: int) -> list[Instance]:
    """The next serving instances to move to `version`, in instance-id order so a restart picks the same."""
    return [i for i in serving(instances) if i.assigned_version != version][:size]


def share(instances: Sequence[Instance], version: str) -> float:
    """Percent of serving instances assigned `version`."""
    live = serving(instances)
    if not live:
        return 0.0
    return round(100.0 * sum(1 for i in live if i.assigned_version == version) / len(live), 2)


def instance_split(instances: Sequence[Instance], version: str, previous: str | None) -> dict[str, float]:
    """The traffic split that matches the assignments, so routers weigh versions as instances serve them."""
    new = share(instances, version)
    if previous is None:
        return {version: 100.0 if new > 0 else 0.0}
    return {previous: round(100.0 - new, 2), version: new}


def describe(instances: Sequence[Instance], version: str | None) -> str:
    """Why each instance does not confirm `version`: "i3 (loaded v1), i4 (unhealthy)"."""
    parts = []
    for i in instances:
        if i.loaded_version != version:
            parts.append(f"{i.instance_id} (loaded {i.loaded_version or 'nothing'})")
        else:
            parts.append(f"{i.instance_id} (unhealthy)")
    return ", ".join(parts)
