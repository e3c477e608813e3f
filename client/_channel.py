"""Channel construction shared by the sync and the asyncio client.

Both get the same channel arguments (keepalive, message size, retry service
config) and the same credentials; only the channel class differs.

Keepalive: the client pings every 30 s on a connection with a call in flight
and never on an idle one, so long-lived streams (WatchDeployment, StreamAlerts)
notice a dead peer or a dropped NAT entry. The controller accepts pings as often
as every 10 s (`server.keepalive_min_ping_interval`); pinging more often than
the server allows makes it close the connection with ENHANCE_YOUR_CALM.
"""

from __future__ import annotations

import collections
import json
from pathlib import Path
from typing import Any, Callable, Sequence

import grpc
import grpc.aio

from ._options import ConnectionOptions, RetryPolicy

SERVICE = "modelctl.v1.ModelController"
#: Reads that are safe to repeat: the only calls the channel retries. A watch is retried only
#: until its first message arrives (gRPC commits a call then); later breaks are resumed by the
#: caller (`wait_for_deployment`, `TrafficRouter`).
IDEMPOTENT_READS = (
    "ListModels", "GetModel", "GetSystemStatus", "ListAuditEvents",
    "GetDeployment", "ListDeployments", "WatchDeployment", "GetTrafficSplit", "WatchTrafficSplit",
    "WatchAssignment",
)
#: Same limit as the server's `server.max_message_bytes`.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
KEEPALIVE_TIME_MS = 30_000
KEEPALIVE_TIMEOUT_MS = 10_000
#: gRPC waits between attempts to reconnect a lost connection up to 120 s by default; calls made
#: meanwhile fail at once. A watch (TrafficRouter, wait_for_deployment) should find a restarted
#: controller within seconds, so the wait is capped.
INITIAL_RECONNECT_BACKOFF_MS = 500
MAX_RECONNECT_BACKOFF_MS = 5_000
USER_AGENT = "modelctl-python"


def channel_arguments(options: ConnectionOptions) -> list[tuple[str, Any]]:
    args: list[tuple[str, Any]] = [
        ("grpc.keepalive_time_ms", KEEPALIVE_TIME_MS),
        ("grpc.keepalive_timeout_ms", KEEPALIVE_TIMEOUT_MS),
        ("grpc.keepalive_permit_without_calls", 0),
        # 0 = keep pinging however long a stream stays quiet (the default stops after two pings).
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.initial_reconnect_backoff_ms", INITIAL_RECONNECT_BACKOFF_MS),
        ("grpc.max_reconnect_backoff_ms", MAX_RECONNECT_BACKOFF_MS),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.primary_user_agent", USER_AGENT),
        # Our retry policy is the one that applies, not one a DNS TXT record might carry.
        ("grpc.service_config_disable_resolution", 1),
    ]
    if options.retry is not None:
        args.append(("grpc.service_config", json.dumps(_service_config(options.retry))))
    else:
        args.append(("grpc.enable_retries", 0))
    return args


def _service_config(retry: RetryPolicy) -> dict[str, Any]:
    return {"methodConfig": [{
        "name": [{"service": SERVICE, "method": method} for method in IDEMPOTENT_READS],
        "retryPolicy": {
            "maxAttempts": retry.max_attempts,
            "initialBackoff": f"{retry.initial_backoff}s",
            "maxBackoff": f"{retry.max_backoff}s",
            "backoffMultiplier": retry.backoff_multiplier,
            "retryableStatusCodes": ["UNAVAILABLE"],
        },
    }]}


def channel_credentials(options: ConnectionOptions) -> grpc.ChannelCredentials | None:
    """TLS credentials, or None for a plaintext channel."""
    if not options.uses_tls:
        return None
    return grpc.ssl_channel_credentials(
        root_certificates=_read(options.ca_cert),
        private_key=_read(options.client_key),
        certificate_chain=_read(options.client_cert),
    )


def _read(path: str | None) -> bytes | None:
    return Path(path).expanduser().read_bytes() if path else None


