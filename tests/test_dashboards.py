"""grafana/: the committed dashboards are current, complete, and only read metrics that exist.

That every query returns data from a real Prometheus is tests/test_observability_panels.py's job.
"""

from __future__ import annotations

import re
import subprocess
import sys

import yaml
from observability_support import DASHBOARDS_DIR, PROMETHEUS_DIR, ROOT, annotations, dashboards, panels, variables
from prometheus_client import CollectorRegistry

from modelctl_server.metrics.recorder import MetricsRecorder

TITLES = {"Overview", "Model performance", "A/B testing", "Drift", "System health", "Rollouts"}
#: Words in a PromQL expression that are not metric names.
_PROMQL_WORDS = {"sum", "by", "rate", "increase", "histogram_quantile", "max", "min", "or", "and", "unless", "time",
                 "label_values", "le", "model", "version", "gate", "verdict", "strategy", "kind", "rpc", "code",
                 "scheme", "severity", "job", "arm", "feature", "instance", "modelctl_deployment_state_label"}


def _metric_names(expr: str) -> set[str]:
    expr = re.sub(r"\{[^}]*\}", "", expr)       # selectors
    expr = re.sub(r"\[[^]]*\]", "", expr)       # ranges
    expr = re.sub(r'"[^"]*"', "", expr)         # strings
    expr = re.sub(r"\(([a-z_, ]+)\)", lambda m: "" if "," in m[1] or m[1].strip() in _PROMQL_WORDS else m[0], expr)
    return {w for w in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr) if w not in _PROMQL_WORDS}


def _known_series() -> set[str]:
    """Every series name the exporter, Prometheus itself and our recording rules can give."""
    names = {"up"}
    registry = CollectorRegistry()
    MetricsRecorder(registry)
    for family in registry.collect():
        names.add(family.name)
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"], "info": ["_info"]}
        names |= {family.name + s for s in suffixes.get(family.type, [])}
    for path in (PROMETHEUS_DIR / "rules").glob("*.yml"):
        for group in yaml.safe_load(path.read_text())["groups"]:
            names |= {rule["record"] for rule in group["rules"] if "record" in rule}
    return names


def _model_labelled() -> set[str]:
    """Names of the exported metrics that carry a `model` label."""
    recorder = MetricsRecorder(CollectorRegistry())
    names = {c._name for c in vars(recorder).values() if "model" in getattr(c, "_labelnames", ())}
    return names | {n + suffix for n in names for suffix in ("_total", "_bucket", "_sum", "_count")}


def _exprs(dashboard):  # type: ignore[no-untyped-def]
    for panel in panels(dashboard):
        for t in panel.get("targets", []):
            yield panel["title"], t["expr"]
    for v in variables(dashboard):
        yield f"variable {v['name']}", v["query"]["query"]
    for a in annotations(dashboard):
        yield f"annotation {a['name']}", a["expr"]


def test_committed_json_is_what_the_generator_writes() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_dashboards.py"), "--check"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_six_dashboards_refresh_every_5s() -> None:
    boards = dashboards()
    assert {d["title"].removeprefix("modelctl / ") for d in boards.values()} == TITLES
    assert len({d["uid"] for d in boards.values()}) == 6
    for d in boards.values():
        assert d["refresh"] == "5s", d["title"]
        assert [p["id"] for p in panels(d)] == list(range(1, len(list(panels(d))) + 1))
        for panel in panels(d):
            assert panel["targets"], f"{d['title']} / {panel['title']}: no query"
            assert panel["datasource"]["uid"] == "${datasource}"


def test_model_and_version_variables_where_useful() -> None:
    boards = {d["title"].removeprefix("modelctl / "): d for d in dashboards().values()}
    expected = {"Model performance": ["model", "version"], "Drift": ["model", "version"],
                "A/B testing": ["model"], "Rollouts": ["model"]}
    checked = 0
    for title, names in expected.items():
        assert [v["name"] for v in variables(boards[title])] == names, title
        for panel in panels(boards[title]):
            for t in panel["targets"]:
                for metric in _metric_names(t["expr"]) & _model_labelled():
                    selectors = re.findall(rf"\b{metric}\b(\{{[^}}]*\}})?", t["expr"])
                    assert selectors and all("$model" in s for s in selectors), \
                        f"{title} / {panel['title']}: {metric} ignores $model"
                    checked += 1
    assert checked > 20


def test_rollbacks_are_annotations_on_the_rollouts_dashboard() -> None:
    rollouts = dashboards()["rollouts"]
    assert any("modelctl_rollbacks_total" in a["expr"] for a in annotations(rollouts))


def test_every_queried_metric_exists() -> None:
    known = _known_series()
    for d in dashboards().values():
        for where, expr in _exprs(d):
            unknown = _metric_names(expr) - known
            assert not unknown, f"{d['title']} / {where}: {sorted(unknown)} are not exported nor recorded"


def test_home_dashboard_and_provisioning_point_at_the_files() -> None:
    provider = yaml.safe_load((ROOT / "grafana" / "provisioning" / "dashboards" / "modelctl.yml").read_text())
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    grafana = compose["services"]["grafana"]
    mounts = dict(v.split(":")[:2] for v in grafana["volumes"] if v.startswith("./"))
    path = provider["providers"][0]["options"]["path"]
    assert mounts["./grafana/dashboards"] == path
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"{path}/overview.json" and (DASHBOARDS_DIR / "overview.json").exists()
