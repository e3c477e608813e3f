"""`modelctl deployments list | show | watch | status | promote | pause | resume | abort`.

Also the tables and fields every deployment command prints (`deploy`, `rollback` use them).
"""

from __future__ import annotations

import itertools

import click

from .. import errors
from .._deployment_requests import STATE_NAMES, state_name, strategy_name
from ..types import Deployment, DeploymentParams, DeploymentStrategy, GateEvaluation, GateVerdict
from . import _output as out
from . import _watch
from ._context import CliContext, pass_cli
from ._errors import CliError
from ._params import DURATION, complete_model_names
from ._parsing import format_duration

#: The server's largest page; a smaller --limit asks for no more than it needs.
MAX_PAGE_SIZE = 1000
DEFAULT_STATUS_TIMEOUT = "10m"


class WaitTimedOut(CliError):
    """`deployments status` ran out of time: its own exit code, so CI tells "still going" from "failed"."""

    exit_code = _watch.EXIT_TIMEOUT


@click.group()
def deployments() -> None:
    """List, inspect, follow and steer deployments."""


@deployments.command("list")
@click.option("--model", default="", shell_complete=complete_model_names,
              help="Only deployments of this model.")
@click.option("--state", "states", multiple=True, type=click.Choice(STATE_NAMES, case_sensitive=False),
              help="Only deployments in this state; repeatable.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1),
              help="At most this many deployments, newest first.")
@pass_cli
def list_deployments(cli: CliContext, model: str, states: tuple[str, ...], limit: int) -> None:
    """List deployments, newest first."""
    found = list(itertools.islice(
        cli.client.iter_deployments(model=model, states=states, page_size=min(limit, MAX_PAGE_SIZE)), limit))
    out.emit(cli, found, table=lambda: deployments_table(found), ids=lambda: [d.id for d in found])


@deployments.command()
@click.argument("deployment_id", metavar="ID")
@pass_cli
def show(cli: CliContext, deployment_id: str) -> None:
    """Show deployment ID with its latest gate evaluations."""
    deployment = cli.client.get_deployment(deployment_id)
    out.emit(cli, deployment, table=lambda: deployment_details(deployment), ids=lambda: [deployment.id])


@deployments.command()
@click.argument("deployment_id", metavar="ID")
@pass_cli
def watch(cli: CliContext, deployment_id: str) -> None:
    """Follow deployment ID until it ends: every event from the first, then live ones.

    \b
    On a terminal: a live progress line per step. Piped: one plain line per event.
    -o json: JSON Lines, one DeploymentEvent object per line, then the final
    Deployment (with its reason) as the last line.
    Exit code: 0 SUCCEEDED, 1 ROLLED_BACK, ABORTED or FAILED.
    """
    deployment = cli.client.get_deployment(deployment_id)
    click.get_current_context().exit(_watch.follow(cli, deployment))


@deployments.command()
@click.argument("deployment_id", metavar="ID")
@click.option("--timeout", "wait_for", type=DURATION, default=DEFAULT_STATUS_TIMEOUT, show_default=True,
              help="Give up waiting after this long, e.g. 30s, 10m.")
@pass_cli
def status(cli: CliContext, deployment_id: str, wait_for: float) -> None:
    """Wait until deployment ID ends, print it, and exit with its outcome (for CI pipelines).

    \b
    Exit codes: 0 SUCCEEDED; 1 ROLLED_BACK, ABORTED or FAILED (or any other failure);
    3 still not finished after --timeout (the last known state is printed).
    """
    try:
        final = cli.client.wait_for_deployment(deployment_id, timeout=wait_for)
    except errors.WaitTimeoutError as exc:
        if exc.deployment is not None:
            emit_deployment(cli, exc.deployment)
        waited = format_duration(wait_for)
        raise WaitTimedOut(f"timed out after {waited}: {_still(deployment_id, exc)}") from None
    emit_deployment(cli, final)
    click.get_current_context().exit(_watch.exit_code(final))


def _still(deployment_id: str, exc: errors.WaitTimeoutError) -> str:
    last = exc.deployment
    if last is None:
        return f"deployment {deployment_id} has not reached a final state"
    return (f"deployment {deployment_id} is still {state_name(last.state)} at {_watch.step_of(last)} "
            f"({last.traffic_percent:g}% of traffic)")


def _action(name: str, verb: str, doc: str) -> click.Command:
    @click.argument("deployment_id", metavar="ID")
    @click.option("--reason", default="", help="Recorded in the audit log and the deployment's events.")
    @pass_cli
    def command(cli: CliContext, deployment_id: str, reason: str) -> None:
        deployment = getattr(cli.client, name)(deployment_id, reason)
        out.emit(cli, deployment, table=lambda: f"{verb} deployment {deployment.id}.\n\n"
                                                + deployment_details(deployment),
                 ids=lambda: [deployment.id])
    command.__doc__ = doc
    return deployments.command(name)(command)


