"""The hot path's in-memory caches never serve what a committed write made stale (issue 9).

Each cache is warmed first (so the next read would come from memory), then a write goes through
the API, and the very next read must see it: a revoked token is refused, a new token works, a
registered version is listed, a deployment's split is served. On SQLite and on PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import grpc
import pytest

from modelctl.v1 import deployment_pb2, registry_pb2, system_pb2
from modelctl_server.cache import InvalidatedCache
from modelctl_server.store.db import Database

from conftest import make_settings
from grpc_helpers import stub


def _server(server_factory, tmp_path: Path, database_url: str):  # type: ignore[no-untyped-def]
    return server_factory(make_settings(tmp_path / "data", MODELCTL_DATABASE_URL=database_url))


def test_a_revoked_token_is_refused_by_the_next_call(server_factory, tmp_path: Path, database_url: str) -> None:  # type: ignore[no-untyped-def]
    srv = _server(server_factory, tmp_path, database_url)
    admin = stub(srv.address, srv.admin_token)
    created = admin.CreateToken(system_pb2.CreateTokenRequest(name="pipeline", role=system_pb2.ROLE_VIEWER))
    viewer = stub(srv.address, created.token)
    # Created, then at once usable; and now cached: the next checks are answered from memory.
    viewer.ListModels(registry_pb2.ListModelsRequest())
    viewer.ListModels(registry_pb2.ListModelsRequest())
    assert srv.app.tokens.cache.hits >= 1
    admin.RevokeToken(system_pb2.RevokeTokenRequest(id=created.id))
    with pytest.raises(grpc.RpcError) as refused:
        viewer.ListModels(registry_pb2.ListModelsRequest())
    assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert "revoked" in (refused.value.details() or "")


def test_registry_and_traffic_reads_see_the_last_write(server_factory, tmp_path: Path, database_url: str) -> None:  # type: ignore[no-untyped-def]
    srv = _server(server_factory, tmp_path, database_url)
    api = stub(srv.address, srv.admin_token)
    api.RegisterModel(registry_pb2.RegisterModelRequest(name="fraud", version="1", artifact_uri="s3://m/1"))
    for _ in range(2):  # the second read is served from the cache
        assert [v.version for v in api.GetModel(registry_pb2.GetModelRequest(name="fraud")).versions] == ["1"]
        assert dict(api.GetTrafficSplit(deployment_pb2.GetTrafficSplitRequest(model="fraud")).weights) == {}
    hits = srv.app.services.reads.hits
    assert hits >= 2

    api.RegisterModel(registry_pb2.RegisterModelRequest(name="fraud", version="2", artifact_uri="s3://m/2"))
    assert sorted(v.version for v in api.GetModel(registry_pb2.GetModelRequest(name="fraud")).versions) == ["1", "2"]

    api.DeployModel(deployment_pb2.DeployModelRequest(model="fraud", version="1",
                                                      strategy=deployment_pb2.DEPLOYMENT_STRATEGY_IMMEDIATE))
    # The deploy answered once its first step (v1 at 100 %) committed, or the reconciler takes it at
    # once; either way no read after that commit may still show the empty split.
    srv.call(srv.app.reconciler.tick())
    assert dict(api.GetTrafficSplit(deployment_pb2.GetTrafficSplitRequest(model="fraud")).weights) == {"1": 100.0}
    assert api.GetModel(registry_pb2.GetModelRequest(name="fraud")).traffic == {"1": 100.0}

    api.ArchiveModelVersion(registry_pb2.ArchiveModelVersionRequest(name="fraud", version="2"))
    assert [v.version for v in api.GetModel(registry_pb2.GetModelRequest(name="fraud")).versions] == ["1"]
    every = api.GetModel(registry_pb2.GetModelRequest(name="fraud", include_archived=True)).versions
    assert {v.version: v.state for v in every}["2"] == registry_pb2.MODEL_VERSION_STATE_ARCHIVED


def test_an_unchanged_heartbeat_is_kept_in_memory_and_a_change_is_written_at_once(server_factory, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                                                   database_url: str) -> None:
    srv = _server(server_factory, tmp_path, database_url)
    api = stub(srv.address, srv.admin_token)
    api.RegisterModel(registry_pb2.RegisterModelRequest(name="fraud", version="1", artifact_uri="s3://m/1"))
    api.RegisterInstance(deployment_pb2.RegisterInstanceRequest(model="fraud", instance_id="a", address="x:1"))
    beat = deployment_pb2.HeartbeatRequest(model="fraud", instance_id="a", loaded_version="1", healthy=True)
    api.Heartbeat(beat)  # a change (nothing loaded before): written
    stored = srv.app.instances.get("fraud", "a")
    assert (stored.loaded_version, stored.healthy) == ("1", True)
    api.Heartbeat(beat)  # no change: memory only, flushed later
    assert srv.app.liveness.pending() == 1
    srv.app.liveness.flush()
    assert srv.app.instances.get("fraud", "a").last_heartbeat_at >= stored.last_heartbeat_at
    # A change of health is durable before the answer, even right after memory-only beats.
    api.Heartbeat(deployment_pb2.HeartbeatRequest(model="fraud", instance_id="a", loaded_version="1", healthy=False))
    assert srv.app.instances.get("fraud", "a").healthy is False


def test_a_read_racing_a_write_is_not_cached(tmp_path: Path) -> None:
    """The generation is taken before the read: a write committing during the read wins."""
    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    db.migrate()
    cache: InvalidatedCache[str, str] = InvalidatedCache("test", ["tokens"])
    db.changes.listen(cache.on_commit)
    generation = cache.generation
    from modelctl_server.store.tables import TokenRow

    def write() -> None:
        with db.session() as s:
            s.add(TokenRow(id="t1", name="n", role="viewer", token_hash="h",
                           created_at=dt.datetime.now(dt.timezone.utc), created_by=""))
    thread = threading.Thread(target=write)
    thread.start()
    thread.join()
    cache.put("key", "read before the write", generation)
    assert cache.get("key") is None
    # A transaction that rolls back announces nothing; one touching other tables does not invalidate.
    before = cache.invalidations
    with pytest.raises(RuntimeError), db.session() as s:
        s.add(TokenRow(id="t2", name="n", role="viewer", token_hash="h2", created_at=dt.datetime.now(dt.timezone.utc),
                       created_by=""))
        s.flush()
        raise RuntimeError("rolled back")
    assert cache.invalidations == before
    db.dispose()