def create_channel(options: ConnectionOptions) -> grpc.Channel:
    credentials = channel_credentials(options)
    args = channel_arguments(options)
    if credentials is None:
        channel = grpc.insecure_channel(options.address, options=args)
    else:
        channel = grpc.secure_channel(options.address, credentials, options=args)
    if options.token:
        channel = grpc.intercept_channel(channel, _BearerToken(options.token))
    return channel


def create_aio_channel(options: ConnectionOptions) -> grpc.aio.Channel:
    credentials = channel_credentials(options)
    args = channel_arguments(options)
    interceptors = _aio_bearer_token(options.token) if options.token else None
    if credentials is None:
        return grpc.aio.insecure_channel(options.address, options=args, interceptors=interceptors)
    return grpc.aio.secure_channel(options.address, credentials, options=args, interceptors=interceptors)


# The token travels as metadata added by an interceptor rather than as call
# credentials: gRPC refuses call credentials on a plaintext channel, and a
# controller on localhost without TLS still wants its token.

def _with_token(metadata: Sequence[tuple[str, Any]] | None, header: str) -> list[tuple[str, Any]]:
    pairs = [(key, value) for key, value in (metadata or ()) if key != "authorization"]
    pairs.append(("authorization", header))
    return pairs


class _CallDetails(
        collections.namedtuple("_CallDetails", ("method", "timeout", "metadata", "credentials",
                                                "wait_for_ready", "compression")),
        grpc.ClientCallDetails):
    pass


class _BearerToken(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
                   grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    """Adds `authorization: Bearer <token>` to every call of a sync channel."""

    def __init__(self, token: str) -> None:
        self._header = f"Bearer {token}"

    def _details(self, details: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        return _CallDetails(details.method, details.timeout, _with_token(details.metadata, self._header),
                            details.credentials, getattr(details, "wait_for_ready", None),
                            getattr(details, "compression", None))

    def intercept_unary_unary(self, continuation: Callable[..., Any], details: grpc.ClientCallDetails,
                              request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation: Callable[..., Any], details: grpc.ClientCallDetails,
                               request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_stream_unary(self, continuation: Callable[..., Any], details: grpc.ClientCallDetails,
                               request_iterator: Any) -> Any:
        return continuation(self._details(details), request_iterator)

    def intercept_stream_stream(self, continuation: Callable[..., Any], details: grpc.ClientCallDetails,
                                request_iterator: Any) -> Any:
        return continuation(self._details(details), request_iterator)


# grpc.aio files each interceptor under the first call kind it implements, so
# the async side needs one small class per kind.

class _AioToken:
    def __init__(self, token: str) -> None:
        self._header = f"Bearer {token}"

    def _details(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        metadata = grpc.aio.Metadata(*_with_token(details.metadata, self._header))
        return grpc.aio.ClientCallDetails(details.method, details.timeout, metadata, details.credentials,
                                          details.wait_for_ready)


class _AioUnaryUnary(_AioToken, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation, details, request):  # type: ignore[no-untyped-def]
        return await continuation(self._details(details), request)


class _AioUnaryStream(_AioToken, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(self, continuation, details, request):  # type: ignore[no-untyped-def]
        return await continuation(self._details(details), request)


class _AioStreamUnary(_AioToken, grpc.aio.StreamUnaryClientInterceptor):
    async def intercept_stream_unary(self, continuation, details, request_iterator):  # type: ignore[no-untyped-def]
        return await continuation(self._details(details), request_iterator)


class _AioStreamStream(_AioToken, grpc.aio.StreamStreamClientInterceptor):
    async def intercept_stream_stream(self, continuation, details, request_iterator):  # type: ignore[no-untyped-def]
        return await continuation(self._details(details), request_iterator)


def _aio_bearer_token(token: str) -> list[grpc.aio.ClientInterceptor]:
    return [kind(token) for kind in (_AioUnaryUnary, _AioUnaryStream, _AioStreamUnary, _AioStreamStream)]
