"""`modelctl metrics report`: send one window of measurements, for scripts and demos."""

from __future__ import annotations

import click

from . import _output as out
from ._context import CliContext, pass_cli
from ._params import complete_model_names


@click.group()
def metrics() -> None:
    """Report serving metrics of model versions (services do this through the SDK)."""


@metrics.command()
@click.argument("name", shell_complete=complete_model_names)
@click.argument("version")
@click.option("--requests", required=True, type=click.IntRange(min=0), help="Requests served in the window.")
@click.option("--errors", default=0, show_default=True, type=click.IntRange(min=0),
              help="How many of them failed.")
@click.option("--latency-ms", "latency_ms", multiple=True, type=click.FloatRange(min=0), metavar="MS",
              help="One request's latency in milliseconds; repeatable.")
@click.option("--p95-ms", "latency_p95_ms", type=click.FloatRange(min=0), metavar="MS",
              help="The window's p95 latency, when individual latencies are not given.")
@pass_cli
def report(cli: CliContext, name: str, version: str, requests: int, errors: int,
           latency_ms: tuple[float, ...], latency_p95_ms: float | None) -> None:
    """Report one window of traffic of VERSION of model NAME (ending now).

    Deployment gates judge versions on these numbers. With -q, prints the accepted sample count.
    """
    if errors > requests:
        raise click.BadParameter(f"{errors} errors out of {requests} requests", param_hint="'--errors'")
    accepted = cli.client.report_metrics(model=name, version=version, requests=requests, errors=errors,
                                         latency_ms=latency_ms, latency_p95_ms=latency_p95_ms)
    count = accepted.accepted_samples
    out.emit(cli, accepted, table=lambda: f"Accepted {count} sample(s) for {name} {version}.",
             ids=lambda: [str(count)])
