"""TLS and mutual TLS with certificates the test makes (trustme): who gets in and who does not."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import grpc
import pytest
import trustme
from grpc_health.v1 import health_pb2, health_pb2_grpc

from modelctl.v1 import controller_pb2_grpc, system_pb2
from modelctl_server.config import ConfigError

from conftest import ThreadedServer, make_settings

REFUSED_TIMEOUT = 10.0


@dataclass(frozen=True)
class Pki:
    server_ca: trustme.CA
    client_ca: trustme.CA
    cert: Path  # server certificate chain
    key: Path
    client_ca_file: Path


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    server_ca, client_ca = trustme.CA(), trustme.CA()
    server_cert = server_ca.issue_cert("127.0.0.1", "localhost")
    cert, key, client_ca_file = tmp_path / "server.pem", tmp_path / "server.key", tmp_path / "clients-ca.pem"
    cert.write_bytes(b"".join(blob.bytes() for blob in server_cert.cert_chain_pems))
    server_cert.private_key_pem.write_to_path(str(key))
    client_ca.cert_pem.write_to_path(str(client_ca_file))
    return Pki(server_ca, client_ca, cert, key, client_ca_file)


def tls_channel(address: str, ca: trustme.CA, client: trustme.LeafCert | None = None) -> grpc.Channel:
    creds = grpc.ssl_channel_credentials(
        root_certificates=ca.cert_pem.bytes(),
        private_key=client.private_key_pem.bytes() if client else None,
        certificate_chain=b"".join(b.bytes() for b in client.cert_chain_pems) if client else None)
    return grpc.secure_channel(address, creds)


def system_status(channel: grpc.Channel, token: str) -> system_pb2.SystemStatus:
    return controller_pb2_grpc.ModelControllerStub(channel).GetSystemStatus(
        system_pb2.GetSystemStatusRequest(), metadata=[("authorization", f"Bearer {token}")], timeout=10)


def assert_refused(channel: grpc.Channel) -> None:
    with channel, pytest.raises(grpc.RpcError) as err:
        health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=REFUSED_TIMEOUT)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE


@pytest.fixture
def tls_server(server_factory: Callable[..., ThreadedServer], pki: Pki) -> ThreadedServer:
    return server_factory(MODELCTL_SERVER_TLS_CERT=str(pki.cert), MODELCTL_SERVER_TLS_KEY=str(pki.key))


@pytest.fixture
def mtls_server(server_factory: Callable[..., ThreadedServer], pki: Pki) -> ThreadedServer:
    return server_factory(MODELCTL_SERVER_TLS_CERT=str(pki.cert), MODELCTL_SERVER_TLS_KEY=str(pki.key),
                          MODELCTL_SERVER_TLS_CLIENT_CA=str(pki.client_ca_file))


# --- server TLS -----------------------------------------------------------------------------------------


def test_tls_client_trusting_the_ca_is_served(tls_server: ThreadedServer, pki: Pki) -> None:
    with tls_channel(tls_server.address, pki.server_ca) as channel:
        status = system_status(channel, tls_server.admin_token)
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
    assert status.tls_enabled
    assert health.status == health_pb2.HealthCheckResponse.SERVING


def test_localhost_name_matches_the_certificate_too(tls_server: ThreadedServer, pki: Pki) -> None:
    with tls_channel(f"localhost:{tls_server.port}", pki.server_ca) as channel:
        assert system_status(channel, tls_server.admin_token).tls_enabled


def test_plaintext_client_is_refused(tls_server: ThreadedServer) -> None:
    assert_refused(grpc.insecure_channel(tls_server.address))


def test_client_trusting_another_ca_is_refused(tls_server: ThreadedServer) -> None:
    assert_refused(tls_channel(tls_server.address, trustme.CA()))


# --- mutual TLS -----------------------------------------------------------------------------------------


def test_mtls_client_with_a_certificate_from_the_client_ca_is_served(mtls_server: ThreadedServer,
                                                                     pki: Pki) -> None:
    client = pki.client_ca.issue_cert("pipeline@example.org")
    with tls_channel(mtls_server.address, pki.server_ca, client) as channel:
        assert system_status(channel, mtls_server.admin_token).tls_enabled


def test_mtls_client_without_a_certificate_is_refused(mtls_server: ThreadedServer, pki: Pki) -> None:
    assert_refused(tls_channel(mtls_server.address, pki.server_ca))


def test_mtls_client_with_a_certificate_from_another_ca_is_refused(mtls_server: ThreadedServer,
                                                                   pki: Pki) -> None:
    stranger = trustme.CA().issue_cert("intruder@example.org")
    assert_refused(tls_channel(mtls_server.address, pki.server_ca, stranger))


def test_mtls_still_needs_a_token(mtls_server: ThreadedServer, pki: Pki) -> None:
    client = pki.client_ca.issue_cert("pipeline@example.org")
    with tls_channel(mtls_server.address, pki.server_ca, client) as channel:
        with pytest.raises(grpc.RpcError) as err:
            system_status(channel, "not-a-token")
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


# --- bad TLS settings are named at start ----------------------------------------------------------------


def test_bad_tls_files_name_the_key(tmp_path: Path, pki: Pki) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    other_key = tmp_path / "other.key"
    pki.server_ca.issue_cert("localhost").private_key_pem.write_to_path(str(other_key))
    def tls(cert: Path | None = None, key: Path | None = None,
            client_ca: Path | None = None) -> dict[str, str]:
        names = {"CERT": cert, "KEY": key, "CLIENT_CA": client_ca}
        return {f"MODELCTL_SERVER_TLS_{n}": str(p) for n, p in names.items() if p is not None}

    cases = [
        (tls(pki.cert), "server.tls_cert"),  # key missing
        (tls(garbage, pki.key), "server.tls_cert"),
        (tls(pki.cert, garbage), "server.tls_key"),
        (tls(pki.cert, other_key), "server.tls_key"),  # a key, but not the certificate's
        (tls(pki.cert, pki.key, garbage), "server.tls_client_ca"),
        (tls(client_ca=pki.client_ca_file), "server.tls_client_ca"),  # mTLS without TLS
    ]
    for env, key in cases:
        with pytest.raises(ConfigError) as err:
            make_settings(tmp_path / "data", **env)
        assert str(err.value).startswith(f"{key}:"), (env, str(err.value))
