"""The ModelController servicer: one class assembled from one mixin per area.

Each mixin keeps its RPCs thin: validate, convert, call the domain, convert back.
Auth, error mapping and auditing happen in the interceptor, not here.
"""

from __future__ import annotations

from modelctl.v1 import controller_pb2_grpc as _grpc

from .alert_rpcs import AlertRpcs
from .dataplane_rpcs import DataPlaneRpcs
from .deployment_rpcs import DeploymentRpcs
from .drift_rpcs import DriftRpcs
from .experiment_rpcs import ExperimentRpcs
from .pipeline_rpcs import PipelineRpcs
from .registry_rpcs import RegistryRpcs
from .services import Services
from .system_rpcs import SystemRpcs
from .telemetry_rpcs import TelemetryRpcs


class ModelControllerServicer(RegistryRpcs, DeploymentRpcs, ExperimentRpcs, DriftRpcs, DataPlaneRpcs, TelemetryRpcs,
                              SystemRpcs, AlertRpcs, PipelineRpcs,
                              _grpc.ModelControllerServicer):
    def __init__(self, services: Services) -> None:
        self.services = services
