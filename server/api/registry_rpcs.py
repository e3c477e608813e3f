"""Lifecycle RPCs: register, upload, list, get, archive."""

from __future__ import annotations

from typing import AsyncIterator

import grpc

from modelctl.v1 import registry_pb2 as _pb

from ..errors import FieldViolation, ResourceExhaustedError, ValidationError, Violations
from ..registry import validation
from ..registry.artifacts import Upload
from .context import caller, set_audit_target
from .registry_convert import model_to_proto, new_version_from_proto, version_to_proto
from .services import Services


class RegistryRpcs:
    services: Services

    async def RegisterModel(self, request: _pb.RegisterModelRequest, context: grpc.aio.ServicerContext):
        result = await self.services.run(self.services.registry.register, new_version_from_proto(request),
                                         created_by=caller().name)
        return _pb.RegisterModelResponse(model_version=version_to_proto(result.version),
                                         archived=[version_to_proto(v) for v in result.archived])

    async def UploadArtifact(self, request_iterator: AsyncIterator[_pb.UploadArtifactRequest],
                             context: grpc.aio.ServicerContext):
        run = self.services.run
        first = await anext(aiter(request_iterator), None)
        if first is None or first.WhichOneof("part") != "header":
            raise ValidationError(FieldViolation("header", "the first message of an upload must be its header"))
        header = first.header
        problems = Violations()
        if not header.sha256:
            problems.add("header.sha256", "is required: the sha256 of the file, so the server can verify it")
        validation.check_sha256(header.sha256.lower(), problems, field="header.sha256")
        if header.size_bytes < 0:
            problems.add("header.size_bytes", "must not be negative")
        problems.raise_if_any()
        limit = self.services.settings.registry.max_artifact_bytes
        if header.size_bytes > limit:
            raise ResourceExhaustedError(f"the artifact is {header.size_bytes} bytes; this server accepts at most "
                                         f"{limit} (registry.max_artifact_bytes)")
        upload: Upload = await run(self.services.registry.artifacts.start_upload)
        try:
            async for message in request_iterator:
                if message.WhichOneof("part") != "chunk":
                    raise ValidationError(FieldViolation("header", "only the first message may be a header"))
                if upload.size + len(message.chunk) > limit:
                    raise ResourceExhaustedError(f"the artifact exceeds {limit} bytes (registry.max_artifact_bytes); "
                                                 "nothing was stored")
                await run(upload.write, message.chunk)
            stored = await run(upload.commit, header.sha256.lower(), header.size_bytes)
        except BaseException:
            upload.abort()  # a cancelled or failed upload leaves nothing behind
            raise
        set_audit_target(f"{header.filename or 'artifact'} sha256:{stored.sha256}")
        return _pb.UploadArtifactResponse(artifact_uri=stored.uri, sha256=stored.sha256,
                                          size_bytes=stored.size_bytes)

    async def ListModels(self, request: _pb.ListModelsRequest, context: grpc.aio.ServicerContext):
        registry = self.services.registry

        def page() -> _pb.ListModelsResponse:
            # Built on the worker thread: a page of 100 models with their versions is thousands of
            # messages, and converting them on the event loop would stall every other call.
            found = registry.list(page_size=request.page_size, page_token=request.page_token,
                                  name_prefix=request.name_prefix, tags=dict(request.tags),
                                  include_archived=request.include_archived)
            return _pb.ListModelsResponse(models=[model_to_proto(m) for m in found.models],
                                          next_page_token=found.next_page_token)
        return await self.services.run(page)

    async def GetModel(self, request: _pb.GetModelRequest, context: grpc.aio.ServicerContext):
        # Served from memory, on the event loop, until a write to the registry or traffic tables commits.
        key = ("GetModel", request.name, request.include_archived)
        reads = self.services.reads
        reply = reads.get(key)
        if reply is None:
            generation = reads.generation  # before the read: a write committing meanwhile wins
            model = await self.services.run(self.services.registry.get, request.name,
                                            include_archived=request.include_archived)
            reply = model_to_proto(model)
            reads.put(key, reply, generation)
        return reply

    async def ArchiveModelVersion(self, request: _pb.ArchiveModelVersionRequest, context: grpc.aio.ServicerContext):
        version = await self.services.run(self.services.registry.archive, request.name, request.version)
        return version_to_proto(version)
