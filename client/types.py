"""The message types the SDK returns, under public names for type annotations.

`Client` methods return the protobuf messages themselves (typed by the
generated `.pyi` stubs); import their classes from here rather than from the
generated `modelctl.v1` package, whose layout may change with the contract.
"""

from __future__ import annotations

from modelctl.v1 import registry_pb2 as _registry
from modelctl.v1 import system_pb2 as _system

# lifecycle
Model = _registry.Model
ModelVersion = _registry.ModelVersion
ModelVersionState = _registry.ModelVersionState
RegisterModelResponse = _registry.RegisterModelResponse
UploadArtifactResponse = _registry.UploadArtifactResponse
ListModelsResponse = _registry.ListModelsResponse

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
    "Model", "ModelVersion", "ModelVersionState", "RegisterModelResponse", "UploadArtifactResponse",
    "ListModelsResponse", "SystemStatus", "ComponentState", "RestartSystemResponse", "AuditEvent", "ListAuditEventsResponse",
    "Role", "Token", "CreateTokenResponse",
]
