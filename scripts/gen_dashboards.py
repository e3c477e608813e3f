"""Writes grafana/dashboards/*.json, the six dashboards Grafana provisions, from the plain dicts below.

    python scripts/gen_dashboards.py           # regenerate (commit the JSON: it is what Grafana loads)
    python scripts/gen_dashboards.py --check   # exit 1 if the committed JSON differs (a test runs this)

Written for Grafana 11 (schemaVersion 39; docker-compose.yml pins the image). Every panel reads
Prometheus through the `datasource` variable, so the files import into any Grafana as well.
The metric names behind each panel are listed in docs/observability.md; tests/test_observability_panels.py
runs every query below against a real Prometheus scraping a real controller.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent.parent / "grafana" / "dashboards"
SCHEMA_VERSION = 39
DS = {"type": "prometheus", "uid": "${datasource}"}
#: The deployment phases in the order `modelctl_deployment_state` lists them, numbered 1..8 for the timeline.
PHASES = ("PENDING", "PROGRESSING", "PAUSED", "SUCCEEDED", "ROLLING_BACK", "ROLLED_BACK", "ABORTED", "FAILED")
PHASE_COLOURS = {"PENDING": "blue", "PROGRESSING": "yellow", "PAUSED": "purple", "SUCCEEDED": "green",
                 "ROLLING_BACK": "orange", "ROLLED_BACK": "red", "ABORTED": "dark-red", "FAILED": "dark-red"}
MV = 'model=~"$model", version=~"$version"'  # the model/version selector of filtered panels

Panel = dict[str, Any]


# --- building blocks ------------------------------------------------------------------------------------------

def target(expr: str, legend: str = "", *, instant: bool = False, table: bool = False) -> dict[str, Any]:
    t: dict[str, Any] = {"datasource": DS, "expr": expr, "legendFormat": legend or "__auto",
                         "range": not instant, "instant": instant}
    if table:
        t["format"] = "table"
    return t


def thresholds(*steps: tuple[float | None, str]) -> dict[str, Any]:
    return {"mode": "absolute", "steps": [{"color": colour, "value": value} for value, colour in steps]}


def _panel(kind: str, title: str, targets: list[dict[str, Any]], *, w: int, h: int, unit: str = "short",
           description: str = "", decimals: int | None = None, th: dict[str, Any] | None = None,
           mappings: list[dict[str, Any]] | None = None, custom: dict[str, Any] | None = None,
           options: dict[str, Any] | None = None, minimum: float | None = None,
           maximum: float | None = None) -> Panel:
    defaults: dict[str, Any] = {"unit": unit, "color": {"mode": "palette-classic"},
                                "thresholds": th or thresholds((None, "green"))}
    if decimals is not None:
        defaults["decimals"] = decimals
    if mappings:
        defaults["mappings"] = mappings
    if custom:
        defaults["custom"] = custom
    if minimum is not None:
        defaults["min"] = minimum
    if maximum is not None:
        defaults["max"] = maximum
    for i, t in enumerate(targets):
        t["refId"] = chr(ord("A") + i)
    return {"type": kind, "title": title, "description": description, "datasource": DS,
            "gridPos": {"w": w, "h": h}, "targets": targets,
            "fieldConfig": {"defaults": defaults, "overrides": []}, "options": options or {}}


def timeseries(title: str, targets: list[dict[str, Any]], *, unit: str = "short", w: int = 12, h: int = 8,
               threshold_line: float | None = None, stack: bool = False, bars: bool = False,
               **kw: Any) -> Panel:
    custom: dict[str, Any] = {"drawStyle": "bars" if bars else "line", "lineWidth": 1, "fillOpacity": 10,
                              "showPoints": "never", "spanNulls": True,
                              "stacking": {"mode": "normal" if stack else "none", "group": "A"}}
    th = None
    if threshold_line is not None:
        # The threshold is drawn as a dashed red line across the graph.
        custom["thresholdsStyle"] = {"mode": "dashed"}
        th = thresholds((None, "transparent"), (threshold_line, "red"))
    return _panel("timeseries", title, targets, unit=unit, w=w, h=h, th=th, custom=custom,
                  options={"legend": {"displayMode": "table", "placement": "right", "showLegend": True,
                                      "calcs": ["lastNotNull", "max"]},
                           "tooltip": {"mode": "multi", "sort": "desc"}}, **kw)


def stat(title: str, targets: list[dict[str, Any]], *, unit: str = "short", w: int = 6, h: int = 4,
         colour_mode: str = "value", **kw: Any) -> Panel:
    return _panel("stat", title, targets, unit=unit, w=w, h=h,
                  options={"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                           "colorMode": colour_mode, "graphMode": "area", "textMode": "auto",
                           "justifyMode": "auto", "orientation": "auto"}, **kw)


def bargauge(title: str, targets: list[dict[str, Any]], *, unit: str = "short", w: int = 12, h: int = 8,
             **kw: Any) -> Panel:
    return _panel("bargauge", title, targets, unit=unit, w=w, h=h,
                  options={"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                           "displayMode": "gradient", "orientation": "horizontal", "showUnfilled": True,
                           "valueMode": "color", "namePlacement": "auto", "sizing": "auto"}, **kw)


def table(title: str, expr: str, columns: dict[str, str], *, w: int = 12, h: int = 8,
          description: str = "") -> Panel:
    """An instant query as a table; `columns` maps the labels to show to their headers, in order."""
    p = _panel("table", title, [target(expr, instant=True, table=True)], w=w, h=h, description=description,
               options={"showHeader": True, "cellHeight": "sm", "footer": {"show": False}})
    keep = {name: True for name in columns}
    p["transformations"] = [{"id": "organize", "options": {
        "excludeByName": {"Time": True, "Value": "Value" not in columns, "__name__": True, "job": True,
                          "instance": True},
        "includeByName": keep, "indexByName": {name: i for i, name in enumerate(columns)},
        "renameByName": columns}}]
    return p


def state_timeline(title: str, targets: list[dict[str, Any]], mappings: list[dict[str, Any]], *, w: int = 24,
                   h: int = 6, **kw: Any) -> Panel:
    return _panel("state-timeline", title, targets, w=w, h=h, mappings=mappings,
                  custom={"fillOpacity": 80, "lineWidth": 0},
                  options={"mergeValues": True, "showValue": "auto", "alignValue": "left", "rowHeight": 0.9,
                           "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True}}, **kw)


def value_map(values: dict[str, tuple[str, str]]) -> list[dict[str, Any]]:
    """{value: (text, colour)} as a Grafana value mapping."""
    return [{"type": "value", "options": {v: {"text": text, "color": colour, "index": i}
                                          for i, (v, (text, colour)) in enumerate(values.items())}}]


def query_var(name: str, label: str, query: str, *, multi: bool = True) -> dict[str, Any]:
    """A template variable from `label_values(...)`; All means the regex `.*`."""
    return {"type": "query", "name": name, "label": label, "datasource": DS,
            "definition": query, "query": {"query": query, "refId": f"{name}-values", "qryType": 1},
            "refresh": 2, "sort": 1, "multi": multi, "includeAll": True, "allValue": ".*",
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]}, "options": [],
            "hide": 0, "regex": "", "skipUrlSync": False}


DATASOURCE_VAR = {"type": "datasource", "name": "datasource", "label": "Prometheus", "query": "prometheus",
                  "current": {"selected": False, "text": "Prometheus", "value": "prometheus"}, "hide": 0,
                  "refresh": 1, "regex": "", "options": [], "skipUrlSync": False}


def dashboard(uid: str, title: str, description: str, rows: list[list[Panel]], *,
              variables: list[dict[str, Any]] = (), annotations: list[dict[str, Any]] = ()) -> dict[str, Any]:  # type: ignore[assignment]
    """Lays `rows` out left to right, top to bottom (24 columns), numbering panels 1, 2, 3..."""
    panels: list[Panel] = []
    y = 0
    for row in rows:
        x = 0
        for p in row:
            p["gridPos"].update(x=x, y=y)
            p["id"] = len(panels) + 1
            x += p["gridPos"]["w"]
            panels.append(p)
        assert x <= 24, f"{title}: a row is wider than 24 columns"
        y += max(p["gridPos"]["h"] for p in row)
    builtin = {"builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"}, "enable": True,
               "hide": True, "iconColor": "rgba(0, 211, 255, 1)", "name": "Annotations & Alerts",
               "type": "dashboard"}
    return {
        "uid": uid, "title": title, "description": description, "tags": ["modelctl"],
        "editable": True, "graphTooltip": 1, "refresh": "5s", "schemaVersion": SCHEMA_VERSION, "version": 1,
        "time": {"from": "now-1h", "to": "now"}, "timezone": "browser", "timepicker": {},
        "fiscalYearStartMonth": 0, "liveNow": False, "weekStart": "",
        "links": [{"type": "dashboards", "tags": ["modelctl"], "asDropdown": True, "title": "modelctl",
                   "includeVars": True, "keepTime": True, "icon": "external link", "targetBlank": False,
                   "tooltip": "", "url": ""}],
        "templating": {"list": [DATASOURCE_VAR, *variables]},
        "annotations": {"list": [builtin, *annotations]},
        "panels": panels,
    }


def annotation(name: str, expr: str, title: str, text: str, colour: str) -> dict[str, Any]:
    return {"name": name, "datasource": DS, "enable": True, "hide": False, "iconColor": colour, "expr": expr,
            "step": "$__interval", "titleFormat": title, "textFormat": text, "tagKeys": "model",
            "useValueForTime": False}


# --- the dashboards -------------------------------------------------------------------------------------------

def overview() -> dict[str, Any]:
    active = "|".join(("PENDING", "PROGRESSING", "PAUSED", "ROLLING_BACK"))
    return dashboard("modelctl-overview", "modelctl / Overview",
                     "The controller at a glance: is it up, what serves, what is rolling out, what is alerting.", [
        [stat("Controller", [target('up{job="modelctl"}', "{{instance}}", instant=True)], w=4,
              mappings=value_map({"1": ("UP", "green"), "0": ("DOWN", "red")}), colour_mode="background",
              description="Prometheus' scrape of the controller (up{job=\"modelctl\"})."),
         stat("Models", [target("modelctl_registry_models", "models", instant=True)], w=4,
              description="Registered models (modelctl_registry_models)."),
         stat("Active rollouts", [target(f'sum(modelctl_deployment_state{{modelctl_deployment_state=~"{active}"}})',
                                         "active", instant=True)], w=4,
              description="Deployments pending, progressing, paused or rolling back."),
         stat("Rollbacks in range", [target("sum(increase(modelctl_rollbacks_total[$__range]))", "rollbacks",
                                            instant=True)], w=4, decimals=0,
              th=thresholds((None, "green"), (1, "red")), colour_mode="background"),
         stat("Open alerts by severity", [target("sum by (severity) (modelctl_alerts_open)", "{{severity}}",
                                                 instant=True)], w=8,
              th=thresholds((None, "green"), (1, "orange")))],
        [table("Live version per model", "modelctl_model_live_version_info", {"model": "Model",
                                                                              "version": "Live version"},
               w=8, description="modelctl_model_live_version_info: one series per (model, live version)."),
         timeseries("Requests and errors per second, all models",
                    [target("sum(job:modelctl_model_requests:rate1m)", "requests"),
                     target("sum(job:modelctl_model_errors:rate1m)", "errors")], unit="reqps", w=8),
         timeseries("Error ratio, all models", [target("job:modelctl_model_error_ratio:rate1m", "errors / requests")],
                    unit="percentunit", w=8, threshold_line=0.05,
                    description="Failed requests per request over 1 m; the dashed line is thresholds.error_rate.")],
        [timeseries("Requests per second by model",
                    [target("sum by (model) (model_version:modelctl_model_requests:rate1m)", "{{model}}")],
                    unit="reqps"),
         timeseries("Highest drift score by model", [target("max by (model) (modelctl_drift_score)", "{{model}}")],
                    threshold_line=0.1, description="The largest drift score of any version and kind; "
                                                    "the dashed line is thresholds.drift_score.")],
    ])


def model_performance() -> dict[str, Any]:
    sel = MV
    rate = "[$__rate_interval]"

    def quantile(q: str) -> dict[str, Any]:
        return target(f"histogram_quantile({q}, sum by (model, version, le) "
                      f"(rate(modelctl_model_latency_seconds_bucket{{{sel}}}{rate})))",
                      f"{{{{model}}}} {{{{version}}}} p{q[2:].ljust(2, '0')}")
    return dashboard("modelctl-model-performance", "modelctl / Model performance",
                     "How each model version serves, as its serving code reports it with ReportMetrics.", [
        [timeseries("Request rate by version",
                    [target(f"sum by (model, version) (rate(modelctl_model_requests_total{{{sel}}}{rate}))",
                            "{{model}} {{version}}")], unit="reqps"),
         timeseries("Error ratio by version",
                    [target(f"sum by (model, version) (rate(modelctl_model_errors_total{{{sel}}}{rate})) / "
                            f"sum by (model, version) (rate(modelctl_model_requests_total{{{sel}}}{rate}))",
                            "{{model}} {{version}}")], unit="percentunit", threshold_line=0.05,
                    description="Errors per request; the dashed line is thresholds.error_rate (0.05).")],
        [timeseries("Latency p50 / p95 / p99 by version", [quantile("0.5"), quantile("0.95"), quantile("0.99")],
                    unit="s", w=16, threshold_line=1.0,
                    description="From modelctl_model_latency_seconds (individual latency_ms values reported); "
                                "the dashed line is thresholds.latency_p95_ms."),
         stat("Requests in range", [target(f"sum by (model, version) "
                                           f"(increase(modelctl_model_requests_total{{{sel}}}[$__range]))",
                                           "{{model}} {{version}}", instant=True)], w=8, h=8, decimals=0)],
        [timeseries("Traffic share by version", [target(f"modelctl_traffic_weight_percent{{{sel}}}",
                                                        "{{model}} {{version}}")],
                    unit="percent", w=24, minimum=0, maximum=100,
                    description="The split the controller hands to routers, percent per version.")],
    ], variables=[query_var("model", "Model", "label_values(modelctl_model_requests_total, model)"),
                  query_var("version", "Version",
                            'label_values(modelctl_model_requests_total{model=~"$model"}, version)')])


def ab_testing() -> dict[str, Any]:
    sel = 'model=~"$model"'
    return dashboard("modelctl-ab-testing", "modelctl / A/B testing",
                     "Running experiments: the arms, the metric per arm, lift, significance and sample health.", [
        [table("Arms", f"modelctl_experiment_samples{{{sel}}}",
               {"model": "Model", "arm": "Arm", "version": "Version", "Value": "Samples"}, w=8),
         stat("Lift (treatment vs control)", [target(f"modelctl_experiment_lift{{{sel}}}", "{{model}}",
                                                      instant=True)], unit="percentunit", w=4, h=8, decimals=1),
         stat("Significant", [target(f"modelctl_experiment_significant{{{sel}}}", "{{model}}", instant=True)],
              w=4, h=8, mappings=value_map({"1": ("yes", "green"), "0": ("not yet", "text")}),
              colour_mode="background"),
         bargauge("Samples vs needed", [
             target(f"min by (model) (modelctl_experiment_samples{{{sel}}})", "{{model}} samples (smallest arm)",
                    instant=True),
             target(f"modelctl_experiment_samples_needed{{{sel}}}", "{{model}} still needed per arm",
                    instant=True)], w=8,
             description="The smaller arm's samples against what each arm still needs for the configured power.")],
        [timeseries("Metric per arm", [target(f"modelctl_experiment_value{{{sel}}}",
                                              "{{model}} {{arm}} ({{version}})")], w=12,
                    description="The experiment metric per arm: a rate 0-1, a mean value, or a mean latency."),
         timeseries("p-value", [target(f"modelctl_experiment_p_value{{{sel}}}", "{{model}}")], w=12,
                    threshold_line=0.05, minimum=0, maximum=1,
                    description="Always-valid p-value; a winner is named only once it is below alpha.")],
        [timeseries("Samples per arm", [target(f"modelctl_experiment_samples{{{sel}}}", "{{model}} {{arm}}")],
                    w=12),
         timeseries("Sample-ratio mismatch p-value", [target(f"modelctl_experiment_srm_p_value{{{sel}}}",
                                                             "{{model}}")],
                    w=12, threshold_line=0.001, minimum=0, maximum=1,
                    description="A tiny p-value means the arms did not get the split they were given: "
                                "do not trust the result.")],
    ], variables=[query_var("model", "Model", "label_values(modelctl_experiment_samples, model)")])


def drift() -> dict[str, Any]:
    sel = MV
    return dashboard("modelctl-drift", "modelctl / Drift",
                     "Data, prior and concept drift per model version against its reference profile.", [
        [timeseries("Drift score by kind", [target(f"modelctl_drift_score{{{sel}}}",
                                                   "{{model}} {{version}} {{kind}}")],
                    w=16, threshold_line=0.1, minimum=0,
                    description="data: the largest feature PSI; prior: PSI of the predictions; concept: the "
                                "drop of labelled accuracy. The dashed line is thresholds.drift_score (0.1)."),
         stat("Current score by kind", [target(f"max by (kind) (modelctl_drift_score{{{sel}}})", "{{kind}}",
                                               instant=True)], w=8, h=8, decimals=3,
              th=thresholds((None, "green"), (0.1, "red")), colour_mode="background")],
        [bargauge("Per-feature PSI", [target(f"modelctl_drift_feature_psi{{{sel}}}",
                                             "{{model}} {{version}} {{feature}}", instant=True)],
                  w=10, h=10, decimals=3, th=thresholds((None, "green"), (0.1, "yellow"), (0.25, "red")),
                  description="Population stability index per input feature: < 0.1 stable, 0.1-0.25 "
                              "moderate, > 0.25 a significant shift."),
         timeseries("Per-feature PSI over time", [target(f"modelctl_drift_feature_psi{{{sel}}}",
                                                         "{{model}} {{version}} {{feature}}")],
                    w=14, h=10, threshold_line=0.1, minimum=0)],
    ], variables=[query_var("model", "Model", "label_values(modelctl_drift_score, model)"),
                  query_var("version", "Version", 'label_values(modelctl_drift_score{model=~"$model"}, version)')])


def system_health() -> dict[str, Any]:
    rate = "[$__rate_interval]"
    return dashboard("modelctl-system-health", "modelctl / System health",
                     "The controller process, its machine, its gRPC API, its database and its notification outbox.", [
        [stat("Uptime", [target('time() - process_start_time_seconds{job="modelctl"}', "uptime", instant=True)],
              unit="s", w=4),
         stat("Database", [target("modelctl_database_up", "database", instant=True)], w=4,
              mappings=value_map({"1": ("UP", "green"), "0": ("DOWN", "red")}), colour_mode="background"),
         stat("Open streams", [target("sum(modelctl_streams_open)", "streams", instant=True)], w=4),
         stat("Models / versions", [target("modelctl_registry_models", "models", instant=True),
                                    target("modelctl_registry_versions", "versions", instant=True)], w=4),
         stat("Open file descriptors", [target('process_open_fds{job="modelctl"}', "open", instant=True)], w=4),
         stat("Resident memory", [target('process_resident_memory_bytes{job="modelctl"}', "RSS", instant=True)],
              unit="bytes", w=4)],
        [timeseries("CPU", [target(f'rate(process_cpu_seconds_total{{job="modelctl"}}{rate})', "controller (cores)"),
                            target("modelctl_system_cpu_usage_ratio", "machine (0-1, all cores)")], w=8,
                    description="The controller in CPU seconds per second (cores); the machine as a ratio."),
         timeseries("Memory", [target('process_resident_memory_bytes{job="modelctl"}', "controller RSS"),
                               target("modelctl_system_memory_used_ratio * modelctl_system_memory_total_bytes",
                                      "machine used")], unit="bytes", w=8),
         timeseries("Event-loop lag", [target("modelctl_event_loop_lag_seconds", "lag")], unit="s", w=8,
                    threshold_line=0.1,
                    description="How late the asyncio loop runs a ready callback; high means blocking work "
                                "on the loop.")],
        [timeseries("RPC rate by RPC", [target(f"sum by (rpc) (rate(modelctl_rpc_requests_total{rate}))",
                                               "{{rpc}}")], unit="reqps", w=8),
         timeseries("RPC p95 latency by RPC", [target(f"histogram_quantile(0.95, sum by (rpc, le) "
                                                      f"(rate(modelctl_rpc_duration_seconds_bucket{rate})))",
                                                      "{{rpc}}")], unit="s", w=8),
         timeseries("RPC errors by RPC and code",
                    [target(f'sum by (rpc, code) (rate(modelctl_rpc_requests_total{{code!="OK"}}{rate}))',
                            "{{rpc}} {{code}}")], unit="reqps", w=8,
                    description="Every status but OK: client mistakes (NOT_FOUND, INVALID_ARGUMENT) and "
                                "server failures alike.")],
        [timeseries("In-flight RPCs and open streams", [
            target("sum by (rpc) (modelctl_rpc_in_flight)", "{{rpc}}"),
            target("sum by (kind) (modelctl_streams_open)", "stream: {{kind}}")], w=8),
         timeseries("Database latency", [
             target("kind:modelctl_database_transaction_seconds:p95_rate1m", "p95 {{kind}} transaction"),
             target("modelctl_database_latency_seconds", "ping")], unit="s", w=8,
             description="Transactions from begin to commit, lock waits included (1 m p95), and the "
                         "5-second health ping."),
         timeseries("Notification outbox", [
             target("sum by (scheme) (modelctl_notifications_pending)", "pending {{scheme}}"),
             target(f"sum by (scheme) (rate(modelctl_notifications_sent_total{rate}))", "sent/s {{scheme}}"),
             target(f"sum by (scheme) (rate(modelctl_notifications_failed_total{rate}))",
                    "given up/s {{scheme}}")], w=8,
             description="Deliveries still owed, delivered, and given up after notifications.max_attempts.")],
    ])


def rollouts() -> dict[str, Any]:
    sel = 'model=~"$model"'
    # One number per model for the phase it is in (exactly one phase is 1), mapped back to its name.
    phase_expr = "sum by (model) (" + " or ".join(
        f'modelctl_deployment_state{{{sel}, modelctl_deployment_state="{phase}"}} * {i}'
        for i, phase in enumerate(PHASES, start=1)) + ")"
    phase_map = value_map({str(i): (phase, PHASE_COLOURS[phase]) for i, phase in enumerate(PHASES, start=1)})
    return dashboard("modelctl-rollouts", "modelctl / Rollouts",
                     "Deployments as they progress: the split over time, steps, phases, gate verdicts; "
                     "rollbacks are drawn as annotations.", [
        [timeseries("Traffic split over time", [target(f"modelctl_traffic_weight_percent{{{sel}}}",
                                                        "{{model}} {{version}}")],
                    unit="percent", w=16, minimum=0, maximum=100,
                    description="modelctl_traffic_weight_percent: percent per version, as the controller "
                                "hands it to routers."),
         stat("Rollbacks in range", [target(f"sum by (model) (increase(modelctl_rollbacks_total{{{sel}}}[$__range]))",
                                            "{{model}}", instant=True)], w=4, h=8, decimals=0,
              th=thresholds((None, "green"), (1, "red"))),
         stat("Breach to rollback (p95 in range)", [target(
             "histogram_quantile(0.95, sum by (le) (increase(modelctl_breach_to_rollback_seconds_bucket[$__range])))",
             "p95", instant=True)], unit="s", w=4, h=8,
             description="From the report that breached a critical gate to traffic back on the stable version.")],
        [state_timeline("Phase", [target(phase_expr, "{{model}}")], phase_map,
                        description="The phase of each model's newest deployment (modelctl_deployment_state).")],
        [timeseries("Step", [target(f"modelctl_deployment_step{{{sel}}}", "{{model}}")], w=8, decimals=0),
         timeseries("Traffic on the new version", [target(f"modelctl_deployment_traffic_percent{{{sel}}}",
                                                          "{{model}}")], unit="percent", w=8,
                    minimum=0, maximum=100),
         stat("Deploy to SUCCEEDED (median in range)", [target(
             "histogram_quantile(0.5, sum by (strategy, le) "
             "(increase(modelctl_deployment_time_to_success_seconds_bucket[$__range])))", "{{strategy}}",
             instant=True)], unit="s", w=8, h=8,
             description="From DeployModel to SUCCEEDED, by strategy.")],
        [bargauge("Gate verdicts since the controller started",
                  [target(f"sum by (gate, verdict) (modelctl_gate_evaluations_total{{{sel}}})",
                          "{{gate}} {{verdict}}", instant=True)], w=10, decimals=0,
                  th=thresholds((None, "blue"))),
         timeseries("Gate evaluations per second", [
             target(f"sum by (gate, verdict) (rate(modelctl_gate_evaluations_total{{{sel}}}[$__rate_interval]))",
                    "{{gate}} {{verdict}}")], w=14, bars=True)],
    ], variables=[query_var("model", "Model", "label_values(modelctl_deployment_step, model)")],
        annotations=[annotation("Rollbacks", f"sum by (model) (increase(modelctl_rollbacks_total{{{sel}}}[1m])) > 0",
                                "Rollback", "{{model}} rolled back", "red"),
                     annotation("Succeeded", f'sum by (model) (increase(modelctl_deployment_events_total'
                                             f'{{{sel}, kind="SUCCEEDED"}}[1m])) > 0',
                                "Deployment succeeded", "{{model}}: new version live", "green")])


DASHBOARDS = {"overview": overview, "model-performance": model_performance, "ab-testing": ab_testing,
              "drift": drift, "system-health": system_health, "rollouts": rollouts}


def render() -> dict[str, str]:
    """File name -> JSON text of every dashboard."""
    return {f"{name}.json": json.dumps(build(), indent=2, sort_keys=True) + "\n" for name, build in DASHBOARDS.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the committed JSON is not current")
    args = parser.parse_args(argv)
    files = render()
    stale = sorted(name for name, text in files.items()
                   if not (OUT / name).exists() or (OUT / name).read_text() != text)
    extra = sorted(p.name for p in OUT.glob("*.json") if p.name not in files) if OUT.exists() else []
    if args.check:
        if stale or extra:
            print(f"grafana/dashboards is not current: {', '.join(stale + extra)}; "
                  "run `python scripts/gen_dashboards.py`", file=sys.stderr)
            return 1
        return 0
    OUT.mkdir(parents=True, exist_ok=True)
    for name in extra:
        (OUT / name).unlink()
    for name, text in files.items():
        (OUT / name).write_text(text)
    print(f"wrote {len(files)} dashboards to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
