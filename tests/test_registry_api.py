"""The lifecycle RPCs over real gRPC: every validation rule, uploads, listing, archiving, retention."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterator

import grpc
import pytest

from modelctl.v1 import registry_pb2 as pb

from grpc_helpers import bad_fields, stub


@pytest.fixture
def api(live_server):  # type: ignore[no-untyped-def]
    return stub(live_server.address, live_server.admin_token)


def register(api, name="fraud", version="1.0.0", uri="s3://models/fraud/1.pkl", **kw):  # type: ignore[no-untyped-def]
    return api.RegisterModel(pb.RegisterModelRequest(name=name, version=version, artifact_uri=uri, **kw))


def upload_chunks(data: bytes, sha256: str | None = None, chunk: int = 1000,
                  filename: str = "model.bin") -> Iterator[pb.UploadArtifactRequest]:
    yield pb.UploadArtifactRequest(header=pb.ArtifactHeader(
        filename=filename, sha256=sha256 if sha256 is not None else hashlib.sha256(data).hexdigest(),
        size_bytes=len(data)))
    for i in range(0, len(data), chunk):
        yield pb.UploadArtifactRequest(chunk=data[i:i + chunk])


def expect_invalid(call, *fields: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.RpcError) as err:
        call()
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
    assert set(fields) <= set(bad_fields(err.value)), (fields, bad_fields(err.value), err.value.details())


# --- registration ------------------------------------------------------------------------------------------


def test_register_records_metadata_and_creator(api):  # type: ignore[no-untyped-def]
    resp = register(api, framework="sklearn", metrics={"auc": 0.91}, tags={"team": "risk"}, description="first",
                    sha256="a" * 64)
    v = resp.model_version
    assert (v.name, v.version, v.artifact_uri, v.sha256) == ("fraud", "1.0.0", "s3://models/fraud/1.pkl", "a" * 64)
    assert v.state == pb.MODEL_VERSION_STATE_READY
    assert v.framework == "sklearn" and dict(v.metrics) == {"auc": 0.91} and dict(v.tags) == {"team": "risk"}
    assert v.created_by == "bootstrap-admin"
    assert v.created_at.seconds > 0


@pytest.mark.parametrize("uri", ["s3://b/k", "gs://b/k", "file:///srv/models/m.onnx", "https://example.com/m.pt"])
def test_accepted_uri_schemes(api, uri):  # type: ignore[no-untyped-def]
    assert register(api, uri=uri).model_version.artifact_uri == uri


def test_repeat_version_is_already_exists(api):  # type: ignore[no-untyped-def]
    register(api)
    with pytest.raises(grpc.RpcError) as err:
        register(api, uri="s3://other/place")
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert "1.0.0" in err.value.details()


@pytest.mark.parametrize("name", ["", "Fraud", "fraud detector", "a" * 129, "fraud/x", "früd"])
def test_invalid_names(api, name):  # type: ignore[no-untyped-def]
    expect_invalid(lambda: register(api, name=name), "name")


def test_name_edges_are_valid(api):  # type: ignore[no-untyped-def]
    for name in ("a", "a" * 128, "fraud-detector_v2.x"):
        register(api, name=name)


@pytest.mark.parametrize("version", ["", "1 0", "v/1", "x" * 129])
def test_invalid_versions(api, version):  # type: ignore[no-untyped-def]
    expect_invalid(lambda: register(api, version=version), "version")


@pytest.mark.parametrize("uri", ["", "ftp://host/x", "http://insecure/x", "s3://", "file://relative/x", "nonsense"])
def test_invalid_uris(api, uri):  # type: ignore[no-untyped-def]
    expect_invalid(lambda: register(api, uri=uri), "artifact_uri")


@pytest.mark.parametrize("sha", ["abc", "A" * 64, "g" * 64])
def test_invalid_sha256(api, sha):  # type: ignore[no-untyped-def]
    # Upper-case is normalised by the server, so "A"*64 is fine; the others are not hex of the right length.
    if sha == "A" * 64:
        assert register(api, sha256=sha).model_version.sha256 == "a" * 64
    else:
        expect_invalid(lambda: register(api, sha256=sha), "sha256")


def test_invalid_metadata_names_each_field(api):  # type: ignore[no-untyped-def]
    expect_invalid(lambda: register(api, framework="f" * 65, description="d" * 4097,
                                    metrics={"bad key": 1.0, "nan": float("nan")}, tags={"ok": "v" * 257}),
                   "framework", "description", "metrics[bad key]", "metrics[nan]", "tags[ok]")


def test_every_bad_field_is_reported_at_once(api):  # type: ignore[no-untyped-def]
    expect_invalid(lambda: register(api, name="BAD", version="", uri="ftp://x"), "name", "version", "artifact_uri")


# --- uploads -----------------------------------------------------------------------------------------------


def test_upload_then_register_uses_content_address(api, live_server):  # type: ignore[no-untyped-def]
    data = b"weights" * 5000
    digest = hashlib.sha256(data).hexdigest()
    up = api.UploadArtifact(upload_chunks(data))
    assert up.sha256 == digest and up.size_bytes == len(data)
    stored = Path(up.artifact_uri.removeprefix("file://"))
    assert stored.read_bytes() == data and stored.name == digest
    v = register(api, uri=up.artifact_uri).model_version
    assert v.sha256 == digest and v.size_bytes == len(data)
    # Identical bytes are stored once.
    assert api.UploadArtifact(upload_chunks(data)).artifact_uri == up.artifact_uri


def test_upload_sha_mismatch_is_invalid_and_leaves_nothing(api, live_server):  # type: ignore[no-untyped-def]
    data = b"x" * 10_000
    expect_invalid(lambda: api.UploadArtifact(upload_chunks(data, sha256="0" * 64)), "header.sha256")
    models_dir = live_server.data_dir / "models"
    leftovers = [p for p in models_dir.rglob("*") if p.is_file()]
    assert leftovers == []


def test_upload_size_mismatch_is_invalid(api):  # type: ignore[no-untyped-def]
    data = b"abc"

    def chunks():  # type: ignore[no-untyped-def]
        yield pb.UploadArtifactRequest(header=pb.ArtifactHeader(sha256=hashlib.sha256(data).hexdigest(),
                                                                size_bytes=99))
        yield pb.UploadArtifactRequest(chunk=data)
    expect_invalid(lambda: api.UploadArtifact(chunks()), "header.size_bytes")


def test_upload_needs_header_first_and_a_sha(api):  # type: ignore[no-untyped-def]
    expect_invalid(lambda: api.UploadArtifact(iter([pb.UploadArtifactRequest(chunk=b"x")])), "header")
    expect_invalid(lambda: api.UploadArtifact(iter([])), "header")
    expect_invalid(lambda: api.UploadArtifact(iter([pb.UploadArtifactRequest(header=pb.ArtifactHeader())])),
                   "header.sha256")


def test_register_with_wrong_sha_for_uploaded_artifact(api):  # type: ignore[no-untyped-def]
    up = api.UploadArtifact(upload_chunks(b"model"))
    expect_invalid(lambda: register(api, uri=up.artifact_uri, sha256="1" * 64), "sha256")


def test_register_unknown_managed_artifact(api, live_server):  # type: ignore[no-untyped-def]
    uri = (live_server.data_dir / "models" / "sha256" / "ab" / ("ab" * 32)).resolve().as_uri()
    expect_invalid(lambda: register(api, uri=uri), "artifact_uri")


# --- reading -----------------------------------------------------------------------------------------------


def test_get_model_lists_versions_newest_first(api):  # type: ignore[no-untyped-def]
    for v in ("1", "2", "3"):
        register(api, version=v)
    m = api.GetModel(pb.GetModelRequest(name="fraud"))
    assert m.name == "fraud" and [v.version for v in m.versions] == ["3", "2", "1"]
    assert m.live_version == "" and dict(m.traffic) == {}


def test_get_unknown_model_is_not_found(api):  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.RpcError) as err:
        api.GetModel(pb.GetModelRequest(name="nope"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND and "nope" in err.value.details()
    expect_invalid(lambda: api.GetModel(pb.GetModelRequest(name="NOPE")), "name")


def test_list_paginates_in_name_order(api):  # type: ignore[no-untyped-def]
    names = [f"m{i:02d}" for i in range(7)]
    for n in reversed(names):
        register(api, name=n)
    seen, token = [], ""
    while True:
        page = api.ListModels(pb.ListModelsRequest(page_size=3, page_token=token))
        assert len(page.models) <= 3
        seen += [m.name for m in page.models]
        token = page.next_page_token
        if not token:
            break
    assert seen == names


def test_list_filters_by_prefix_and_tags(api):  # type: ignore[no-untyped-def]
    register(api, name="fraud-a", tags={"team": "risk", "env": "prod"})
    register(api, name="fraud-b", tags={"team": "growth"})
    register(api, name="churn", tags={"team": "risk"})
    names = lambda **kw: [m.name for m in api.ListModels(pb.ListModelsRequest(**kw)).models]  # noqa: E731
    assert names(name_prefix="fraud") == ["fraud-a", "fraud-b"]
    assert names(tags={"team": "risk"}) == ["churn", "fraud-a"]
    assert names(tags={"team": "risk", "env": "prod"}) == ["fraud-a"]
    assert names(name_prefix="fraud", tags={"team": "growth"}) == ["fraud-b"]
    assert names(name_prefix="zzz") == []


def test_list_validation(api):  # type: ignore[no-untyped-def]
    expect_invalid(lambda: api.ListModels(pb.ListModelsRequest(page_size=5000)), "page_size")
    expect_invalid(lambda: api.ListModels(pb.ListModelsRequest(page_size=-1)), "page_size")
    expect_invalid(lambda: api.ListModels(pb.ListModelsRequest(page_token="garbage!")), "page_token")
    expect_invalid(lambda: api.ListModels(pb.ListModelsRequest(name_prefix="x" * 129)), "name_prefix")


# --- archiving and retention --------------------------------------------------------------------------------


def test_archive_hides_version_and_refuses_twice(api):  # type: ignore[no-untyped-def]
    register(api, version="1")
    register(api, version="2")
    v = api.ArchiveModelVersion(pb.ArchiveModelVersionRequest(name="fraud", version="1"))
    assert v.state == pb.MODEL_VERSION_STATE_ARCHIVED and v.archived_at.seconds > 0
    assert [x.version for x in api.GetModel(pb.GetModelRequest(name="fraud")).versions] == ["2"]
    full = api.GetModel(pb.GetModelRequest(name="fraud", include_archived=True))
    assert [x.version for x in full.versions] == ["2", "1"]
    with pytest.raises(grpc.RpcError) as err:
        api.ArchiveModelVersion(pb.ArchiveModelVersionRequest(name="fraud", version="1"))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.RpcError) as err:
        api.ArchiveModelVersion(pb.ArchiveModelVersionRequest(name="fraud", version="9"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    expect_invalid(lambda: api.ArchiveModelVersion(pb.ArchiveModelVersionRequest(name="", version="")),
                   "name", "version")


def _set_live(live_server, name: str, live: str, previous: str | None) -> None:  # type: ignore[no-untyped-def]
    # Deployments set these; the registry only has to respect them.
    from sqlalchemy import update

    from modelctl_server.store.tables import ModelRow

    with live_server.app.db.session() as s:
        s.execute(update(ModelRow).where(ModelRow.name == name).values(live_version=live, previous_version=previous))


def test_live_and_rollback_target_cannot_be_archived(api, live_server):  # type: ignore[no-untyped-def]
    for v in ("1", "2", "3"):
        register(api, version=v)
    _set_live(live_server, "fraud", "2", "1")
    for v in ("1", "2"):
        with pytest.raises(grpc.RpcError) as err:
            api.ArchiveModelVersion(pb.ArchiveModelVersionRequest(name="fraud", version=v))
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert api.GetModel(pb.GetModelRequest(name="fraud")).live_version == "2"


def test_retention_archives_oldest_unused_versions(server_factory):  # type: ignore[no-untyped-def]
    srv = server_factory(MODELCTL_REGISTRY_MAX_VERSIONS="3")
    api = stub(srv.address, srv.admin_token)
    for v in ("1", "2", "3"):
        register(api, version=v)
    _set_live(srv, "fraud", "2", "1")
    resp = register(api, version="4")
    # 1 and 2 are protected (previous and live), so 3 goes even though it is newer.
    assert [v.version for v in resp.archived] == ["3"]
    resp = register(api, version="5")
    assert [v.version for v in resp.archived] == ["4"]
    current = [v.version for v in api.GetModel(pb.GetModelRequest(name="fraud")).versions]
    assert current == ["5", "2", "1"]


def test_uploads_beyond_the_size_limit_are_refused_and_leave_nothing(server_factory) -> None:  # type: ignore[no-untyped-def]
    srv = server_factory(MODELCTL_REGISTRY_MAX_ARTIFACT_BYTES="5000")
    api = stub(srv.address, srv.admin_token)
    data = b"z" * 6000
    for declared in (len(data), 0):  # declared too big up front, or found out while streaming
        def chunks():  # type: ignore[no-untyped-def]
            yield pb.UploadArtifactRequest(header=pb.ArtifactHeader(sha256=hashlib.sha256(data).hexdigest(),
                                                                    size_bytes=declared))
            for i in range(0, len(data), 1000):
                yield pb.UploadArtifactRequest(chunk=data[i:i + 1000])
        with pytest.raises(grpc.RpcError) as err:
            api.UploadArtifact(chunks())
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "max_artifact_bytes" in err.value.details()
    assert [p for p in (srv.data_dir / "models").rglob("*") if p.is_file()] == []
    assert api.UploadArtifact(upload_chunks(b"small")).size_bytes == 5


def test_unregistered_uploads_are_swept_after_the_grace(server_factory) -> None:  # type: ignore[no-untyped-def]
    import datetime as dt

    from modelctl_server.clock import FakeClock

    clock = FakeClock(dt.datetime.now(dt.timezone.utc))
    srv = server_factory(clock=clock, MODELCTL_REGISTRY_ORPHAN_GRACE="1h")
    api = stub(srv.address, srv.admin_token)
    kept = api.UploadArtifact(upload_chunks(b"registered"))
    register(api, uri=kept.artifact_uri)
    orphan = api.UploadArtifact(upload_chunks(b"never registered"))
    archived = api.UploadArtifact(upload_chunks(b"registered, then archived"))
    register(api, version="2.0.0", uri=archived.artifact_uri)
    api.ArchiveModelVersion(pb.ArchiveModelVersionRequest(name="fraud", version="2.0.0"))

    path = lambda uri: Path(uri.removeprefix("file://"))  # noqa: E731
    assert srv.app.sweeper.sweep() == 0  # younger than the grace: it may still be registered

    async def advance() -> None:
        # On the server's loop, where the clock's sleepers live. Two hours, not grace + 1 s: the files'
        # mtimes are real time, taken after the fake clock started, and a loaded machine can spend more
        # than a second starting the server and uploading (the orphan was then not old enough yet).
        clock.advance(2 * 3600)
    srv.call(advance())  # this also wakes the sweeper's own hourly tick, which may get there first
    srv.app.sweeper.sweep()
    assert not path(orphan.artifact_uri).exists()
    assert path(kept.artifact_uri).exists() and path(archived.artifact_uri).exists()
