"""Pipelines: the services that train and optimise models, their status, and the commands operators send them."""

from .model import (
    CommandKind,
    CommandState,
    CommandUpdate,
    NewCommand,
    Pipeline,
    PipelineCommand,
    PipelineResult,
    PipelineState,
    Registration,
    StatusReport,
    ThenDeploy,
)
from .service import CommandChange, PipelineService
from .states import TRANSITIONS, IllegalCommandTransition, check_transition

__all__ = [
    "TRANSITIONS", "CommandChange", "CommandKind", "CommandState", "CommandUpdate", "IllegalCommandTransition",
    "NewCommand", "Pipeline", "PipelineCommand", "PipelineResult", "PipelineService", "PipelineState",
    "Registration", "StatusReport", "ThenDeploy", "check_transition",
]
