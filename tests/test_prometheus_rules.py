"""prometheus/: the scrape config, the rules, and promtool's unit tests of every alerting rule."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml
from observability_support import PROMETHEUS_DIR, require_tool


def _promtool(*args: str, cwd: Path = PROMETHEUS_DIR, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([require_tool("promtool"), *args], cwd=cwd, input=stdin, capture_output=True, text=True,
                          timeout=60)


def _alert_names() -> set[str]:
    names = set()
    for path in (PROMETHEUS_DIR / "rules").glob("*.yml"):
        for group in yaml.safe_load(path.read_text())["groups"]:
            names |= {rule["alert"] for rule in group["rules"] if "alert" in rule}
    return names


def test_config_is_valid_and_scrapes_modelctl_every_5s() -> None:
    done = _promtool("check", "config", "prometheus.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    assert config["global"]["scrape_interval"] == "5s"
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "modelctl")
    assert job["static_configs"][0]["targets"] == ["modelctl:9464"]  # the compose service


def test_rules_are_valid() -> None:
    rules = sorted(str(p.relative_to(PROMETHEUS_DIR)) for p in (PROMETHEUS_DIR / "rules").glob("*.yml"))
    done = _promtool("check", "rules", *rules)
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_unit_tests_pass() -> None:
    tests = sorted(str(p.relative_to(PROMETHEUS_DIR)) for p in (PROMETHEUS_DIR / "tests").glob("*.yml"))
    assert tests
    done = _promtool("test", "rules", *tests)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alerting_rule_is_shown_firing_by_a_unit_test() -> None:
    fired: set[str] = set()
    for path in (PROMETHEUS_DIR / "tests").glob("*.yml"):
        for case in yaml.safe_load(path.read_text())["tests"]:
            fired |= {t["alertname"] for t in case.get("alert_rule_test", []) if t.get("exp_alerts")}
    alerts = _alert_names()
    assert {"ModelctlControllerDown", "ModelctlModelErrorRateHigh", "ModelctlModelLatencyP95High",
            "ModelctlDriftHigh", "ModelctlRollback", "ModelctlNotificationsFailing",
            "ModelctlNotificationBacklogGrowing"} <= alerts
    assert alerts - fired == set(), "alerting rules without a firing unit test"


def test_thresholds_match_the_gate_defaults() -> None:
    from modelctl_server.config import ThresholdSettings

    t = ThresholdSettings()
    rules = {rule["alert"]: rule["expr"] for path in (PROMETHEUS_DIR / "rules").glob("*.yml")
             for group in yaml.safe_load(path.read_text())["groups"] for rule in group["rules"] if "alert" in rule}
    assert rules["ModelctlModelErrorRateHigh"].endswith(f"> {t.error_rate:g}")
    assert rules["ModelctlModelLatencyP95High"].endswith(f"> {t.latency_p95_ms / 1000:g}")
    assert rules["ModelctlDriftHigh"].endswith(f"> {t.drift_score:g}")


def test_exporter_output_passes_promtool_check_metrics(live_server) -> None:  # type: ignore[no-untyped-def]
    """The real /metrics of a controller that has served calls: promtool's linter reports nothing."""
    import urllib.request

    import grpc

    from modelctl.v1 import controller_pb2_grpc, registry_pb2

    with grpc.insecure_channel(live_server.address) as channel:
        api = controller_pb2_grpc.ModelControllerStub(channel)
        metadata = [("authorization", f"Bearer {live_server.admin_token}")]
        api.ListModels(registry_pb2.ListModelsRequest(), metadata=metadata, timeout=10)
        try:
            api.GetModel(registry_pb2.GetModelRequest(name="missing"), metadata=metadata, timeout=10)
        except grpc.RpcError:
            pass
    body = urllib.request.urlopen(f"http://127.0.0.1:{live_server.app.metrics.port}/metrics", timeout=5).read()
    assert b"modelctl_rpc_requests_total" in body and b"\nprocess_cpu_seconds_total " in body
    done = _promtool("check", "metrics", stdin=body.decode())
    assert done.returncode == 0 and done.stdout + done.stderr == "", done.stdout + done.stderr
