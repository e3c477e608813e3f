"""The conditions evaluated every `alerts.evaluate_interval`: thresholds, drift, and the controller's health.

Each rule looks at one thing and says, per fingerprint, whether the condition
fires (a `Signal`), has cleared (the fingerprint in `cleared`), or cannot be
judged yet (neither: too few samples, no report). Only the engine turns that
into alerts, so these stay pure and testable with plain values.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Iterable, Protocol, Sequence

from ..config import AlertSettings, ThresholdSettings
from ..telemetry.window import MetricsSource
from .model import AlertKind, Severity, Signal, fingerprint


@dataclass
class Evaluation:
    signals: list[Signal] = field(default_factory=list)
    #: Fingerprints whose condition was judged and does not hold.
    cleared: set[str] = field(default_factory=set)
    #: Kinds whose rule saw every condition that can still hold: an open alert of such a kind that no
    #: signal repeats has cleared too (e.g. its experiment stopped, so nothing names it any more).
    exhaustive: set[AlertKind] = field(default_factory=set)

    def extend(self, other: Evaluation) -> None:
        self.signals.extend(other.signals)
        self.cleared |= other.cleared
        self.exhaustive |= other.exhaustive


# --- thresholds ---------------------------------------------------------------------------------------------

def evaluate_thresholds(metrics: MetricsSource, series: Iterable[tuple[str, str]], now: dt.datetime,
                        alerts: AlertSettings, thresholds: ThresholdSettings) -> Evaluation:
    """Error rate and p95 latency of every model version that reports metrics, rollout or not."""
    out = Evaluation()
    since = now - dt.timedelta(seconds=alerts.window)
    window = f"over the last {alerts.window:g}s"
    for model, version in series:
        stats = metrics.window(model, version, since, now)
        fp = fingerprint(AlertKind.THRESHOLD, model, version, "error_rate")
        if stats.requests >= alerts.min_samples:
            if stats.error_rate > thresholds.error_rate:
                out.signals.append(Signal(
                    AlertKind.THRESHOLD, "error_rate", Severity.parse(alerts.error_rate_severity),
                    f"error rate {stats.error_rate:.1%} > {thresholds.error_rate:.1%} {window} "
                    f"({stats.errors} of {stats.requests} requests)", model, version,
                    labels={"value": f"{stats.error_rate:.6g}", "threshold": f"{thresholds.error_rate:g}"},
                    periodic=True))
            else:
                out.cleared.add(fp)
        elif stats.requests == 0:
            out.cleared.add(fp)  # nothing served, nothing failing
        fp = fingerprint(AlertKind.THRESHOLD, model, version, "latency_p95")
        p95 = stats.latency_p95_ms
        if stats.latency_samples >= alerts.min_samples and p95 is not None:
            if p95 > thresholds.latency_p95_ms:
                out.signals.append(Signal(
                    AlertKind.THRESHOLD, "latency_p95", Severity.parse(alerts.latency_severity),
                    f"p95 latency {p95:.0f} ms > {thresholds.latency_p95_ms:g} ms {window} "
                    f"({stats.latency_samples:g} timed requests)", model, version,
                    labels={"value": f"{p95:.6g}", "threshold": f"{thresholds.latency_p95_ms:g}"},
                    periodic=True))
            else:
                out.cleared.add(fp)
        elif stats.latency_samples == 0:
            out.cleared.add(fp)
    return out


# --- drift --------------------------------------------------------------------------------------------------

class DriftReport(Protocol):
    """What the drift rule reads of a drift report (`server/drift`'s report has these)."""

    drifted: bool
    data_score: float
    threshold: float


class DriftReader(Protocol):
    """Drift reports per model version; `DriftService` is one. None or an error means no verdict yet."""

    def report(self, model: str, version: str, window_seconds: float | None) -> Any: ...


def evaluate_drift(reader: DriftReader, series: Iterable[tuple[str, str]], window_seconds: float | None,
                   severity: Severity) -> Evaluation:
    out = Evaluation()
    for model, version in series:
        try:
            report = reader.report(model, version, window_seconds)
        except Exception:  # noqa: BLE001 - no profile yet, unknown version: no verdict, not a crash
            continue
        if report is None:
            continue
        fp = fingerprint(AlertKind.DRIFT, model, version, "drift")
        if not report.drifted:
            out.cleared.add(fp)
            continue
        features = [getattr(f, "name", str(f)) for f in getattr(report, "features", ()) or ()
                    if getattr(f, "drifted", False)]
        which = f"; drifted features: {', '.join(features[:10])}" if features else ""
        scores = (f"data {report.data_score:.3f}, prior {getattr(report, 'prior_score', 0.0):.3f}, "
                  f"concept {getattr(report, 'concept_score', 0.0):.3f}")
        out.signals.append(Signal(
            AlertKind.DRIFT, "drift", severity,
            f"drift detected ({scores}; threshold {report.threshold:g}){which}", model, version,
            labels={"data_score": f"{report.data_score:.6g}", "threshold": f"{report.threshold:g}"}, periodic=True))
    return out


# --- experiments --------------------------------------------------------------------------------------------

class ExperimentReader(Protocol):
    """Experiments with their verdicts; `ExperimentService` is one (its `list` pages newest first).

    Each item has `.experiment` (id, model, control_version, treatment_version, treatment_percent)
    and `.result` (sample_ratio_mismatch, srm_p_value, significant, winner, p_value, summary, and
    per arm `.control.samples`, `.treatment.samples`).
    """

    def list(self, *, model: str | None = None, states: Any = None, after: str | None = None,
             limit: int = 100) -> Sequence[Any]: ...


#: What one page of running experiments may hold; a model runs at most one experiment.
EXPERIMENT_PAGE = 100


def running_experiments(reader: ExperimentReader) -> list[Any]:
    """Every running experiment with its verdict now, page after page."""
    # imported here: the experiments package imports the deployments engine, which imports the store,
    # which imports these alert records
    from ..experiments.states import ExperimentState

    found: list[Any] = []
    after: str | None = None
    while True:
        page = list(reader.list(states=[ExperimentState.RUNNING], after=after, limit=EXPERIMENT_PAGE))
        found += page
        if len(page) < EXPERIMENT_PAGE:
            return found
        after = page[-1].experiment.id


def evaluate_experiments(views: Iterable[Any], srm_severity: Severity,
                         significance_severity: Severity | None) -> Evaluation:
    """A broken split (sample-ratio mismatch) per running experiment, and optionally its significance.

    Fingerprinted by the experiment's model and treatment version. Exhaustive: `views` are all the
    running experiments, so an open alert of an experiment no longer among them (stopped) resolves.
    """
    out = Evaluation(exhaustive={AlertKind.EXPERIMENT})
    for view in views:
        exp, result = view.experiment, view.result
        model, version = exp.model, exp.treatment_version
        labels = {"experiment_id": exp.id, "control_version": exp.control_version,
                  "srm_p_value": f"{result.srm_p_value:.6g}"}
        srm = fingerprint(AlertKind.EXPERIMENT, model, version, "sample_ratio_mismatch")
        if result.sample_ratio_mismatch:
            share = exp.treatment_percent
            out.signals.append(Signal(
                AlertKind.EXPERIMENT, "sample_ratio_mismatch", srm_severity,
                f"experiment {exp.id}: sample ratio mismatch (p = {result.srm_p_value:.2g}): control "
                f"{result.control.samples} vs treatment {result.treatment.samples} samples for a "
                f"{100 - share:g}/{share:g} split; the split is broken and the results cannot be trusted "
                f"(check the router's assignment and each version's reporting)", model, version,
                labels=labels, periodic=True))
        else:
            out.cleared.add(srm)
        if significance_severity is not None and result.significant:
            winner = result.winner or "neither arm"
            out.signals.append(Signal(
                AlertKind.EXPERIMENT, "significant", significance_severity,
                f"experiment {exp.id} reached significance: {winner} wins (p = {result.p_value:.2g}); "
                f"{result.summary}. Stop it (`modelctl experiments stop {exp.id} --promote-winner`)",
                model, version, labels={**labels, "winner": result.winner or ""}, periodic=True))
    return out


# --- the controller itself ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class SystemReading:
    """What the system sampler last measured, and how each background component is doing."""

    cpu_percent: float
    memory_percent: float
    loop_lag_seconds: float
    database_reachable: bool
    #: (name, failed, detail) per component.
    components: Sequence[tuple[str, bool, str]] = ()


def evaluate_system(r: SystemReading, alerts: AlertSettings) -> Evaluation:
    out = Evaluation()
    checks = [
        ("cpu", r.cpu_percent > alerts.cpu_percent, alerts.system_severity,
         f"system CPU at {r.cpu_percent:.0f} % (> {alerts.cpu_percent:g} %)"),
        ("memory", r.memory_percent > alerts.memory_percent, alerts.system_severity,
         f"system memory at {r.memory_percent:.0f} % used (> {alerts.memory_percent:g} %)"),
        ("loop_lag", r.loop_lag_seconds > alerts.loop_lag, alerts.system_severity,
         f"event loop lagging {r.loop_lag_seconds * 1000:.0f} ms (> {alerts.loop_lag * 1000:g} ms)"),
        ("database", not r.database_reachable, alerts.database_severity, "the database is unreachable"),
    ]
    checks += [(f"component:{name}", failed, alerts.component_severity,
                f"background component {name} failed: {detail or 'no detail'}")
               for name, failed, detail in r.components]
    for rule, firing, severity, message in checks:
        if firing:
            out.signals.append(Signal(AlertKind.SYSTEM, rule, Severity.parse(severity), message, periodic=True))
        else:
            out.cleared.add(fingerprint(AlertKind.SYSTEM, "", "", rule))
    return out
