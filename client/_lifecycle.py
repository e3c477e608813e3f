"""Model lifecycle calls: upload, register, list, get, archive.

The request builders are shared; `LifecycleCalls` (sync) and
`AsyncLifecycleCalls` hold the same methods with the same signatures, side by
side so that they cannot drift apart.
"""

from __future__ import annotations

import asyncio
from typing import AsyncIterator, Iterator, Mapping

from modelctl.v1 import registry_pb2 as _registry

from ._artifacts import DEFAULT_CHUNK_SIZE, ArtifactSource, PreparedArtifact, ProgressCallback, is_uri
from ._calls import AsyncCaller, SyncCaller
from .errors import ModelctlError


def register_request(name: str, version: str, artifact_uri: str, *, sha256: str = "", framework: str = "",
                     metrics: Mapping[str, float] | None = None, tags: Mapping[str, str] | None = None,
                     description: str = "") -> _registry.RegisterModelRequest:
    return _registry.RegisterModelRequest(
        name=name, version=version, artifact_uri=artifact_uri, sha256=sha256, framework=framework,
        metrics=dict(metrics or {}), tags=dict(tags or {}), description=description)


def list_models_request(*, name_prefix: str = "", tags: Mapping[str, str] | None = None,
                        include_archived: bool = False, page_size: int = 0,
                        page_token: str = "") -> _registry.ListModelsRequest:
    return _registry.ListModelsRequest(page_size=page_size, page_token=page_token, name_prefix=name_prefix,
                                       tags=dict(tags or {}), include_archived=include_archived)


class LifecycleCalls(SyncCaller):
    def upload_artifact(self, source: ArtifactSource, *, filename: str | None = None, sha256: str | None = None,
                        chunk_size: int = DEFAULT_CHUNK_SIZE, progress: ProgressCallback | None = None,
                        timeout: float | None = None) -> _registry.UploadArtifactResponse:
        """Stream a local file (path or binary file object) to the controller's artifact store.

        `register_model` calls this for a local artifact; call it yourself to upload once and
        register the returned `artifact_uri` several times. `progress(sent, total)` runs after
        each chunk (on gRPC's sending thread). `timeout` defaults to none at all, whatever the
        client's default: a large upload takes as long as it takes.
        """
        with PreparedArtifact(source, filename=filename, sha256=sha256, chunk_size=chunk_size) as artifact:
            try:
                return self._call(self._stub.UploadArtifact, artifact.requests(progress), timeout,
                                  default_deadline=False)
            except ModelctlError as error:
                artifact.raise_failure_of(error)
                raise

    def register_model(self, name: str, version: str, artifact: ArtifactSource, *, sha256: str = "",
                       framework: str = "", metrics: Mapping[str, float] | None = None,
                       tags: Mapping[str, str] | None = None, description: str = "",
                       progress: ProgressCallback | None = None,
                       timeout: float | None = None) -> _registry.RegisterModelResponse:
        """Register an immutable version; `.model_version` is it, `.archived` what retention retired.

        `artifact` is a URI (s3://, gs://, file://, https://, or one `upload_artifact` returned),
        recorded as is, or a local path or binary file object, uploaded first (see `upload_artifact`).
        """
        if is_uri(artifact):
            artifact_uri = str(artifact)
        else:
            upload = self.upload_artifact(artifact, sha256=sha256 or None, progress=progress)
            artifact_uri, sha256 = upload.artifact_uri, upload.sha256
        request = register_request(name, version, artifact_uri, sha256=sha256, framework=framework,
                                   metrics=metrics, tags=tags, description=description)
        return self._call(self._stub.RegisterModel, request, timeout)

    def list_models(self, *, name_prefix: str = "", tags: Mapping[str, str] | None = None,
                    include_archived: bool = False, page_size: int = 0, page_token: str = "",
                    timeout: float | None = None) -> _registry.ListModelsResponse:
        """One page of models; `next_page_token` is empty on the last one. See `iter_models`."""
        request = list_models_request(name_prefix=name_prefix, tags=tags, include_archived=include_archived,
                                      page_size=page_size, page_token=page_token)
        return self._call(self._stub.ListModels, request, timeout)

    def iter_models(self, *, name_prefix: str = "", tags: Mapping[str, str] | None = None,
                    include_archived: bool = False, page_size: int = 0,
                    timeout: float | None = None) -> Iterator[_registry.Model]:
        """Every matching model, fetching pages as the iteration reaches them."""
        return self._pages(
            lambda token: self.list_models(name_prefix=name_prefix, tags=tags, include_archived=include_archived,
                                           page_size=page_size, page_token=token, timeout=timeout),
            lambda page: page.models)

    def get_model(self, name: str, *, include_archived: bool = False,
                  timeout: float | None = None) -> _registry.Model:
        request = _registry.GetModelRequest(name=name, include_archived=include_archived)
        return self._call(self._stub.GetModel, request, timeout)

    def archive_version(self, name: str, version: str, *, timeout: float | None = None) -> _registry.ModelVersion:
        request = _registry.ArchiveModelVersionRequest(name=name, version=version)
        return self._call(self._stub.ArchiveModelVersion, request, timeout)


