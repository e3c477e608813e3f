"""Deployments: the rollout state machine, its strategies and gates, and the controller that runs it."""

from .engine import DeploymentController, DeploymentUpdate
from .instances import InstanceService
from .memory import InMemoryDeploymentRepository
from .model import (
                    Deployment,
                    DeploymentEvent,
                    EventKind,
                    Gate,
                    GateEvaluation,
                    Instance,
                    ModelInfo,
                    Verdict,
                    VersionInfo,
)
from .params import DeploymentParams, ParamOverrides, Thresholds, resolve_params
from .phases import TRANSITIONS, IllegalTransitionError, Phase, Strategy, check_transition
from .repository import ActiveDeploymentConflict, DeploymentRepository, DeploymentTx

__all__ = [
    "TRANSITIONS", "ActiveDeploymentConflict", "Deployment", "DeploymentController", "DeploymentEvent",
    "DeploymentParams", "DeploymentRepository", "DeploymentTx", "DeploymentUpdate", "EventKind", "Gate",
    "GateEvaluation", "IllegalTransitionError", "InMemoryDeploymentRepository", "Instance", "InstanceService",
    "ModelInfo", "ParamOverrides", "Phase", "Strategy", "Thresholds", "Verdict", "VersionInfo",
    "check_transition", "resolve_params",
]
