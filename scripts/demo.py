"""`make demo`: modelctl's whole story in a few minutes, on SQLite, with a simulated fleet.

    python scripts/demo.py [--fast] [--keep-running] [--instances N]

It starts `modelctl-server` (SQLite in a temporary directory, free ports, a
config file written for the demo), a webhook receiver standing in for Slack, a
simulated fleet (`demo_fleet`: serving instances, traffic routed with
`TrafficRouter` and reported with `ReportMetrics`, an alert subscriber) and a
pipeline service (`modelctl.PipelineAgent`). Then it tells ten steps, running the
real `modelctl` CLI and printing what it prints, and checks each outcome through
the SDK. It exits 0 when every step behaved as expected, 1 naming the step that
did not, 130 on Ctrl-C; in every case it stops what it started and deletes the
directory. `--keep-running` leaves the server and the fleet up until Ctrl-C.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from demo_fleet import Behaviour, Fleet, World  # noqa: E402
from demo_harness import Cli, ServerProcess, StepFailed, Style, WebhookReceiver, Workspace, shell_env  # noqa: E402
from demo_story import Story  # noqa: E402

import modelctl  # noqa: E402


@dataclass(frozen=True)
class Pace:
    """The demo's intervals. `--fast` is for the test suite; both are far shorter than production defaults."""

    canary_interval: str
    default_interval: str
    drift_window: str
    min_samples: int
    tick: float
    per_tick: int
    load_seconds: float

    @staticmethod
    def of(fast: bool) -> Pace:
        if fast:
            return Pace("600ms", "400ms", "10s", 100, 0.1, 200, 0.1)
        return Pace("2s", "1s", "20s", 100, 0.1, 200, 0.3)


def server_config(pace: Pace, receiver: WebhookReceiver, metrics_address: str) -> str:
    """The config file the demo's server runs with (printed by the demo, see docs/configuration.md)."""
    return f"""\
# modelctl-server --config modelctl.toml  (written by scripts/demo.py)
[server]
grpc_address = "127.0.0.1:0"        # any free port; the server prints the one it got
metrics_address = "{metrics_address}"
data_dir = "data"                     # relative to the working directory: SQLite file, artifacts, admin.token
shutdown_grace = "5s"

[deployment]                          # defaults for rollouts that name none (production: 30s steps)
step_interval = "{pace.default_interval}"
min_samples = {pace.min_samples}
progress_deadline = "30s"
bake_time = "1s"
reconcile_interval = "100ms"
heartbeat_interval = "1s"

[drift]
window = "{pace.drift_window}"                      # production: 1h

[alerts]
evaluate_interval = "1s"              # production: 10s
window = "10s"

[pipelines]
check_interval = "200ms"

[notifications]
urls = ["{receiver.apprise_url}"]
min_severity = "WARNING"
backoff = "200ms"
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fast", action="store_true", help="shorter steps and waits (the test suite uses it)")
    parser.add_argument("--keep-running", action="store_true",
                        help="after the story, leave the server and the fleet running until Ctrl-C")
    parser.add_argument("--instances", type=int, default=4, help="simulated serving instances (default 4)")
    parser.add_argument("--metrics-address", default="127.0.0.1:0",
                        help="where the server serves /metrics (default: a free port on 127.0.0.1)")
    args = parser.parse_args(argv)
    style = Style(sys.stdout.isatty())
    started = time.monotonic()

    def interrupted(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    workspace = Workspace()
    story: Story | None = None
    told = False  # every step passed and --keep-running is waiting: Ctrl-C is then the normal end
    code = 0
    try:
        story = start(workspace, style, Pace.of(args.fast), args)
        story.tell()
        print(style.green(style.bold(f"\nAll 10 steps behaved as expected in {time.monotonic() - started:.0f} s.")))
        if args.keep_running:
            told = True
            story.keep_running()
    except StepFailed as exc:
        where = story.current if story is not None else "setup"
        print(style.red(style.bold(f"\nDEMO FAILED at {where}: {exc}")), flush=True)
        if story is not None:
            print(style.dim("server log (last lines):\n" + story.server.log_tail()), flush=True)
        code = 1
    except Exception as exc:  # noqa: BLE001 - a bug in a step is that step's failure too
        where = story.current if story is not None else "setup"
        traceback.print_exc()
        print(style.red(style.bold(f"\nDEMO FAILED at {where}: {type(exc).__name__}: {exc}")), flush=True)
        code = 1
    except KeyboardInterrupt:
        print("\ninterrupted: stopping the fleet and the server, removing " + str(workspace.path), flush=True)
        code = 0 if told else 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not stop the cleanup halfway
        problems = workspace.close()
        for problem in problems:
            print(style.red(f"cleanup: {problem}"), flush=True)
        print(f"cleaned up: server stopped, fleet stopped, {workspace.path} removed "
              f"({time.monotonic() - started:.0f} s in all)", flush=True)
    return code


def start(workspace: Workspace, style: Style, pace: Pace, args: argparse.Namespace) -> Story:
    print(style.bold(f"modelctl demo — everything lives in {workspace.path} and goes away at the end"))
    receiver = WebhookReceiver()
    workspace.on_close("webhook receiver", receiver.stop)
    print(f"webhook receiver (stands in for Slack/PagerDuty) on 127.0.0.1:{receiver.port}")
    server = ServerProcess(workspace, server_config(pace, receiver, args.metrics_address))
    print(f"$ modelctl-server --config {server.config_file}   (pid {server.pid})")
    server.wait_listening()
    token = server.admin_token
    print(f"listening on {server.address}, /metrics on port {server.metrics_port}; "
          f"admin token from {server.data_dir / 'admin.token'}")
    print(style.dim(f"export MODELCTL_ADDR={server.address} MODELCTL_TOKEN=$(cat {server.data_dir / 'admin.token'})"))
    cli = Cli(shell_env(server.address, token), style, workspace.path)
    workspace.on_close("running modelctl command", cli.stop)
    client = modelctl.Client(server.address, token=token)
    workspace.on_close("SDK client", client.close)
    world = World()
    world.behaviours.update({"3": Behaviour(error_rate=0.35), "4": Behaviour(conversion=0.16),
                             "4.1": Behaviour(conversion=0.16, latency_ms=25.0),
                             "5": Behaviour(conversion=0.17, latency_ms=25.0)})
    fleet = Fleet(server.address, token, world, instances=args.instances, tick=pace.tick, per_tick=pace.per_tick,
                  load_seconds=pace.load_seconds)
    workspace.on_close("simulated fleet", fleet.stop)
    return Story(style=style, pace=pace, workspace=workspace, server=server, cli=cli, client=client, fleet=fleet,
                 world=world, receiver=receiver)


if __name__ == "__main__":
    sys.exit(main())