class AsyncLifecycleCalls(AsyncCaller):
    async def upload_artifact(self, source: ArtifactSource, *, filename: str | None = None,
                              sha256: str | None = None, chunk_size: int = DEFAULT_CHUNK_SIZE,
                              progress: ProgressCallback | None = None,
                              timeout: float | None = None) -> _registry.UploadArtifactResponse:
        """As `Client.upload_artifact`; hashing and file reads run in a thread, off the event loop."""
        artifact = await asyncio.to_thread(PreparedArtifact, source, filename=filename, sha256=sha256,
                                           chunk_size=chunk_size)
        try:
            return await self._call(self._stub.UploadArtifact, _async_requests(artifact, progress), timeout,
                                    default_deadline=False)
        except ModelctlError as error:
            artifact.raise_failure_of(error)
            raise
        finally:
            artifact.close()

    async def register_model(self, name: str, version: str, artifact: ArtifactSource, *, sha256: str = "",
                             framework: str = "", metrics: Mapping[str, float] | None = None,
                             tags: Mapping[str, str] | None = None, description: str = "",
                             progress: ProgressCallback | None = None,
                             timeout: float | None = None) -> _registry.RegisterModelResponse:
        if is_uri(artifact):
            artifact_uri = str(artifact)
        else:
            upload = await self.upload_artifact(artifact, sha256=sha256 or None, progress=progress)
            artifact_uri, sha256 = upload.artifact_uri, upload.sha256
        request = register_request(name, version, artifact_uri, sha256=sha256, framework=framework,
                                   metrics=metrics, tags=tags, description=description)
        return await self._call(self._stub.RegisterModel, request, timeout)

    async def list_models(self, *, name_prefix: str = "", tags: Mapping[str, str] | None = None,
                          include_archived: bool = False, page_size: int = 0, page_token: str = "",
                          timeout: float | None = None) -> _registry.ListModelsResponse:
        request = list_models_request(name_prefix=name_prefix, tags=tags, include_archived=include_archived,
                                      page_size=page_size, page_token=page_token)
        return await self._call(self._stub.ListModels, request, timeout)

    def iter_models(self, *, name_prefix: str = "", tags: Mapping[str, str] | None = None,
                    include_archived: bool = False, page_size: int = 0,
                    timeout: float | None = None) -> AsyncIterator[_registry.Model]:
        """Every matching model: `async for model in client.iter_models(): ...`."""
        return self._pages(
            lambda token: self.list_models(name_prefix=name_prefix, tags=tags, include_archived=include_archived,
                                           page_size=page_size, page_token=token, timeout=timeout),
            lambda page: page.models)

    async def get_model(self, name: str, *, include_archived: bool = False,
                        timeout: float | None = None) -> _registry.Model:
        request = _registry.GetModelRequest(name=name, include_archived=include_archived)
        return await self._call(self._stub.GetModel, request, timeout)

    async def archive_version(self, name: str, version: str, *,
                              timeout: float | None = None) -> _registry.ModelVersion:
        request = _registry.ArchiveModelVersionRequest(name=name, version=version)
        return await self._call(self._stub.ArchiveModelVersion, request, timeout)


async def _async_requests(artifact: PreparedArtifact,
                          progress: ProgressCallback | None) -> AsyncIterator[_registry.UploadArtifactRequest]:
    try:
        yield artifact.header()
        sent = 0
        while chunk := await asyncio.to_thread(artifact.read_chunk):
            yield _registry.UploadArtifactRequest(chunk=chunk)
            sent += len(chunk)
            if progress is not None:
                progress(sent, artifact.size)
    except Exception as exc:
        artifact.failure = exc  # see PreparedArtifact.requests: gRPC would hide it
        raise

