"""`modelctl pipelines ...`: see pipeline services, send them commands, follow "optimise -> live".

`optimize NAME --model M --then-deploy canary --watch` follows the whole way: a
progress bar from the progress the pipeline reports while it optimises, then
the deployment it started (drawn by `_watch`, as `deploy --watch` draws it),
then the command's final line. Exit code 0 when the command SUCCEEDED (with
then_deploy: the new version is live), 1 otherwise.
"""

from __future__ import annotations

import itertools
import json
import sys
import time
from typing import Any

import click

from .._deployment_requests import strategy_name
from .._pipelines import (
    COMMAND_STATE_NAMES,
    command_state_name,
    is_final,
    kind_name,
    pipeline_state_name,
)
from ..types import Pipeline, PipelineCommand
from . import _output as out
from . import _watch
from ._context import CliContext, pass_cli
from ._params import DURATION, KEY_VALUE, complete_model_names
from .deploy import STEPS

MAX_PAGE_SIZE = 1000
#: How often `--watch` looks at the command and the pipeline's progress before a deployment exists.
POLL_INTERVAL = 0.25
_SUCCEEDED = "SUCCEEDED"


@click.group()
def pipelines() -> None:
    """See pipeline services and send them commands (optimise, retrain, pause, resume, new configuration)."""


@pipelines.command("list")
@click.option("--model", default="", shell_complete=complete_model_names, help="Only pipelines serving this model.")
@pass_cli
def list_pipelines(cli: CliContext, model: str) -> None:
    """List pipelines by name, with what each last reported."""
    found = list(cli.client.iter_pipelines(model=model))
    out.emit(cli, found, table=lambda: pipelines_table(found), ids=lambda: [p.name for p in found])


@pipelines.command()
@click.argument("name")
@pass_cli
def show(cli: CliContext, name: str) -> None:
    """Show pipeline NAME: state, job, progress, last result."""
    pipeline = cli.client.get_pipeline(name)
    out.emit(cli, pipeline, table=lambda: pipeline_details(pipeline), ids=lambda: [pipeline.name])


