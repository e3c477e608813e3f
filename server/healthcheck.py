"""`python -m modelctl_server.healthcheck`: ask a controller's standard gRPC health service if it serves.

The container healthcheck (Dockerfile) and anything else without grpcurl use it. It reads the
same settings as the server (`--config FILE`, `MODELCTL_<SECTION>_<KEY>`), so it finds the port
and the TLS certificate by itself; a wildcard listen address (0.0.0.0, [::]) is probed on loopback.
Exit status 0 when the service is SERVING, 1 otherwise (Docker's healthy / unhealthy), 2 on a
config error; one line on stdout or stderr says why.
"""

from __future__ import annotations

import argparse
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from .config import ConfigError, Settings, load_settings

_WILDCARDS = {"0.0.0.0", "::", "[::]", ""}


def probe_address(grpc_address: str) -> str:
    """Where to reach a server listening on `grpc_address` from the same host."""
    host, _, port = grpc_address.rpartition(":")
    if host in _WILDCARDS:
        return f"127.0.0.1:{port}"
    return grpc_address


def check(address: str, *, service: str = "", timeout: float = 3.0, root_cert: bytes | None = None,
          server_name: str | None = None) -> str:
    """The health status name (`SERVING`, `NOT_SERVING`, ...); raises grpc.RpcError when unreachable."""
    options = [("grpc.ssl_target_name_override", server_name)] if server_name else []
    if root_cert is None:
        channel = grpc.insecure_channel(address, options=options)
    else:
        channel = grpc.secure_channel(address, grpc.ssl_channel_credentials(root_certificates=root_cert),
                                      options=options)
    with channel:
        response = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service),
                                                             timeout=timeout)
    return health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)


def _tls_root(settings: Settings, ca_file: str | None) -> bytes | None:
    if ca_file:
        with open(ca_file, "rb") as f:
            return f.read()
    if settings.tls_enabled:
        # A self-signed server certificate is its own root; a CA-issued one needs --ca.
        with open(settings.server.tls_cert, "rb") as f:
            return f.read()
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m modelctl_server.healthcheck",
                                     description="Exit 0 if the modelctl controller's gRPC health is SERVING.")
    parser.add_argument("--config", metavar="FILE", help="the server's TOML config (for its address and TLS)")
    parser.add_argument("--address", help="host:port to probe (default: server.grpc_address from the settings)")
    parser.add_argument("--service", default="", help="service name to ask about (default: the whole server)")
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds to wait for the answer")
    parser.add_argument("--ca", metavar="FILE", help="CA certificate to verify the server's TLS certificate")
    parser.add_argument("--server-name", help="TLS name to expect in the certificate (default: the host)")
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.config)
        root = _tls_root(settings, args.ca)
    except (ConfigError, OSError) as exc:
        print(f"healthcheck: {exc}", file=sys.stderr)
        return 2
    address = args.address or probe_address(settings.server.grpc_address)
    try:
        status = check(address, service=args.service, timeout=args.timeout, root_cert=root,
                       server_name=args.server_name)
    except grpc.RpcError as exc:
        print(f"healthcheck: {address}: {exc.code().name}: {exc.details()}", file=sys.stderr)
        return 1
    print(f"{address}: {status}")
    return 0 if status == "SERVING" else 1


if __name__ == "__main__":
    sys.exit(main())
