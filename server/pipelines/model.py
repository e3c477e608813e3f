"""The pipeline domain's records: pipelines, their reports, commands and the changes to them.

All frozen, all plain Python: the API converts them from and to the wire in
`api/pipeline_convert.py`, the store in `store/pipelines.py`.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field

from ..deployments.params import ParamOverrides
from ..deployments.phases import Strategy
from .states import CommandState


class PipelineState(enum.Enum):
    IDLE = "IDLE"
    """Up and waiting for work."""
    RUNNING = "RUNNING"
    """Running a job."""
    OPTIMIZING = "OPTIMIZING"
    """Running an optimisation."""
    PAUSED = "PAUSED"
    """Taking no new work until resumed."""
    FAILED = "FAILED"
    """Its last job failed."""


class CommandKind(enum.Enum):
    OPTIMIZE = "OPTIMIZE"
    """Optimise a model now; with then_deploy its new version is rolled out by itself."""
    RETRAIN = "RETRAIN"
    """Retrain a model (or all of them) now."""
    PAUSE = "PAUSE"
    """Stop taking new work."""
    RESUME = "RESUME"
    """Take new work again."""
    RELOAD_CONFIG = "RELOAD_CONFIG"
    """Apply a new JSON configuration."""

    @property
    def may_deploy(self) -> bool:
        """Kinds whose result is a model version that `then_deploy` can roll out."""
        return self in (CommandKind.OPTIMIZE, CommandKind.RETRAIN)


@dataclass(frozen=True)
class PipelineResult:
    model: str = ""
    version: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    summary: str = ""
    finished_at: dt.datetime | None = None


@dataclass(frozen=True)
class Pipeline:
    name: str
    models: tuple[str, ...]
    version: str
    labels: dict[str, str]
    state: PipelineState
    job: str
    progress: float
    last_seen: dt.datetime
    last_result: PipelineResult | None
    details: dict[str, str]
    registered_at: dt.datetime
    registered_by: str

    def stale(self, now: dt.datetime, stale_after: float) -> bool:
        """Silent for longer than `stale_after` seconds: computed when read, never stored."""
        return (now - self.last_seen).total_seconds() > stale_after


@dataclass(frozen=True)
class Registration:
    name: str
    models: tuple[str, ...] = ()
    version: str = ""
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StatusReport:
    name: str
    state: PipelineState
    job: str = ""
    progress: float = 0.0
    #: None keeps the stored result.
    last_result: PipelineResult | None = None
    details: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ThenDeploy:
    """The rollout a command starts with the version its pipeline registers."""

    strategy: Strategy
    overrides: ParamOverrides = field(default_factory=ParamOverrides)


@dataclass(frozen=True)
class NewCommand:
    pipeline: str
    kind: CommandKind
    model: str = ""
    parameters: dict[str, str] = field(default_factory=dict)
    config: str = ""
    then_deploy: ThenDeploy | None = None
    #: Seconds the pipeline has to acknowledge it; None takes pipelines.command_timeout.
    ack_timeout: float | None = None


@dataclass(frozen=True)
class PipelineCommand:
    id: str
    pipeline: str
    kind: CommandKind
    model: str
    parameters: dict[str, str]
    config: str
    then_deploy: ThenDeploy | None
    state: CommandState
    result: str
    error: str
    result_version: str
    deployment_id: str
    created_at: dt.datetime
    updated_at: dt.datetime
    deadline: dt.datetime
    created_by: str
    delivered_at: dt.datetime | None = None
    acknowledged_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None

    @property
    def awaits_deployment(self) -> bool:
        """Acknowledged with a version to roll out, and the rollout not started yet."""
        return (self.state is CommandState.ACKNOWLEDGED and self.then_deploy is not None
                and bool(self.result_version) and not self.deployment_id)


@dataclass(frozen=True)
class CommandUpdate:
    """What a pipeline reports about a command (UpdatePipelineCommand)."""

    command_id: str
    state: CommandState
    result: str = ""
    error: str = ""
    #: The model version it registered; with then_deploy, the one rolled out.
    version: str = ""
