"""Which role each RPC needs, whether it mutates (and so is audited), and its audit target."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ..auth import Role


@dataclass(frozen=True)
class RpcPolicy:
    role: Role
    mutating: bool
    #: Names what a request acts on, for the audit log.
    target: Callable[[Any], str] = lambda _request: ""


def _name_version(r: Any) -> str:
    return f"{r.name}:{r.version}" if r.version else r.name


def _role_name(value: int) -> str:
    return Role(value).name.lower() if value in {r.value for r in Role} else f"role {value}"


def _id(r: Any) -> str:
    return r.id


def _silence_target(r: Any) -> str:
    matchers = [f"model={r.model}" if r.model else "", f"version={r.version}" if r.version else "",
                f"kind={r.kind}" if r.kind else ""]
    return " ".join(m for m in matchers if m) + (f" ({r.comment[:200]})" if r.comment else "")


POLICIES: dict[str, RpcPolicy] = {
    # lifecycle
    "RegisterModel": RpcPolicy(Role.OPERATOR, True, _name_version),
    "UploadArtifact": RpcPolicy(Role.OPERATOR, True),
    "ListModels": RpcPolicy(Role.VIEWER, False),
    "GetModel": RpcPolicy(Role.VIEWER, False),
    "ArchiveModelVersion": RpcPolicy(Role.OPERATOR, True, _name_version),
    # deployment
    "DeployModel": RpcPolicy(Role.OPERATOR, True, lambda r: f"{r.model}:{r.version}"),
    "RollbackModel": RpcPolicy(Role.OPERATOR, True, lambda r: f"{r.model}:{r.to_version}" if r.to_version else r.model),
    "GetDeployment": RpcPolicy(Role.VIEWER, False),
    "ListDeployments": RpcPolicy(Role.VIEWER, False),
    "WatchDeployment": RpcPolicy(Role.VIEWER, False),
    "PromoteDeployment": RpcPolicy(Role.OPERATOR, True, _id),
    "PauseDeployment": RpcPolicy(Role.OPERATOR, True, _id),
    "ResumeDeployment": RpcPolicy(Role.OPERATOR, True, _id),
    "AbortDeployment": RpcPolicy(Role.OPERATOR, True, _id),
    # data plane: heartbeats and metric reports arrive every few seconds from every instance; they
    # change no control-plane state an operator set, so only refusals are audited (audited=False).
    "GetTrafficSplit": RpcPolicy(Role.VIEWER, False),
    "WatchTrafficSplit": RpcPolicy(Role.VIEWER, False),
    "RegisterInstance": RpcPolicy(Role.OPERATOR, True, lambda r: f"{r.model}/{r.instance_id}"),
    "Heartbeat": RpcPolicy(Role.OPERATOR, False),
    "WatchAssignment": RpcPolicy(Role.VIEWER, False),
    # telemetry
    "ReportMetrics": RpcPolicy(Role.OPERATOR, False),
    # experiments
    "StartExperiment": RpcPolicy(Role.OPERATOR, True,
                                 lambda r: f"{r.model}:{r.control_version}-vs-{r.treatment_version}"),
    "GetExperiment": RpcPolicy(Role.VIEWER, False),
    "ListExperiments": RpcPolicy(Role.VIEWER, False),
    "StopExperiment": RpcPolicy(Role.OPERATOR, True, _id),
    # drift
    "GetDriftReport": RpcPolicy(Role.VIEWER, False),
    # alerts: acknowledging and silencing change what operators are told, so they are audited
    "ListAlerts": RpcPolicy(Role.VIEWER, False),
    "GetAlert": RpcPolicy(Role.VIEWER, False),
    "AcknowledgeAlert": RpcPolicy(Role.OPERATOR, True, _id),
    "StreamAlerts": RpcPolicy(Role.VIEWER, False),
    "CreateSilence": RpcPolicy(Role.OPERATOR, True, _silence_target),
    "ListSilences": RpcPolicy(Role.VIEWER, False),
    "ExpireSilence": RpcPolicy(Role.OPERATOR, True, _id),
    # It sends messages to any URL the caller names: admins only.
    "TestNotifications": RpcPolicy(Role.ADMIN, True),
    # pipelines: a pipeline service holds an operator token; reports and stream opens are frequent and
    # change nothing an operator set, so only refusals of them are audited
    "RegisterPipeline": RpcPolicy(Role.OPERATOR, True, lambda r: r.name),
    "ReportPipelineStatus": RpcPolicy(Role.OPERATOR, False),
    "ListPipelines": RpcPolicy(Role.VIEWER, False),
    "GetPipeline": RpcPolicy(Role.VIEWER, False),
    "SendPipelineCommand": RpcPolicy(Role.OPERATOR, True, lambda r: f"{r.pipeline}:{r.kind}"
                                     + (f":{r.model}" if r.model else "")),
    "WatchPipelineCommands": RpcPolicy(Role.OPERATOR, False),
    "UpdatePipelineCommand": RpcPolicy(Role.OPERATOR, True, lambda r: f"{r.id}:{r.state}"),
    "GetPipelineCommand": RpcPolicy(Role.VIEWER, False),
    "CancelPipelineCommand": RpcPolicy(Role.OPERATOR, True, _id),
    "ListPipelineCommands": RpcPolicy(Role.VIEWER, False),
    # system
    "GetSystemStatus": RpcPolicy(Role.VIEWER, False),
    "RestartSystem": RpcPolicy(Role.ADMIN, True, lambda r: r.reason),
    "ListAuditEvents": RpcPolicy(Role.VIEWER, False),
    "CreateToken": RpcPolicy(Role.ADMIN, True, lambda r: f"{r.name} ({_role_name(r.role)})"),
    "RevokeToken": RpcPolicy(Role.ADMIN, True, _id),
    # Names, roles and creators of every credential: for admins only, though it reads.
    "ListTokens": RpcPolicy(Role.ADMIN, False),
}
