"""`modelctl deploy` and `modelctl rollback`."""

from __future__ import annotations

import click

from .._deployment_requests import STRATEGY_NAMES, parse_limit, parse_steps
from ..types import Deployment
from . import _watch
from ._context import CliContext, pass_cli
from ._params import DURATION, DURATION_OR_ZERO, _Parsed, complete_model_names
from .deployments import emit_deployment

STEPS = _Parsed("STEPS", parse_steps)
LIMIT = _Parsed("N|N%", parse_limit)

_WATCH_HELP = ("Follow the rollout until it ends: a live progress line per step; plain lines when piped; "
               "with -o json, JSON Lines: one event per line, then the final deployment. "
               "Exit code 0 SUCCEEDED, 1 ROLLED_BACK/ABORTED/FAILED.")


@click.command()
@click.argument("name", shell_complete=complete_model_names)
@click.argument("version")
@click.option("--strategy", required=True, type=click.Choice(STRATEGY_NAMES, case_sensitive=False),
              help="immediate: 100 % at once, then baked; blue-green: analysed at 0 %, then switched; "
                   "canary: traffic steps with gates; rolling: serving instances in batches.")
@click.option("--steps", type=STEPS, help="Canary traffic steps in percent, increasing, ending at 100, "
                                          "e.g. 5,10,25,50,100.")
@click.option("--interval", type=DURATION, help="Time per canary step, e.g. 30s (at least 100ms).")
@click.option("--min-samples", type=click.IntRange(min=1), help="Requests a gate needs before it may judge.")
@click.option("--failure-limit", type=click.IntRange(min=1), help="Failed gate checks before rolling back.")
@click.option("--progress-deadline", type=DURATION,
              help="A step that cannot gather enough samples in this time fails the deployment, e.g. 5m.")
@click.option("--bake-time", type=DURATION_OR_ZERO,
              help="immediate/blue-green: watch time after the switch, e.g. 60s.")
@click.option("--max-error-rate", type=click.FloatRange(0, 1), metavar="RATE",
              help="Error-rate gate, a fraction (0.05 = 5 %).")
@click.option("--max-latency-p95", "max_latency_p95_ms", type=click.FloatRange(min=0, min_open=True),
              metavar="MS", help="p95 latency gate in milliseconds.")
@click.option("--max-drift-score", type=click.FloatRange(min=0), metavar="SCORE",
              help="Drift-score gate (used when drift scores are reported).")
@click.option("--max-error-rate-increase", type=click.FloatRange(0, 1), metavar="POINTS",
              help="Relative gate: the new version's error rate may exceed the stable one's by at most "
                   "this (0.02 = 2 points), judged with a two-proportion test so noise does not fail it.")
@click.option("--critical-gate", "critical_gates", multiple=True,
              type=click.Choice(["error_rate", "latency_p95", "drift_score", "relative_error_rate"]),
              help="A gate whose breach rolls back at once, on the breaching report (repeatable). "
                   "[default: error_rate]")
@click.option("--max-unavailable", type=LIMIT, help="rolling: instances switching at once, a count or 25%.")
@click.option("--max-surge", type=LIMIT, help="rolling: extra instances beyond that, a count or 25%.")
@click.option("--watch", is_flag=True, help=_WATCH_HELP)
@pass_cli
def deploy(cli: CliContext, name: str, version: str, strategy: str, watch: bool, **params: object) -> None:
    """Roll VERSION of model NAME out with a strategy.

    Options left out take the server's configured defaults. With -q, prints the deployment id.
    """
    params["critical_gates"] = list(params["critical_gates"]) or None  # type: ignore[call-overload]
    deployment = cli.client.deploy(name, version, strategy.lower(), **params)  # type: ignore[arg-type]
    _started(cli, deployment, watch)


@click.command()
@click.argument("name", shell_complete=complete_model_names)
@click.option("--to", "to_version", default=None, metavar="VERSION",
              help="Roll back to this version.  [default: the previous live version]")
@click.option("--reason", default="", help="Recorded with the deployment and in the audit log.")
@click.option("--watch", is_flag=True, help=_WATCH_HELP)
@pass_cli
def rollback(cli: CliContext, name: str, to_version: str | None, reason: str, watch: bool) -> None:
    """Put model NAME back on its previous version (or --to VERSION) at once.

    Starts an immediate deployment of that version. With -q, prints the deployment id.
    """
    deployment = cli.client.rollback(name, to_version, reason)
    _started(cli, deployment, watch)


def _started(cli: CliContext, deployment: Deployment, watch: bool) -> None:
    if watch:
        click.get_current_context().exit(_watch.follow(cli, deployment))
    emit_deployment(cli, deployment)
