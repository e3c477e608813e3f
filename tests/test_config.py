"""Settings: defaults, TOML, environment overrides, and one clear error per bad key."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelctl_server.config import ConfigError, load_settings
from modelctl_server.durations import DurationError, format_duration, parse_duration


def test_defaults_need_no_file() -> None:
    s = load_settings(None, {})
    assert s.server.grpc_address == "127.0.0.1:50051"
    assert s.server.metrics_address == "127.0.0.1:9464"
    assert s.registry.max_versions == 10
    assert s.deployment.steps == (5, 10, 25, 50, 100)
    assert s.deployment.progress_deadline == 300
    assert (s.thresholds.error_rate, s.thresholds.latency_p95_ms, s.thresholds.drift_score) == (0.05, 1000, 0.1)
    assert s.auth.enabled is True
    assert s.database_url.startswith("sqlite:///") and s.database_url.endswith("modelctl.db")


def test_toml_then_environment(tmp_path: Path) -> None:
    f = tmp_path / "modelctl.toml"
    f.write_text('[server]\ndata_dir = "/srv/mc"\n[deployment]\nsteps = [10, 50, 100]\nstep_interval = "5s"\n'
                 '[registry]\nmax_versions = 4\n')
    s = load_settings(f, {"MODELCTL_REGISTRY_MAX_VERSIONS": "7", "MODELCTL_AUTH_ENABLED": "false",
                          "MODELCTL_DATABASE_URL": "postgresql+psycopg://u@h/db"})
    assert s.server.data_dir == "/srv/mc"
    assert s.deployment.steps == (10, 50, 100) and s.deployment.step_interval == 5
    assert s.registry.max_versions == 7  # the environment wins over the file
    assert s.auth.enabled is False
    assert s.database_url == "postgresql+psycopg://u@h/db"
    assert s.config_file == str(f)


@pytest.mark.parametrize("env,key", [
    ({"MODELCTL_SERVER_GRPC_ADDRESS": "nonsense"}, "server.grpc_address"),
    ({"MODELCTL_SERVER_METRICS_ADDRESS": "127.0.0.1:99999"}, "server.metrics_address"),
    ({"MODELCTL_REGISTRY_MAX_VERSIONS": "ten"}, "registry.max_versions"),
    ({"MODELCTL_REGISTRY_MAX_VERSIONS": "0"}, "registry.max_versions"),
    ({"MODELCTL_AUTH_ENABLED": "maybe"}, "auth.enabled"),
    ({"MODELCTL_DEPLOYMENT_STEP_INTERVAL": "10ms"}, "deployment.step_interval"),
    ({"MODELCTL_DEPLOYMENT_STEP_INTERVAL": "soon"}, "deployment.step_interval"),
    ({"MODELCTL_DEPLOYMENT_STEPS": "50,10,100"}, "deployment.steps"),
    ({"MODELCTL_DEPLOYMENT_STEPS": "5,10"}, "deployment.steps"),
    ({"MODELCTL_THRESHOLDS_ERROR_RATE": "1.5"}, "thresholds.error_rate"),
    ({"MODELCTL_DATABASE_URL": "mysql://x"}, "database.url"),
    ({"MODELCTL_SERVER_TLS_CERT": "/nope.pem", "MODELCTL_SERVER_TLS_KEY": "/nope.key"}, "server.tls_cert"),
    ({"MODELCTL_SERVER_TLS_KEY": "/nope.key"}, "server.tls_cert"),
    ({"MODELCTL_NOTIFICATIONS_MIN_SEVERITY": "LOUD"}, "notifications.min_severity"),
])
def test_bad_values_name_the_key(env: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(None, env)
    assert str(err.value).startswith(key), str(err.value)
    assert "\n" not in str(err.value)


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.toml", {})
    bad = tmp_path / "bad.toml"
    bad.write_text("[server\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(bad, {})
    bad.write_text("[srever]\nx = 1\n")
    with pytest.raises(ConfigError, match="^srever: unknown config section"):
        load_settings(bad, {})
    bad.write_text("[server]\ngrpc_adress = 'x'\n")
    with pytest.raises(ConfigError, match="^server.grpc_adress: unknown key"):
        load_settings(bad, {})


@pytest.mark.parametrize("text,seconds", [("500ms", 0.5), ("30s", 30), ("5m", 300), ("1h30m", 5400), ("2", 2),
                                          ("1.5s", 1.5), ("1d", 86400)])
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5 minutes", "m5", "5x", "-"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(DurationError):
        parse_duration(text)


def test_format_duration_round_trips() -> None:
    for seconds in (0.1, 0.5, 1, 30, 90, 300, 5400):
        assert parse_duration(format_duration(seconds)) == pytest.approx(seconds)
