"""How a client reaches the controller: address, credentials, deadlines and retries.

`ConnectionOptions.from_env` is the only place the SDK reads the environment
(`MODELCTL_ADDR`, `MODELCTL_TOKEN`); everything else takes a frozen options
object, so a service can build one from its own config and pass it around.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Mapping

DEFAULT_ADDRESS = "127.0.0.1:50051"
#: Seconds a unary call may take unless the caller says otherwise.
DEFAULT_TIMEOUT = 30.0


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff for idempotent reads that fail with UNAVAILABLE.

    gRPC itself runs these retries (a channel service config), so the sync and
    async clients behave the same; each pause is drawn at random between zero
    and the current backoff. Writes are never retried: a RegisterModel whose
    answer got lost may well have happened.
    """

    max_attempts: int = 4
    initial_backoff: float = 0.2
    max_backoff: float = 2.0
    backoff_multiplier: float = 2.0

    def __post_init__(self) -> None:
        # gRPC caps attempts at 5 and silently ignores a policy it finds invalid:
        # better to refuse it here, where the caller can see why.
        if not 2 <= self.max_attempts <= 5:
            raise ValueError("RetryPolicy.max_attempts must be between 2 and 5")
        if self.initial_backoff <= 0 or self.max_backoff <= 0 or self.backoff_multiplier <= 0:
            raise ValueError("RetryPolicy backoffs and multiplier must be positive")


@dataclass(frozen=True)
class ConnectionOptions:
    """Everything needed to open a channel to a modelctl controller."""

    #: host:port of the controller's gRPC listener.
    address: str = DEFAULT_ADDRESS
    #: Bearer token, sent as `authorization: Bearer <token>` on every call.
    token: str | None = None
    #: PEM file of the CA that signed the server certificate; turns TLS on.
    ca_cert: str | None = None
    #: PEM client certificate and key for mutual TLS; turn TLS on.
    client_cert: str | None = None
    client_key: str | None = None
    #: Force TLS with the system's trusted roots when no CA file is given.
    tls: bool = False
    #: Default deadline in seconds for unary calls; None waits forever.
    timeout: float | None = DEFAULT_TIMEOUT
    #: None turns retries off.
    retry: RetryPolicy | None = RetryPolicy()

    def __post_init__(self) -> None:
        if not self.address:
            raise ValueError("the controller address must not be empty")
        if bool(self.client_cert) != bool(self.client_key):
            raise ValueError("a client certificate needs its key, and a key its certificate")
        if self.timeout is not None and self.timeout <= 0:
            raise ValueError("timeout must be positive (or None for no deadline)")

    @property
    def uses_tls(self) -> bool:
        return bool(self.tls or self.ca_cert or self.client_cert)

    def replace(self, **changes: object) -> ConnectionOptions:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> ConnectionOptions:
        """Options from `MODELCTL_ADDR` and `MODELCTL_TOKEN`; explicit non-None overrides win."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {
            "address": env.get("MODELCTL_ADDR") or DEFAULT_ADDRESS,
            "token": env.get("MODELCTL_TOKEN") or None,
        }
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)  # type: ignore[arg-type]
