"""`modelctl experiments start | show | list | stop`: A/B experiments between two versions of a model."""

from __future__ import annotations

import itertools

import click

from .._experiments import EXPERIMENT_STATE_NAMES, METRIC_NAMES, experiment_state_name, metric_name
from ..types import ArmResult, Experiment, ExperimentMetric
from . import _output as out
from ._context import CliContext, pass_cli
from ._params import complete_model_names

#: The server's largest page; a smaller --limit asks for no more than it needs.
MAX_PAGE_SIZE = 1000


@click.group()
def experiments() -> None:
    """Run A/B experiments: split traffic between two versions and judge which serves better."""


@experiments.command()
@click.argument("name", shell_complete=complete_model_names)
@click.option("--control", required=True, metavar="VERSION", help="The version serving today (the live one).")
@click.option("--treatment", required=True, metavar="VERSION", help="The version to compare with it.")
@click.option("--treatment-percent", type=click.FloatRange(0, 100, min_open=True, max_open=True), default=50.0,
              show_default=True, help="Share of traffic on the treatment.")
@click.option("--metric", type=click.Choice(METRIC_NAMES, case_sensitive=False), default="conversion",
              show_default=True, help="conversion and value: higher wins; error-rate and latency: lower wins.")
@click.option("--min-effect", type=click.FloatRange(min=0, min_open=True), metavar="LIFT",
              help="Smallest relative lift worth detecting, e.g. 0.02 for 2 %.  [default: the server's]")
@pass_cli
def start(cli: CliContext, name: str, control: str, treatment: str, treatment_percent: float, metric: str,
          min_effect: float | None) -> None:
    """Start an experiment on model NAME: CONTROL against TREATMENT on a traffic split.

    No deployment of NAME may run meanwhile. With -q, prints the experiment id.
    """
    experiment = cli.client.start_experiment(name, control, treatment, treatment_percent, metric.lower(),
                                             min_effect)
    out.emit(cli, experiment, table=lambda: f"Started experiment {experiment.id}.\n\n" + details(experiment),
             ids=lambda: [experiment.id])


@experiments.command()
@click.argument("experiment_id", metavar="ID")
@pass_cli
def show(cli: CliContext, experiment_id: str) -> None:
    """Show experiment ID with its result computed now."""
    experiment = cli.client.get_experiment(experiment_id)
    out.emit(cli, experiment, table=lambda: details(experiment), ids=lambda: [experiment.id])


@experiments.command("list")
@click.option("--model", default=None, shell_complete=complete_model_names, help="Only experiments of this model.")
@click.option("--state", "states", multiple=True, type=click.Choice(EXPERIMENT_STATE_NAMES, case_sensitive=False),
              help="Only experiments in this state; repeatable.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1),
              help="At most this many experiments, newest first.")
@pass_cli
def list_experiments(cli: CliContext, model: str | None, states: tuple[str, ...], limit: int) -> None:
    """List experiments, newest first."""
    found = list(itertools.islice(
        cli.client.iter_experiments(model, states, page_size=min(limit, MAX_PAGE_SIZE)), limit))
    out.emit(cli, found, table=lambda: experiments_table(found), ids=lambda: [e.id for e in found])


@experiments.command()
@click.argument("experiment_id", metavar="ID")
@click.option("--promote-winner", is_flag=True,
              help="Start a canary deployment of the treatment if it won (the result must be significant); "
                   "if the control won, just stop.")
@click.option("--reason", default="", help="Recorded with the experiment and in the audit log.")
@pass_cli
def stop(cli: CliContext, experiment_id: str, promote_winner: bool, reason: str) -> None:
    """Stop experiment ID: all traffic back on the control version."""
    experiment = cli.client.stop_experiment(experiment_id, promote_winner, reason)
    head = f"Stopped experiment {experiment.id}."
    if experiment.deployment_id:
        head += (f" Canary deployment {experiment.deployment_id} of {experiment.treatment_version} started "
                 f"(modelctl deployments watch {experiment.deployment_id}).")
    out.emit(cli, experiment, table=lambda: f"{head}\n\n" + details(experiment), ids=lambda: [experiment.id])


