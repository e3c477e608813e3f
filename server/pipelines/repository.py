"""Everything the pipeline service reads and writes, as one transactional interface.

`modelctl_server.store.pipelines.SqlPipelineRepository` serves the server. A
command's change and the pipeline's `last_seen` it implies commit together.
"""

from __future__ import annotations

import datetime as dt
from typing import Collection, ContextManager, Protocol

from .model import Pipeline, PipelineCommand
from .states import CommandState


class PipelineTx(Protocol):
    def get_pipeline(self, name: str, *, lock: bool = False) -> Pipeline | None: ...

    def save_pipeline(self, pipeline: Pipeline) -> None:
        """Insert or replace."""

    def touch(self, name: str, now: dt.datetime) -> None:
        """The pipeline was heard from now."""

    def list_pipelines(self, *, model: str | None = None, after: str | None = None,
                       limit: int = 100) -> list[Pipeline]:
        """By name; `after` is the last name of the previous page."""

    def insert_command(self, command: PipelineCommand) -> None:
        """Raises FailedPreconditionError when another OPTIMIZE of its model is open (a lost race)."""

    def get_command(self, command_id: str, *, lock: bool = False) -> PipelineCommand | None: ...

    def update_command(self, command: PipelineCommand) -> None: ...

    def open_optimize(self, key: str) -> PipelineCommand | None:
        """The open OPTIMIZE holding `key` (a model, or "@pipeline")."""

    def list_commands(self, *, pipeline: str | None = None, states: Collection[CommandState] | None = None,
                      after: str | None = None, limit: int = 100) -> list[PipelineCommand]:
        """Newest first; `after` is the id of the last command of the previous page."""

    def unacknowledged(self, pipeline: str) -> list[PipelineCommand]:
        """PENDING and DELIVERED commands of the pipeline, oldest first."""

    def due(self, now: dt.datetime) -> list[PipelineCommand]:
        """Unacknowledged commands whose deadline has passed."""

    def acknowledged_with_deploy(self) -> list[PipelineCommand]:
        """ACKNOWLEDGED commands with then_deploy: awaiting their rollout, or its outcome."""

    def all_pipelines(self) -> list[Pipeline]: ...


class PipelineRepository(Protocol):
    def transaction(self) -> ContextManager[PipelineTx]:
        """Commits when the block ends, rolls back if it raises."""

    def read(self) -> ContextManager[PipelineTx]:
        """A transaction that only reads."""
