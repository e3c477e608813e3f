"""`modelctl drift show`: a model version's drift against its reference, for people or scripts."""

from __future__ import annotations

import click

from ..types import DriftReport, FeatureDrift, FeatureType, ReferenceSource
from . import _output as out
from ._context import CliContext, pass_cli
from ._params import DURATION, complete_model_names
from ._parsing import format_duration

_SOURCES = {
    ReferenceSource.REFERENCE_SOURCE_REFERENCE_SAMPLES: "reference samples",
    ReferenceSource.REFERENCE_SOURCE_FIRST_LIVE_VALUES: "first live values",
}


@click.group()
def drift() -> None:
    """See how a model version's inputs, outputs and accuracy drift from its reference."""


@drift.command()
@click.argument("name", shell_complete=complete_model_names)
@click.option("--version", "version", metavar="V", help="The version to look at (default: the live version).")
@click.option("--window", type=DURATION, default=None, metavar="DURATION",
              help="How far back from now, e.g. 15m or 1h (default: the server's drift.window).")
@pass_cli
def show(cli: CliContext, name: str, version: str | None, window: float | None) -> None:
    """Show the drift report of model NAME: scores, threshold, and each feature's PSI and test.

    With -q, prints the names of the drifted features (and "predictions"), one per line.
    """
    report = cli.client.get_drift_report(name, version, window)
    drifted = [f.name for f in report.features if f.drifted] + (["predictions"] if report.predictions.drifted else [])
    out.emit(cli, report, table=lambda: report_text(report), ids=lambda: drifted)


def report_text(r: DriftReport) -> str:
    start, end = r.window_start.ToDatetime(), r.window_end.ToDatetime()
    window = f"{out.timestamp(r.window_start)} .. {out.timestamp(r.window_end)}"
    if end > start:
        window += f" ({format_duration((end - start).total_seconds())})"
    accuracy = ""
    if r.HasField("reference_accuracy") or r.HasField("window_accuracy"):
        accuracy = (f"reference {_ratio(r, 'reference_accuracy')}, window {_ratio(r, 'window_accuracy')}")
    summary = out.render_fields([
        ("Model", r.model),
        ("Version", r.version),
        ("Drifted", "YES" if r.drifted else "no"),
        ("Data score", f"{r.data_score:.4f} (largest feature PSI)"),
        ("Prior score", f"{r.prior_score:.4f} (PSI of predictions)"),
        ("Concept score", f"{r.concept_score:.4f} (accuracy drop)"),
        ("Threshold", f"{r.threshold:g}"),
        ("Accuracy", accuracy),
        ("Reference", f"{_SOURCES.get(r.reference_source, 'none yet')}, {r.reference_samples} values"),
        ("Window", window),
        ("Window samples", r.window_samples),
    ])
    rows = [_row(f) for f in [*r.features, r.predictions]]
    table = out.render_table(("FEATURE", "TYPE", "PSI", "KS", "KS P", "CHI2", "CHI2 P", "REF", "WINDOW", "DRIFTED",
                              "NOTE"), rows)
    notes = "\n".join(f"  - {note}" for note in r.notes)
    return "\n\n".join(part for part in (summary, table, f"Notes:\n{notes}" if notes else "") if part)


def _row(f: FeatureDrift) -> tuple[object, ...]:
    numeric = f.type == FeatureType.FEATURE_TYPE_NUMERIC
    judged = not f.note
    return (f.name, "numeric" if numeric else "categorical",
            f"{f.psi:.4f}" if judged else "",
            f"{f.ks_statistic:.4f}" if judged and numeric else "",
            f"{f.ks_p_value:.3g}" if judged and numeric else "",
            f"{f.chi_square:.2f}" if judged and not numeric else "",
            f"{f.chi_square_p_value:.3g}" if judged and not numeric else "",
            f.reference_samples, f.window_samples,
            ("YES" if f.drifted else "no") if judged else "", f.note)


def _ratio(r: DriftReport, field: str) -> str:
    return f"{getattr(r, field):.3f}" if r.HasField(field) else out.MISSING