# --- what people read --------------------------------------------------------------------------------------


def _metric(experiment: Experiment) -> str:
    return metric_name(experiment.metric)


def format_value(metric: int, value: float) -> str:
    """A rate as a percentage, a latency in ms, a value as a number."""
    if metric in (ExperimentMetric.Value("EXPERIMENT_METRIC_CONVERSION"),
                  ExperimentMetric.Value("EXPERIMENT_METRIC_ERROR_RATE")):
        return f"{value * 100:.2f}%"
    if metric == ExperimentMetric.Value("EXPERIMENT_METRIC_LATENCY"):
        return f"{value:.4g} ms"
    return f"{value:.4g}"


def format_p(p: float) -> str:
    return f"{p:.3g}" if p >= 1e-4 else f"{p:.1e}"


def _split(e: Experiment) -> str:
    return f"{100 - e.treatment_percent:g}/{e.treatment_percent:g}"


def experiments_table(found: list[Experiment]) -> str:
    rows = [(e.id, e.model, e.control_version, e.treatment_version, _split(e), _metric(e),
             experiment_state_name(e.state), format_p(e.result.p_value), e.result.winner,
             out.timestamp(e.created_at)) for e in found]
    headers = ("ID", "MODEL", "CONTROL", "TREATMENT", "SPLIT", "METRIC", "STATE", "P-VALUE", "WINNER", "CREATED")
    return out.render_table(headers, rows, empty="No experiments.")


def _arm_row(label: str, arm: ArmResult, metric: int) -> tuple[object, ...]:
    return (label, arm.version, f"{arm.samples:,}", format_value(metric, arm.value) if arm.samples else "",
            f"{arm.std_dev:.4g}" if arm.samples else "")


def details(e: Experiment) -> str:
    r = e.result
    stopped = f"{out.timestamp(e.stopped_at)} by {e.stopped_by or '-'}" if e.stopped_at.seconds else ""
    fields = out.render_fields([
        ("ID", e.id),
        ("Model", e.model),
        ("Control", e.control_version),
        ("Treatment", f"{e.treatment_version} ({e.treatment_percent:g}% of traffic)"),
        ("Metric", f"{_metric(e)} ({r.test}), min effect {e.min_effect:.1%}, alpha {e.alpha:g}, "
                   f"power {e.power:g}"),
        ("State", experiment_state_name(e.state)),
        ("Created", f"{out.timestamp(e.created_at)} by {e.created_by or '-'}"),
        ("Stopped", stopped),
        ("Reason", e.reason),
        ("Deployment", e.deployment_id),
    ])
    arms = out.render_table(("ARM", "VERSION", "SAMPLES", "VALUE", "STD DEV"),
                            [_arm_row("control", r.control, e.metric), _arm_row("treatment", r.treatment, e.metric)])
    has_lift = r.lift != 0 or r.lift_ci_low != 0 or r.lift_ci_high != 0
    measured = min(r.control.samples, r.treatment.samples) > 0 and r.control.value != 0
    needed = (f"{r.samples_needed:,} more per arm to detect a {e.min_effect:.1%} lift with power {e.power:g}"
              if r.samples_needed else ("reached" if measured else "-"))
    srm = (f"MISMATCH: the split is broken (p = {format_p(r.srm_p_value)})" if r.sample_ratio_mismatch
           else f"ok (p = {format_p(r.srm_p_value)})")
    verdict = out.render_fields([
        ("Lift", f"{r.lift:+.1%} (CI {r.lift_ci_low:+.1%} to {r.lift_ci_high:+.1%})" if has_lift else ""),
        ("p-value", f"{format_p(r.p_value)} always-valid; fixed-horizon {format_p(r.fixed_horizon_p_value)}"),
        ("Significant", "yes" if r.significant else "no"),
        ("Winner", r.winner),
        ("Samples needed", needed),
        ("Sample ratio", srm),
        ("Summary", r.summary),
    ])
    return f"{fields}\n\n{arms}\n\n{verdict}"
