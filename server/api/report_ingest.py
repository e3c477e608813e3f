"""What an accepted ReportMetrics does, for a batch of reports at once: journal, fold in, fast-fail.

`ReportMetrics` validates a report on the event loop, then hands it to one ingest thread
(`BatchWorker`), which takes every report that queued up while it was busy and:

1. checks what needs state (a feature keeping its kind) across the batch, in arrival order;
2. journals all of them in one transaction, each with its experiment sums (a savepoint each), so a
   report is counted everywhere or nowhere and one report's failure loses no other;
3. folds them into the metrics windows, the drift profiles and the Prometheus series (all derived from
   the journal: a failure there is logged, and the stored reports are still answered);
4. evaluates fast-fail once per model the batch touched, with every version it reported: a
   critical gate breached by these very reports rolls back before any of them is answered.

Every caller gets back its own outcome. The events of the batch's checks go to one report that is
answered, which announces them; the others get none, so nothing is announced twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from ..deployments.model import DeploymentEvent
from ..errors import ValidationError
from ..telemetry.sample import TelemetrySample
from ..telemetry.store import Report
from .batch_worker import BatchWorker
from .services import Services

log = logging.getLogger(__name__)

#: Reports one transaction may carry; the queue rarely holds more than the callers in flight.
MAX_BATCH = 64


@dataclass
class _Pending:
    """One report on its way through a batch."""

    samples: list[TelemetrySample]
    live: list[TelemetrySample] = field(default_factory=list)
    reports: list[Report] = field(default_factory=list)
    events: list[DeploymentEvent] = field(default_factory=list)
    error: BaseException | None = None


def worker(s: Services) -> BatchWorker[list[TelemetrySample], list[DeploymentEvent]]:
    """The ingest thread of `s`: submit a validated report's samples, get back the events it must announce."""
    return BatchWorker(lambda reports: ingest_batch(s, reports), name="modelctl-ingest", max_batch=MAX_BATCH)


def ingest_batch(s: Services, reports: list[list[TelemetrySample]]) -> list[list[DeploymentEvent] | BaseException]:
    """One outcome per report, in order: the deployment events to announce, or why it was refused."""
    pending = [_Pending(samples) for samples in reports]
    refused = s.drift.check([x for p in pending for x in p.samples])
    if refused:
        if len(pending) == 1:
            return [ValidationError(refused)]
        # Someone's features are refused: judge the reports one by one, in order, as if each came alone
        # (a later report may depend on a kind an earlier, refused one would have set).
        return [ingest_batch(s, [p.samples])[0] for p in pending]
    _journal(s, pending)
    accepted = [p for p in pending if p.error is None]
    _fold(s, accepted)
    _check_deployments(s, accepted)
    return [p.events if p.error is None else p.error for p in pending]


def _journal(s: Services, pending: list[_Pending]) -> None:
    """Journal every report in one transaction; a report that could not be stored gets its error."""
    stored: list[_Pending] = []
    entries = []
    for p in pending:
        p.live = [x for x in p.samples if not x.reference]
        try:
            p.reports = [s.metrics.prepare(x.model, x.version, requests=x.requests, errors=x.errors,
                                           latency_ms=x.latency_ms, at=x.at,
                                           latency_quantiles={0.95: x.latency_p95_ms}
                                           if x.latency_p95_ms is not None else None)
                         for x in p.live]
            also = s.experiments.journal_hook(p.live)
        except Exception as exc:  # noqa: BLE001 - this report's answer; the others of the batch go on
            p.error = exc
            continue
        if p.reports or also is not None:
            stored.append(p)
            entries.append((p.reports, also))
    for p, error in zip(stored, s.journal.append_all(entries)):
        p.error = error


def _fold(s: Services, accepted: list[_Pending]) -> None:
    """Into the windows, the Prometheus series and the drift profiles.

    All three are derived from the journaled reports (a restart rebuilds the windows and profiles from the
    journal), so a failure here is logged and the callers are still answered: their reports are stored, and
    an error would make them send the same reports again, to be counted twice."""
    traffic: dict[tuple[str, str], list[TelemetrySample]] = {}
    for p in accepted:
        for report in p.reports:
            try:
                s.metrics.add(report)
            except Exception:  # noqa: BLE001 - derived state; the report is journaled (see above)
                log.exception("folding a report of %s version %s into the metrics windows failed; the report is "
                              "kept in the journal and counted again after a restart", report.model, report.version)
        for sample in p.live:
            traffic.setdefault((sample.model, sample.version), []).append(sample)
    for (model, version), samples in traffic.items():
        latencies = [x.latency_ms for x in samples if len(x.latency_ms)]
        try:
            s.recorder.observe_model_traffic(model, version, sum(x.requests for x in samples),
                                             sum(x.errors for x in samples),
                                             np.concatenate(latencies) if latencies else _NO_VALUES)
        except Exception:  # noqa: BLE001 - derived state; the reports are journaled
            log.exception("recording the traffic of %s version %s in the Prometheus series failed", model, version)
    try:
        s.drift.ingest([x for p in accepted for x in p.samples])
    except Exception:  # noqa: BLE001 - the reports are journaled and will be answered: drift is derived from them
        log.exception("folding reports into the drift profiles failed; the reports themselves are kept")


_NO_VALUES = np.empty(0, dtype=np.float64)


def _check_deployments(s: Services, accepted: list[_Pending]) -> None:
    """Fast-fail once per model, with every version the batch reported for it."""
    versions: dict[str, set[str]] = {}
    for p in accepted:
        for sample in p.samples:
            versions.setdefault(sample.model, set()).add(sample.version)
    events: list[DeploymentEvent] = []
    for model in sorted(versions):
        try:
            events += s.deployments.on_metrics(model, versions[model])
        except Exception as exc:  # noqa: BLE001 - the reports are stored; their callers learn the check failed
            for p in accepted:
                if p.error is None and any(x.model == model for x in p.samples):
                    p.error = exc
    # One answered caller announces them all, so nothing is announced twice.
    owner = next((p for p in accepted if p.error is None), None)
    if owner is not None:
        owner.events = events