@pipelines.command()
@click.argument("name")
@click.option("--state", "states", multiple=True, type=click.Choice(COMMAND_STATE_NAMES, case_sensitive=False),
              help="Only commands in this state; repeatable.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1), help="At most this many.")
@pass_cli
def commands(cli: CliContext, name: str, states: tuple[str, ...], limit: int) -> None:
    """List the commands sent to pipeline NAME, newest first."""
    found = list(itertools.islice(cli.client.iter_pipeline_commands(name, states,
                                                                    page_size=min(limit, MAX_PAGE_SIZE)), limit))
    out.emit(cli, found, table=lambda: commands_table(found), ids=lambda: [c.id for c in found])


@pipelines.command()
@click.argument("name")
@click.option("--model", required=True, shell_complete=complete_model_names, help="The model to optimise.")
@click.option("--param", "params", multiple=True, type=KEY_VALUE, help="A parameter for the pipeline; repeatable.")
@click.option("--then-deploy", "strategy", type=click.Choice(["immediate", "blue-green", "canary", "rolling"],
                                                                case_sensitive=False),
              help="Roll the version the pipeline registers out with this strategy, by itself.")
@click.option("--steps", type=STEPS, help="With --then-deploy canary: traffic steps, e.g. 5,10,25,50,100.")
@click.option("--interval", type=DURATION, help="With --then-deploy: time per step, e.g. 30s.")
@click.option("--min-samples", type=click.IntRange(min=1), help="With --then-deploy: samples a gate needs.")
@click.option("--ack-timeout", type=DURATION, help="The pipeline must acknowledge within this, or it expires.")
@click.option("--watch", is_flag=True, help="Follow it: the pipeline's progress, then the deployment, then the "
                                            "outcome. Exit code 0 when it SUCCEEDED, 1 otherwise.")
@pass_cli
def optimize(cli: CliContext, name: str, model: str, params: tuple[tuple[str, str], ...], strategy: str | None,
             steps: Any, interval: float | None, min_samples: int | None, ack_timeout: float | None,
             watch: bool) -> None:
    """Ask pipeline NAME to optimise --model now; with --then-deploy, the result goes live safely by itself."""
    deploy_params = {k: v for k, v in {"steps": steps, "interval": interval, "min_samples": min_samples}.items()
                     if v is not None}
    if deploy_params and strategy is None:
        raise click.UsageError("--steps, --interval and --min-samples need --then-deploy")
    command = cli.client.send_pipeline_command(name, "optimize", model, dict(params),
                                               then_deploy=strategy.lower() if strategy else None,
                                               deploy_params=deploy_params, ack_timeout=ack_timeout)
    _sent(cli, command, watch)


def _simple(kind: str, summary: str) -> click.Command:
    @click.command(kind, help=f"{summary} Pipeline NAME receives the command on its stream.")
    @click.argument("name")
    @click.option("--model", default="", help="Only this model (default: the whole pipeline).")
    @click.option("--param", "params", multiple=True, type=KEY_VALUE, help="A parameter; repeatable.")
    @click.option("--watch", is_flag=True, help="Wait for the outcome; exit code 0 when it SUCCEEDED.")
    @pass_cli
    def send(cli: CliContext, name: str, model: str, params: tuple[tuple[str, str], ...], watch: bool) -> None:
        command = cli.client.send_pipeline_command(name, kind, model, dict(params))
        _sent(cli, command, watch)
    return send


pipelines.add_command(_simple("pause", "Stop the pipeline taking new work."))
pipelines.add_command(_simple("resume", "Let a paused pipeline take work again."))
pipelines.add_command(_simple("retrain", "Retrain now."))


@pipelines.command("reload-config")
@click.argument("name")
@click.option("--file", "path", required=True, type=click.Path(exists=True, dir_okay=False),
              help="A JSON document; the controller refuses one that is not JSON.")
@click.option("--watch", is_flag=True, help="Wait for the outcome; exit code 0 when it SUCCEEDED.")
@pass_cli
def reload_config(cli: CliContext, name: str, path: str, watch: bool) -> None:
    """Send pipeline NAME a new configuration."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    command = cli.client.send_pipeline_command(name, "reload-config", config=text)
    _sent(cli, command, watch)


@pipelines.command()
@click.argument("command_id", metavar="COMMAND_ID")
@click.option("--reason", default="", help="Recorded in the command's error and the audit log.")
@pass_cli
def cancel(cli: CliContext, command_id: str, reason: str) -> None:
    """Give up on command COMMAND_ID (a deployment it started goes on: abort that separately)."""
    command = cli.client.cancel_pipeline_command(command_id, reason)
    out.emit(cli, command, table=lambda: f"Cancelled command {command.id}.\n\n" + command_details(command),
             ids=lambda: [command.id])


# --- following a command -----------------------------------------------------------------------------------


def _sent(cli: CliContext, command: PipelineCommand, watch: bool) -> None:
    if not watch:
        out.emit(cli, command, table=lambda: f"Sent command {command.id}.\n\n" + command_details(command),
                 ids=lambda: [command.id])
        return
    click.get_current_context().exit(follow(cli, command))


def follow(cli: CliContext, command: PipelineCommand) -> int:
    """The pipeline's progress, then the deployment the command started, then its final line; the exit code."""
    terminal = _watch.stdout_is_terminal() and not cli.json and not cli.quiet
    if cli.quiet:
        click.echo(command.id)
    elif not cli.json:
        click.echo(f"Command {command.id}: {kind_name(command.kind)} {command.model or ''} on pipeline "
                   f"{command.pipeline}".rstrip())
    last_line = ""
    followed_deployment = ""
    try:
        while not is_final(command.state):
            if command.deployment_id and command.deployment_id != followed_deployment:
                if terminal and last_line:
                    click.echo("")
                last_line = ""
                followed_deployment = command.deployment_id
                deployment = cli.client.get_deployment(command.deployment_id)
                if not cli.quiet and not cli.json:
                    _watch.follow(cli, deployment)
                else:
                    cli.client.wait_for_deployment(command.deployment_id)
            elif not command.deployment_id:
                pipeline = cli.client.get_pipeline(command.pipeline)
                line = progress_line(command, pipeline)
                if line != last_line and not cli.quiet and not cli.json:
                    click.echo(f"\r{line}\x1b[K" if terminal else line, nl=not terminal)
                    sys.stdout.flush()
                    last_line = line
                time.sleep(POLL_INTERVAL)
            else:
                time.sleep(POLL_INTERVAL)  # the deployment ended; the command follows within a sweep
            command = cli.client.get_pipeline_command(command.id)
    except KeyboardInterrupt:
        click.echo(f"\nStopped watching; command {command.id} goes on (modelctl pipelines commands "
                   f"{command.pipeline}).", err=True)
        return _watch.EXIT_INTERRUPTED
    if terminal and last_line:
        click.echo("")
    if cli.json:
        click.echo(json.dumps(out.to_json(command), separators=(",", ":")))
    elif not cli.quiet:
        click.echo(final_line(command))
    return _watch.EXIT_SUCCEEDED if command_state_name(command.state) == _SUCCEEDED else _watch.EXIT_FAILED


def progress_line(command: PipelineCommand, pipeline: Pipeline) -> str:
    state = command_state_name(command.state)
    if state in ("PENDING", "DELIVERED"):
        return f"{state}: waiting for pipeline {pipeline.name} to acknowledge"
    bar = _watch.progress_bar(round(pipeline.progress), 100)
    job = f" {pipeline.job}" if pipeline.job else ""
    return f"{bar} {pipeline.progress:.0f}% {pipeline_state_name(pipeline.state)}{job}"


def final_line(c: PipelineCommand) -> str:
    state = command_state_name(c.state)
    what = " ".join(x for x in (c.result, c.error and f"({c.error})") if x) or "no result reported"
    return f"{state}: {what} (command {c.id}" + (f", deployment {c.deployment_id})" if c.deployment_id else ")")


# --- what people read --------------------------------------------------------------------------------------


def pipelines_table(found: list[Pipeline]) -> str:
    rows = [(p.name, pipeline_state_name(p.state), f"{p.progress:.0f}%", p.job, "yes" if p.stale else "no",
             out.timestamp(p.last_seen), ",".join(p.models), p.version) for p in found]
    return out.render_table(("NAME", "STATE", "PROGRESS", "JOB", "STALE", "LAST SEEN", "MODELS", "VERSION"), rows,
                            empty="No pipelines.")


def pipeline_details(p: Pipeline) -> str:
    r = p.last_result
    last = " ".join(x for x in (f"{r.model} {r.version}".strip(), r.summary, out.mapping(dict(r.metrics))
                                if r.metrics else "") if x) if p.HasField("last_result") else ""
    return out.render_fields([
        ("Name", p.name), ("Models", ", ".join(p.models)), ("Version", p.version),
        ("Labels", out.mapping(dict(p.labels))), ("State", pipeline_state_name(p.state)), ("Job", p.job),
        ("Progress", f"{p.progress:.0f}%"), ("Last seen", out.timestamp(p.last_seen)),
        ("Stale", "yes: silent too long, an alert is open" if p.stale else "no"), ("Last result", last),
        ("Details", out.mapping(dict(p.details))),
        ("Registered", f"{out.timestamp(p.registered_at)} by {p.registered_by or '-'}"),
    ])


def commands_table(found: list[PipelineCommand]) -> str:
    rows = [(c.id, kind_name(c.kind), c.model, command_state_name(c.state), c.result_version, c.deployment_id,
             c.error or c.result, out.timestamp(c.created_at)) for c in found]
    return out.render_table(("ID", "KIND", "MODEL", "STATE", "VERSION", "DEPLOYMENT", "RESULT", "CREATED"), rows,
                            empty="No commands.")


def command_details(c: PipelineCommand) -> str:
    then = ""
    if c.HasField("then_deploy"):
        then = strategy_name(c.then_deploy.strategy)
    return out.render_fields([
        ("ID", c.id), ("Pipeline", c.pipeline), ("Kind", kind_name(c.kind)), ("Model", c.model),
        ("Parameters", out.mapping(dict(c.parameters))), ("Then deploy", then),
        ("State", command_state_name(c.state)), ("Deadline", out.timestamp(c.deadline)),
        ("Result", c.result), ("Version", c.result_version), ("Deployment", c.deployment_id), ("Error", c.error),
        ("Created", f"{out.timestamp(c.created_at)} by {c.created_by or '-'}"),
    ])
