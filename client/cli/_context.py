"""What one `modelctl` invocation knows: connection options, output mode, and a lazy client."""

from __future__ import annotations

from typing import Any, Mapping

import click

from .._options import DEFAULT_ADDRESS, ConnectionOptions
from ..client import Client

OUTPUT_FORMATS = ("table", "json")


class CliContext:
    """Lives in `ctx.obj`; subcommands receive it through `pass_cli`.

    The client is built on first use, so `--help`, usage errors and commands
    that never call the server open no channel.
    """

    def __init__(self, options: ConnectionOptions, *, output: str = "table", quiet: bool = False) -> None:
        self.options = options
        self.output = output
        self.quiet = quiet
        self._client: Client | None = None

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> CliContext:
        """From the root group's parsed options; a bad combination is a usage error."""
        try:
            options = ConnectionOptions(
                address=params.get("server") or DEFAULT_ADDRESS,
                token=params.get("token") or None,
                ca_cert=params.get("ca_cert"), client_cert=params.get("client_cert"),
                client_key=params.get("client_key"), timeout=params.get("timeout"))
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None
        return cls(options, output=params.get("output") or "table", quiet=bool(params.get("quiet")))

    @property
    def json(self) -> bool:
        return self.output == "json"

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = Client(options=self.options)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


#: Decorator giving a command the `CliContext` of the invocation as its first argument.
pass_cli = click.make_pass_decorator(CliContext)
