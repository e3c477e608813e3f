"""Registry wire <-> domain."""

from __future__ import annotations

from modelctl.v1 import registry_pb2 as _pb

from ..registry.service import ARCHIVED, READY, Model, ModelVersion, NewVersion
from ._time import ts

_STATES = {READY: _pb.MODEL_VERSION_STATE_READY, ARCHIVED: _pb.MODEL_VERSION_STATE_ARCHIVED}


def new_version_from_proto(r: _pb.RegisterModelRequest) -> NewVersion:
    return NewVersion(name=r.name, version=r.version, artifact_uri=r.artifact_uri, sha256=r.sha256.lower(),
                      framework=r.framework, metrics=dict(r.metrics), tags=dict(r.tags), description=r.description)


def version_to_proto(v: ModelVersion) -> _pb.ModelVersion:
    return _pb.ModelVersion(name=v.name, version=v.version, artifact_uri=v.artifact_uri, sha256=v.sha256,
                            state=_STATES[v.state], created_at=ts(v.created_at), framework=v.framework,
                            metrics=v.metrics, tags=v.tags, description=v.description, created_by=v.created_by,
                            size_bytes=v.size_bytes, archived_at=ts(v.archived_at))


def model_to_proto(m: Model) -> _pb.Model:
    return _pb.Model(name=m.name, versions=[version_to_proto(v) for v in m.versions], live_version=m.live_version,
                     traffic=m.traffic, previous_version=m.previous_version, created_at=ts(m.created_at))
