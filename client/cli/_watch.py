"""Following a deployment until it ends: `deploy --watch`, `rollback --watch`, `deployments watch`.

How it prints depends on where stdout goes:

- a terminal: one live line per step, redrawn in place as events arrive,
  `[██████░░░░] step 3/5 25% PROGRESSING`, then a final line;
- a pipe or a file (CI logs): plain lines, one per event, then the final line;
- `-o json`: JSON Lines, flushed as they happen: one `DeploymentEvent` object per
  line (protobuf field names; it has `seq`), then, last, the final `Deployment`
  (it has `id`, `state` and `reason`): `... -o json | tail -1 | jq -r .reason`;
- `-q`: the deployment id, then nothing until the end.

The exit code tells the outcome: `EXIT_SUCCEEDED` (0) for SUCCEEDED, `EXIT_FAILED`
(1) for ROLLED_BACK, ABORTED or FAILED, `EXIT_TIMEOUT` (3) when a wait ran out
of time (`deployments status --timeout`). The events are followed through
`Client.wait_for_deployment`, which reconnects and resumes after a controller restart.
"""

from __future__ import annotations

import json
import sys

import click

from .._deployment_requests import state_name, strategy_name
from ..types import Deployment, DeploymentEvent, DeploymentEventKind, DeploymentState, DeploymentStrategy
from . import _output as out
from ._context import CliContext

EXIT_SUCCEEDED = 0
EXIT_FAILED = 1
EXIT_TIMEOUT = 3
#: Ctrl-C: the watch stopped, the deployment did not.
EXIT_INTERRUPTED = 130

BAR_WIDTH = 10
_KIND_PREFIX = "DEPLOYMENT_EVENT_KIND_"
_KIND_WIDTH = len("ROLLBACK_STARTED")


def exit_code(deployment: Deployment) -> int:
    succeeded = deployment.state == DeploymentState.Value("DEPLOYMENT_STATE_SUCCEEDED")
    return EXIT_SUCCEEDED if succeeded else EXIT_FAILED


def total_steps(deployment: Deployment) -> int:
    return deployment.total_steps or len(deployment.params.steps) or 1


def step_unit(deployment: Deployment) -> str:
    """What a step is called: a rolling update moves instances in batches, the others move traffic."""
    rolling = deployment.strategy == DeploymentStrategy.Value("DEPLOYMENT_STRATEGY_ROLLING")
    return "batch" if rolling else "step"


def step_of(deployment: Deployment) -> str:
    """`batch 2/4` for a rolling update, `step 3/5` for the others."""
    return f"{step_unit(deployment)} {deployment.step}/{total_steps(deployment)}"


def progress_bar(step: int, total: int, *, width: int = BAR_WIDTH, fill: str = "█", empty: str = "░") -> str:
    """`[██████░░░░]` for step 3 of 5."""
    done = round(width * min(max(step, 0), total) / total) if total > 0 else 0
    return f"[{fill * done}{empty * (width - done)}]"


def progress_line(state: int, step: int, total: int, traffic_percent: float, *,
                  ascii_only: bool = False, unit: str = "step") -> str:
    bar = progress_bar(step, total, fill="#", empty="-") if ascii_only else progress_bar(step, total)
    return f"{bar} {unit} {step}/{total} {traffic_percent:g}% {state_name(state)}"


def event_line(event: DeploymentEvent, total: int, unit: str = "step") -> str:
    """A plain line for logs: `2024-05-01 12:00:03Z  STEP_STARTED  step 2/5  10%  PROGRESSING  message`."""
    kind = out.enum_label(DeploymentEventKind.Name(event.kind), _KIND_PREFIX)
    line = (f"{out.timestamp(event.time)}  {kind.ljust(_KIND_WIDTH)}  {unit} {event.step}/{total}  "
            f"{event.traffic_percent:g}%  {state_name(event.state)}")
    message = " ".join(event.message.split())
    return f"{line}  {message}" if message else line


