"""The message types the SDK returns, under public names for type annotations.

`Client` methods return the protobuf messages themselves (typed by the
generated `.pyi` stubs); import their classes from here rather than from the
generated `modelctl.v1` package, whose layout may change with the contract.
"""

from __future__ import annotations

from modelctl.v1 import alert_pb2 as _alert
from modelctl.v1 import deployment_pb2 as _deployment
from modelctl.v1 import drift_pb2 as _drift
from modelctl.v1 import experiment_pb2 as _experiment
from modelctl.v1 import pipeline_pb2 as _pipeline
from modelctl.v1 import registry_pb2 as _registry
from modelctl.v1 import system_pb2 as _system

# lifecycle
Model = _registry.Model
ModelVersion = _registry.ModelVersion
ModelVersionState = _registry.ModelVersionState
RegisterModelResponse = _registry.RegisterModelResponse
UploadArtifactResponse = _registry.UploadArtifactResponse
ListModelsResponse = _registry.ListModelsResponse

# deployments
Deployment = _deployment.Deployment
DeploymentState = _deployment.DeploymentState
DeploymentStrategy = _deployment.DeploymentStrategy
DeploymentParams = _deployment.DeploymentParams
Thresholds = _deployment.Thresholds
DeploymentEvent = _deployment.DeploymentEvent
DeploymentEventKind = _deployment.DeploymentEventKind
GateEvaluation = _deployment.GateEvaluation
GateVerdict = _deployment.GateVerdict
ListDeploymentsResponse = _deployment.ListDeploymentsResponse

# data plane and telemetry
TrafficSplit = _deployment.TrafficSplit
Instance = _deployment.Instance
InstanceState = _deployment.InstanceState
HeartbeatResponse = _deployment.HeartbeatResponse
Assignment = _deployment.Assignment
MetricsSample = _deployment.MetricsSample
ReportMetricsResponse = _deployment.ReportMetricsResponse

# pipelines
Pipeline = _pipeline.Pipeline
PipelineState = _pipeline.PipelineState
PipelineResult = _pipeline.PipelineResult
PipelineCommand = _pipeline.PipelineCommand
PipelineCommandKind = _pipeline.PipelineCommandKind
PipelineCommandState = _pipeline.PipelineCommandState
ThenDeploy = _pipeline.ThenDeploy

# drift
DriftReport = _drift.DriftReport
FeatureDrift = _drift.FeatureDrift
FeatureType = _drift.FeatureType
ReferenceSource = _drift.ReferenceSource
FeatureValues = _deployment.FeatureValues
Outcome = _deployment.Outcome
Quality = _deployment.Quality

# experiments
Experiment = _experiment.Experiment
ExperimentResult = _experiment.ExperimentResult
ArmResult = _experiment.ArmResult
ExperimentMetric = _experiment.ExperimentMetric
ExperimentState = _experiment.ExperimentState
ListExperimentsResponse = _experiment.ListExperimentsResponse

# alerts
Alert = _alert.Alert
AlertEvent = _alert.AlertEvent
Silence = _alert.Silence
NotificationDelivery = _alert.NotificationDelivery

# system
SystemStatus = _system.SystemStatus
ComponentState = _system.ComponentState
RestartSystemResponse = _system.RestartSystemResponse
AuditEvent = _system.AuditEvent
ListAuditEventsResponse = _system.ListAuditEventsResponse
Role = _system.Role
Token = _system.Token
CreateTokenResponse = _system.CreateTokenResponse

__all__ = [
    "Pipeline", "PipelineState", "PipelineResult", "PipelineCommand", "PipelineCommandKind", "PipelineCommandState",
    "ThenDeploy",
    "Alert", "AlertEvent", "Silence", "NotificationDelivery",
    "Model", "ModelVersion", "ModelVersionState", "RegisterModelResponse", "UploadArtifactResponse",
    "ListModelsResponse", "SystemStatus", "ComponentState", "RestartSystemResponse", "AuditEvent",
    "ListAuditEventsResponse",
    "Role", "Token", "CreateTokenResponse",
    "Deployment", "DeploymentState", "DeploymentStrategy", "DeploymentParams", "Thresholds", "DeploymentEvent",
    "DeploymentEventKind", "GateEvaluation", "GateVerdict", "ListDeploymentsResponse",
    "TrafficSplit", "Instance", "InstanceState", "HeartbeatResponse", "Assignment", "MetricsSample",
    "ReportMetricsResponse",
    "DriftReport", "FeatureDrift", "FeatureType", "ReferenceSource", "FeatureValues", "Outcome", "Quality",
    "Experiment", "ExperimentResult", "ArmResult", "ExperimentMetric", "ExperimentState", "ListExperimentsResponse",
]