promote = _action("promote", "Promoted",
                  "Skip the remaining steps of deployment ID: 100 % on the new version now.")
pause = _action("pause", "Paused", "Pause deployment ID at its current step; traffic stays as it is.")
resume = _action("resume", "Resumed", "Resume paused deployment ID from the step it had reached.")
abort = _action("abort", "Aborted",
                "Abort deployment ID: traffic back on the previous version, state ABORTED.")


def emit_deployment(cli: CliContext, deployment: Deployment) -> None:
    """A deployment as the invocation asked: -q its id, -o json, or its details."""
    out.emit(cli, deployment, table=lambda: deployment_details(deployment), ids=lambda: [deployment.id])


# --- what people read --------------------------------------------------------------------------------------


def state_label(deployment: Deployment) -> str:
    return state_name(deployment.state)


def deployments_table(found: list[Deployment]) -> str:
    rows = [(d.id, d.model, d.version, d.previous_version, strategy_name(d.strategy), state_label(d),
             f"{d.step}/{_watch.total_steps(d)}", f"{d.traffic_percent:g}%", out.timestamp(d.created_at))
            for d in found]
    headers = ("ID", "MODEL", "VERSION", "PREVIOUS", "STRATEGY", "STATE", "STEP", "TRAFFIC", "CREATED")
    return out.render_table(headers, rows, empty="No deployments.")


def deployment_fields(d: Deployment) -> str:
    params = d.params
    canary = d.strategy == DeploymentStrategy.Value("DEPLOYMENT_STRATEGY_CANARY")
    steps = ",".join(str(s) for s in params.steps) if canary else ""
    thresholds = params.thresholds
    gates = [f"error_rate<={thresholds.error_rate:g}" if thresholds.HasField("error_rate") else "",
             f"latency_p95<={thresholds.latency_p95_ms:g}ms" if thresholds.HasField("latency_p95_ms") else "",
             f"drift_score<={thresholds.drift_score:g}" if thresholds.HasField("drift_score") else ""]
    return out.render_fields([
        ("ID", d.id),
        ("Model", d.model),
        ("Version", d.version),
        ("Previous", d.previous_version),
        ("Strategy", strategy_name(d.strategy)),
        ("State", state_label(d)),
        ("Step", _watch.step_of(d) + (f" (steps {steps})" if steps else "")),
        ("Traffic", f"{d.traffic_percent:g}%"),
        ("Failed checks", f"{d.failed_checks}/{params.failure_limit}"),
        ("Reason", d.reason),
        ("Interval" if canary else "Bake time",
         _param_duration(params, "step_interval" if canary else "bake_time")),
        ("Gates", ", ".join(g for g in gates if g)),
        ("Created", f"{out.timestamp(d.created_at)} by {d.created_by or '-'}"),
        ("Updated", out.timestamp(d.updated_at)),
        ("Finished", out.timestamp(d.finished_at)),
    ])


def _param_duration(params: DeploymentParams, field: str) -> str:
    return out.duration(getattr(params, field)) if params.HasField(field) else ""


def evaluations_table(evaluations: list[GateEvaluation]) -> str:
    rows = [(e.step, e.gate + (" (critical)" if e.critical else ""),
             f"{e.value:.4g}" if e.HasField("value") else "", f"{e.threshold:.4g}", _window(e),
             f"{e.samples:g}", out.enum_label(GateVerdict.Name(e.verdict), "GATE_VERDICT_"), e.detail)
            for e in evaluations]
    headers = ("STEP", "GATE", "VALUE", "THRESHOLD", "WINDOW", "SAMPLES", "VERDICT", "DETAIL")
    return out.render_table(headers, rows, empty="No gate evaluations yet.")


def _window(e: GateEvaluation) -> str:
    start, end = e.window_start.ToDatetime(), e.window_end.ToDatetime()
    if e.window_start.seconds == 0 or end <= start:
        return out.timestamp(e.window_end)
    return f"{out.timestamp(e.window_start)} +{format_duration((end - start).total_seconds())}"


def deployment_details(d: Deployment) -> str:
    parts = [deployment_fields(d)]
    if d.current_gates:
        parts.append(f"Current step {d.step}, gates over the step so far:\n"
                     f"{evaluations_table(list(d.current_gates))}")
    if d.waiting_for:
        parts.append(f"Waiting for: {d.waiting_for}")
    parts.append(f"Gate evaluations (newest first):\n{evaluations_table(list(d.evaluations))}")
    return "\n\n".join(parts)
