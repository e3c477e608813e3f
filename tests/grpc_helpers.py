"""Raw-stub helpers for server tests (the SDK has its own tests)."""

from __future__ import annotations

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from modelctl.v1 import controller_pb2_grpc


def stub(address: str, token: str | None = None) -> controller_pb2_grpc.ModelControllerStub:
    channel = grpc.insecure_channel(address)
    if token is None:
        return controller_pb2_grpc.ModelControllerStub(channel)
    intercepted = grpc.intercept_channel(channel, _TokenInterceptor(token))
    return controller_pb2_grpc.ModelControllerStub(intercepted)


class _TokenInterceptor(grpc.UnaryUnaryClientInterceptor, grpc.StreamUnaryClientInterceptor,
                        grpc.UnaryStreamClientInterceptor):
    def __init__(self, token: str) -> None:
        self._md = ("authorization", f"Bearer {token}")

    def _details(self, d):  # type: ignore[no-untyped-def]
        return d._replace(metadata=list(d.metadata or []) + [self._md])

    def intercept_unary_unary(self, continuation, client_call_details, request):  # type: ignore[no-untyped-def]
        return continuation(self._details(client_call_details), request)

    def intercept_stream_unary(self, continuation, client_call_details, request_iterator):  # type: ignore[no-untyped-def]
        return continuation(self._details(client_call_details), request_iterator)

    def intercept_unary_stream(self, continuation, client_call_details, request):  # type: ignore[no-untyped-def]
        return continuation(self._details(client_call_details), request)


def bad_fields(error: grpc.RpcError) -> list[str]:
    """The fields named by the google.rpc.BadRequest detail of an error."""
    status = rpc_status.from_call(error)
    fields: list[str] = []
    for detail in status.details if status else []:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            br = error_details_pb2.BadRequest()
            detail.Unpack(br)
            fields += [v.field for v in br.field_violations]
    return fields