def final_line(deployment: Deployment) -> str:
    """What became of it, in one line; for a failure the reason in words."""
    state = state_name(deployment.state)
    if exit_code(deployment) == EXIT_SUCCEEDED:
        return (f"{state}: {deployment.model} {deployment.version} serves "
                f"{deployment.traffic_percent:g}% of traffic (deployment {deployment.id})")
    back = f"; traffic back on {deployment.previous_version}" if deployment.previous_version else ""
    reason = " ".join(deployment.reason.split()) or "no reason given"
    return f"{state}: {reason} ({deployment.model} {deployment.version}, deployment {deployment.id}{back})"


def start_line(deployment: Deployment) -> str:
    steps, unit = total_steps(deployment), step_unit(deployment)
    plural = "es" if unit == "batch" else "s"
    plan = f"{strategy_name(deployment.strategy)}, {steps} {unit}{plural if steps != 1 else ''}"
    was = f", replacing {deployment.previous_version}" if deployment.previous_version else ""
    return f"Deployment {deployment.id}: {deployment.model} {deployment.version} ({plan}{was})"


def stdout_is_terminal() -> bool:
    # A line redrawn with carriage returns is noise in a CI log or a file.
    return sys.stdout.isatty()


def _can_draw_blocks() -> bool:
    encoding = getattr(sys.stdout, "encoding", None) or "ascii"
    try:
        "█░".encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return False
    return True


class Follower:
    """The `on_event` callback of one watch: prints each event the way the invocation asked."""

    def __init__(self, cli: CliContext, deployment: Deployment, *, terminal: bool) -> None:
        self.cli = cli
        self.total = total_steps(deployment)
        self.unit = step_unit(deployment)
        self.terminal = terminal and not cli.json and not cli.quiet
        self._ascii = self.terminal and not _can_draw_blocks()
        self._open_step: int | None = None  # the step whose live line is on screen, unfinished

    def begin(self, deployment: Deployment) -> None:
        if self.cli.quiet:
            click.echo(deployment.id)
        elif not self.cli.json:
            click.echo(start_line(deployment))

    def __call__(self, event: DeploymentEvent) -> None:
        if self.cli.quiet:
            return
        if self.cli.json:
            _json_line(event)
        elif self.terminal:
            self._redraw(event)
        else:
            click.echo(event_line(event, self.total, self.unit))

    def _redraw(self, event: DeploymentEvent) -> None:
        if self._open_step is not None and event.step != self._open_step:
            click.echo("")  # the previous step's line stays on screen as history
        line = progress_line(event.state, event.step, self.total, event.traffic_percent,
                             ascii_only=self._ascii, unit=self.unit)
        click.echo(f"\r{line}\x1b[K", nl=False)
        sys.stdout.flush()
        self._open_step = event.step

    def end_line(self) -> None:
        if self._open_step is not None:
            click.echo("")
            self._open_step = None

    def finish(self, final: Deployment) -> int:
        self.end_line()
        if self.cli.json:
            _json_line(final)
        elif not self.cli.quiet:
            click.echo(final_line(final))
        return exit_code(final)


def _json_line(message: DeploymentEvent | Deployment) -> None:
    click.echo(json.dumps(out.to_json(message), separators=(",", ":")))
    sys.stdout.flush()  # a consumer reading the pipe sees each event as it happens


def follow(cli: CliContext, deployment: Deployment) -> int:
    """Print the deployment's events until a final state; the exit code for its outcome."""
    follower = Follower(cli, deployment, terminal=stdout_is_terminal())
    follower.begin(deployment)
    try:
        final = cli.client.wait_for_deployment(deployment.id, on_event=follower)
    except KeyboardInterrupt:
        follower.end_line()
        click.echo(f"Stopped watching; deployment {deployment.id} goes on "
                   f"(modelctl deployments watch {deployment.id}).", err=True)
        return EXIT_INTERRUPTED
    except BaseException:
        follower.end_line()  # the error line must not land on the end of a progress line
        raise
    return follower.finish(final)
