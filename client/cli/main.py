"""The `modelctl` root group, its global options, and the list of command groups.

Exit codes: 0 success, 1 the operation failed (server error, unreachable
server, unreadable file) or a followed deployment ended ROLLED_BACK, ABORTED
or FAILED, 2 usage error (unknown option, bad KEY=VALUE or duration, missing
argument), 3 `deployments status` timed out before the deployment ended.

Shell completion (commands, options, and model names fetched from the server):

    bash:  eval "$(_MODELCTL_COMPLETE=bash_source modelctl)"   # in ~/.bashrc
    zsh:   eval "$(_MODELCTL_COMPLETE=zsh_source modelctl)"    # in ~/.zshrc
    fish:  _MODELCTL_COMPLETE=fish_source modelctl | source    # in ~/.config/fish/completions/modelctl.fish
"""

from __future__ import annotations

import click

from .._options import DEFAULT_ADDRESS, DEFAULT_TIMEOUT
from . import (
    alerts,
    audit,
    deploy,
    deployments,
    drift,
    experiments,
    metrics,
    models,
    pipelines,
    system,
    tokens,
    traffic,
)
from ._context import OUTPUT_FORMATS, CliContext
from ._errors import ModelctlGroup
from ._output import attach_output_options
from ._params import DURATION

#: Every top-level command or group. A new area adds its module and one entry here.
COMMANDS: tuple[click.Command, ...] = (
    models.models,
    deploy.deploy,
    deploy.rollback,
    deployments.deployments,
    traffic.traffic,
    metrics.metrics,
    drift.drift,
    experiments.experiments,
    pipelines.pipelines,
    system.status,
    system.restart,
    audit.audit,
    alerts.alerts,
    alerts.silences,
    alerts.notifications,
    tokens.tokens,
)


@click.group(cls=ModelctlGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--server", envvar="MODELCTL_ADDR", default=DEFAULT_ADDRESS, show_default=True, show_envvar=True,
              metavar="HOST:PORT", help="The controller's gRPC address.")
@click.option("--token", envvar="MODELCTL_TOKEN", show_envvar=True, help="Bearer token for the controller.")
@click.option("--ca-cert", type=click.Path(exists=True, dir_okay=False), help="CA certificate (PEM); turns TLS on.")
@click.option("--client-cert", type=click.Path(exists=True, dir_okay=False),
              help="Client certificate (PEM) for mutual TLS; needs --client-key.")
@click.option("--client-key", type=click.Path(exists=True, dir_okay=False), help="Key of --client-cert (PEM).")
@click.option("-o", "--output", type=click.Choice(OUTPUT_FORMATS), default="table", show_default=True,
              help="table for people, json (one document, protobuf field names) for scripts.")
@click.option("-q", "--quiet", is_flag=True, help="Print only ids or names, one per line (wins over -o).")
@click.option("--timeout", type=DURATION, default=f"{DEFAULT_TIMEOUT:g}s", show_default=True,
              help="Deadline per call, e.g. 10s or 2m (uploads have none unless given).")
@click.version_option(package_name="modelctl", prog_name="modelctl")
@click.pass_context
def cli(ctx: click.Context, **params: object) -> None:
    """modelctl: register, deploy and watch machine-learning models.

    \b
    Exit codes: 0 ok, 1 failure (or a watched deployment ended ROLLED_BACK,
    ABORTED or FAILED), 2 usage error, 3 `deployments status` timed out.
    Shell completion (bash; zsh_source and fish_source likewise):
      eval "$(_MODELCTL_COMPLETE=bash_source modelctl)"
    """
    ctx.obj = CliContext.from_params(params)
    ctx.call_on_close(ctx.obj.close)


for _command in COMMANDS:
    attach_output_options(_command)
    cli.add_command(_command)


def main() -> None:
    cli(prog_name="modelctl")
