"""docker-compose.yml and the Dockerfile, checked offline (no Docker engine is needed)."""

from __future__ import annotations

import re
import subprocess

import yaml
from observability_support import ROOT, require_tool


def _compose() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_file_is_valid() -> None:
    done = subprocess.run([require_tool("docker-compose"), "-f", "docker-compose.yml", "config", "-q"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stderr == "", done.stderr


def test_every_mounted_path_exists() -> None:
    mounts = [volume.split(":")[0] for service in _compose()["services"].values()
              for volume in service.get("volumes", []) if volume.startswith(".")]
    assert {"./prometheus", "./grafana/provisioning", "./grafana/dashboards"} <= set(mounts)
    for source in mounts:
        assert (ROOT / source).exists(), f"docker-compose.yml mounts {source}, which does not exist"
    assert (ROOT / _compose()["services"]["modelctl"]["build"] / "Dockerfile").exists()


def test_services_are_wired_together() -> None:
    services = _compose()["services"]
    assert set(services) == {"modelctl", "prometheus", "grafana"}
    assert "9464:9464" in services["modelctl"]["ports"] and "50051:50051" in services["modelctl"]["ports"]
    scrape = yaml.safe_load((ROOT / "prometheus" / "prometheus.yml").read_text())["scrape_configs"][0]
    assert scrape["static_configs"][0]["targets"] == ["modelctl:9464"]
    datasource = yaml.safe_load((ROOT / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text())
    assert datasource["datasources"][0]["url"] == "http://prometheus:9090"
    assert "9090:9090" in services["prometheus"]["ports"] and "3000:3000" in services["grafana"]["ports"]
    # The Grafana version the dashboards' JSON was written for, pinned: no floating tag.
    assert re.fullmatch(r"grafana/grafana:11\.\d+\.\d+", services["grafana"]["image"])
    assert re.fullmatch(r"prom/prometheus:v\d+\.\d+\.\d+", services["prometheus"]["image"])


def test_dockerfile_runs_as_non_root_with_data_on_a_volume_and_a_grpc_healthcheck() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim", text, re.M)
    assert re.search(r"^USER modelctl$", text, re.M)
    assert 'VOLUME ["/data"]' in text and "MODELCTL_SERVER_DATA_DIR=/data" in text
    # Prometheus in another container must reach /metrics: listen on every interface.
    assert "MODELCTL_SERVER_METRICS_ADDRESS=0.0.0.0:9464" in text
    assert re.search(r'^\s*CMD \["python", "-m", "modelctl_server.healthcheck"', text, re.M)
    # The probe module ships in the wheel the image installs.
    assert (ROOT / "server" / "healthcheck.py").exists()
