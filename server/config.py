"""Settings: one TOML file, every key overridable by `MODELCTL_<SECTION>_<KEY>`.

`load_settings` is the only function that reads the environment. It returns a
frozen `Settings` that `main` passes to the constructors that need it. A bad
value raises `ConfigError` naming the key, and the server stops with that line.
"""

from __future__ import annotations

import dataclasses
import os
import re
import ssl
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from .durations import DurationError, parse_duration


class ConfigError(Exception):
    """A config value is wrong; the message names the key (`section.key`)."""


@dataclass(frozen=True)
class ServerSettings:
    #: gRPC listen address, HOST:PORT (port 0: any free port; the server prints the one it got).
    grpc_address: str = "127.0.0.1:50051"
    #: Prometheus /metrics listen address (its own port, no token).
    metrics_address: str = "127.0.0.1:9464"
    #: SQLite database, uploaded artifacts and the generated admin token (relative to the working directory).
    data_dir: str = "./modelctl-data"
    #: PEM certificate; with tls_key set too, the server speaks TLS.
    tls_cert: str = ""
    #: PEM private key (unencrypted) of tls_cert.
    tls_key: str = ""
    #: When set, clients must present a certificate signed by this CA (mTLS).
    tls_client_ca: str = ""
    #: Largest message either way (bigger is RESOURCE_EXHAUSTED); artifacts stream in chunks, so not their limit.
    max_message_bytes: int = 16 * 1024 * 1024
    #: After SIGTERM, how long to keep serving with health NOT_SERVING so load balancers
    #: stop routing here before the listener closes (Kubernetes: about one readiness period).
    drain_delay: float = 0.0
    #: How long in-flight calls may take to finish after SIGTERM.
    shutdown_grace: float = 10.0
    #: Smallest interval between client keepalive pings the server accepts.
    keepalive_min_ping_interval: float = 10.0
    #: Server pings idle connections this often to detect dead peers on long streams.
    keepalive_time: float = 30.0
    #: A peer that does not answer a keepalive ping within this is dropped.
    keepalive_timeout: float = 10.0
    #: Thread pool for database and disk work (the event loop never blocks on them). ReportMetrics does not
    #: use it: its reports go to one ingest thread of their own, which applies them in batches.
    worker_threads: int = 8


@dataclass(frozen=True)
class DatabaseSettings:
    #: Empty means SQLite at <data_dir>/modelctl.db.
    url: str = ""
    #: Seconds a connection waits on a locked database before failing.
    busy_timeout: float = 30.0


@dataclass(frozen=True)
class RegistrySettings:
    #: Empty means <data_dir>/models.
    models_dir: str = ""
    #: Non-archived versions kept per model; one more archives the oldest that is neither live nor the rollback target.
    max_versions: int = 10
    #: Largest artifact UploadArtifact accepts; beyond it the upload is RESOURCE_EXHAUSTED and removed.
    max_artifact_bytes: int = 10 * 1024 ** 3
    #: Uploaded artifacts no version refers to are deleted once this old (the time to register them).
    orphan_grace: float = 24 * 3600.0


@dataclass(frozen=True)
class DeploymentSettings:
    #: Canary traffic steps in percent, increasing, ending at 100.
    steps: tuple[int, ...] = (5, 10, 25, 50, 100)
    #: Time per canary step (at least 100ms); a rolling batch's too.
    step_interval: float = 30.0
    #: Requests a gate needs in its window before it may pass or fail.
    min_samples: int = 50
    #: Failed gate evaluations before a rollback (a critical gate's breach rolls back at once).
    failure_limit: int = 2
    #: A step that cannot gather min_samples by then fails the deployment (traffic back).
    progress_deadline: float = 300.0
    #: How long immediate and blue-green deployments are watched after the switch.
    bake_time: float = 60.0
    #: How often the reconcile loop ticks when nothing wakes it earlier.
    reconcile_interval: float = 1.0
    #: How often serving instances must heartbeat; silent for 3 intervals means lost.
    heartbeat_interval: float = 5.0


@dataclass(frozen=True)
class ThresholdSettings:
    #: Error-rate gate and alert: errors / requests.
    error_rate: float = 0.05
    #: p95 latency gate and alert, in milliseconds.
    latency_p95_ms: float = 1000.0
    #: Drift gate (the candidate's largest feature PSI) and the drift reports' default threshold.
    drift_score: float = 0.1


@dataclass(frozen=True)
class TelemetrySettings:
    #: Most values one sample may carry in any one list (latencies, predictions, outcome values,
    #: each feature's values); a bigger batch is INVALID_ARGUMENT: split it into several samples.
    max_values_per_sample: int = 10_000


@dataclass(frozen=True)
class DriftSettings:
    #: Without `reference` samples, a version's first this-many live values per feature become its reference.
    reference_size: int = 1000
    #: Most values per feature a reference profile keeps (a larger reference is sampled down evenly).
    reference_max_values: int = 10_000
    #: The window GetDriftReport reads when the request names none.
    window: float = 3600.0
    #: A feature drifts when its PSI exceeds the threshold and its test's p-value is below this.
    alpha: float = 0.01
    #: Input features tracked per model version; values of further features are refused.
    max_features: int = 100
    #: Per-model drift thresholds overriding thresholds.drift_score: "fraud=0.2,churn=0.15" or a TOML table.
    model_thresholds: tuple[str, ...] = ()


@dataclass(frozen=True)
class ExperimentSettings:
    #: Significance level of the sequential test that decides `significant`.
    alpha: float = 0.05
    #: Power used to size samples_needed.
    power: float = 0.8
    #: Smallest relative lift worth detecting when a StartExperiment names none (0.02 = 2 %).
    min_effect: float = 0.02


@dataclass(frozen=True)
class NotificationDestination:
    """One `[[notifications.destinations]]` table: an Apprise URL and which alerts it receives."""

    url: str
    min_severity: str = "WARNING"
    #: Only alerts of these models (empty: every model, and system alerts).
    models: tuple[str, ...] = ()
    #: Only alerts of these kinds: THRESHOLD, DRIFT, DEPLOYMENT, EXPERIMENT, SYSTEM (empty: all).
    kinds: tuple[str, ...] = ()


@dataclass(frozen=True)
class NotificationSettings:
    #: Apprise URLs receiving every alert of at least `min_severity` (MODELCTL_NOTIFICATIONS_URLS, comma-separated).
    urls: tuple[str, ...] = ()
    #: Lowest severity sent to `urls`: INFO, WARNING, ERROR or CRITICAL.
    min_severity: str = "WARNING"
    #: Routed destinations, from the config file only (an array of tables).
    destinations: tuple[NotificationDestination, ...] = ()
    #: Sends of one delivery before it is marked failed. With the default back-off (0.5 s x 1.5, at most
    #: 60 s) 100 sends span about an hour and a half, so an endpoint down for an hour loses nothing.
    max_attempts: int = 100
    #: First retry pause; each next one is 1.5 times longer (with jitter), at most `max_backoff`.
    backoff: float = 0.5
    #: Longest pause between two sends of one delivery.
    max_backoff: float = 60.0
    #: A repeat of an open alert notifies again only after this long (a severity rise notifies at once).
    repeat_interval: float = 4 * 3600.0
    #: Alerts raised within this long go to a destination as one message (0: each on its own).
    group_wait: float = 0.0


@dataclass(frozen=True)
class AlertSettings:
    #: Threshold rules look at this much of each model version's recent traffic.
    window: float = 60.0
    #: A threshold rule needs this many requests (latency: timed requests) in the window to judge.
    min_samples: int = 20
    #: How often thresholds, drift and system health are evaluated.
    evaluate_interval: float = 10.0
    #: Resolved alerts older than this are deleted (open ones never are).
    retention: float = 30 * 86400.0
    #: At most this many alerts are kept; the oldest resolved go first.
    max_history: int = 100_000
    #: Severity of the error-rate threshold rule (thresholds.error_rate over `window`).
    error_rate_severity: str = "ERROR"
    #: Severity of the p95 latency threshold rule (thresholds.latency_p95_ms).
    latency_severity: str = "WARNING"
    #: Severity of a drift report that says drifted.
    drift_severity: str = "WARNING"
    #: A running experiment whose split is broken (sample-ratio mismatch).
    experiment_severity: str = "WARNING"
    #: An INFO alert when a running experiment reaches significance (until it is stopped).
    experiment_significance: bool = True
    #: System rule: the host's CPU use above this percentage.
    cpu_percent: float = 90.0
    #: System rule: the host's memory use above this percentage.
    memory_percent: float = 90.0
    #: System rule: the controller's event loop lagging by more than this.
    loop_lag: float = 0.5
    #: Severity of the CPU, memory and loop-lag rules.
    system_severity: str = "WARNING"
    #: Severity of "database unreachable".
    database_severity: str = "CRITICAL"
    #: Severity of "a background component FAILED".
    component_severity: str = "ERROR"


@dataclass(frozen=True)
class PipelineSettings:
    #: A pipeline silent this long is stale, and an alert says so until it reports again.
    stale_after: float = 60.0
    #: A command nobody acknowledges within this long expires (SendPipelineCommand may set its own).
    command_timeout: float = 300.0
    #: How often deadlines, staleness and the deployments commands started are checked.
    check_interval: float = 1.0
    #: Severity of the stale-pipeline alert.
    stale_severity: str = "WARNING"


@dataclass(frozen=True)
class AuditSettings:
    #: Audit events older than this are deleted.
    retention: float = 365 * 86400.0
    #: At most this many audit events are kept; the oldest go first.
    max_events: int = 1_000_000


@dataclass(frozen=True)
class AuthSettings:
    #: false treats every caller as admin (the server warns loudly at start).
    enabled: bool = True
    #: Where the generated first admin token is written; empty means <data_dir>/admin.token.
    admin_token_file: str = ""


@dataclass(frozen=True)
class Settings:
    server: ServerSettings = field(default_factory=ServerSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    registry: RegistrySettings = field(default_factory=RegistrySettings)
    deployment: DeploymentSettings = field(default_factory=DeploymentSettings)
    thresholds: ThresholdSettings = field(default_factory=ThresholdSettings)
    telemetry: TelemetrySettings = field(default_factory=TelemetrySettings)
    drift: DriftSettings = field(default_factory=DriftSettings)
    experiments: ExperimentSettings = field(default_factory=ExperimentSettings)
    notifications: NotificationSettings = field(default_factory=NotificationSettings)
    alerts: AlertSettings = field(default_factory=AlertSettings)
    pipelines: PipelineSettings = field(default_factory=PipelineSettings)
    audit: AuditSettings = field(default_factory=AuditSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    #: The file these settings came from, for RestartSystem's reload.
    config_file: str = ""

    @classmethod
    def build(cls, config_file: str | os.PathLike[str] | None = None, **sections: Mapping[str, Any]) -> Settings:
        """Settings from code, e.g. `Settings.build(server={"grpc_address": "127.0.0.1:0"})`.

        Each keyword is a section as a mapping of keys to values, written as in the TOML file
        ("30s" or 30.0 for a duration); they are checked exactly as the file and the environment
        are, and a bad one raises `ConfigError` naming it. The environment is not read: what the
        embedding program writes is what it gets.
        """
        return load_settings(config_file, environ={}, overrides=sections)

    @property
    def data_path(self) -> Path:
        return Path(self.server.data_dir).expanduser()

    @property
    def database_url(self) -> str:
        return self.database.url or f"sqlite:///{(self.data_path / 'modelctl.db').resolve()}"

    @property
    def models_path(self) -> Path:
        return Path(self.registry.models_dir).expanduser() if self.registry.models_dir else self.data_path / "models"

    @property
    def admin_token_path(self) -> Path:
        return Path(self.auth.admin_token_file) if self.auth.admin_token_file else self.data_path / "admin.token"

    @property
    def tls_enabled(self) -> bool:
        return bool(self.server.tls_cert)

    def flatten(self) -> dict[str, Any]:
        """Every setting as {"section.key": value}, for diffs on reload."""
        out: dict[str, Any] = {}
        for section in _SECTIONS:
            for f in dataclasses.fields(getattr(self, section)):
                out[f"{section}.{f.name}"] = getattr(getattr(self, section), f.name)
        return out


_SECTIONS = ("server", "database", "registry", "deployment", "thresholds", "telemetry", "drift", "experiments",
             "notifications", "alerts", "pipelines", "audit", "auth")
#: Keys that only take effect when the process starts (listener, TLS, database).
RESTART_ONLY_KEYS = frozenset({
    "server.grpc_address", "server.metrics_address", "server.data_dir", "server.tls_cert", "server.tls_key",
    "server.tls_client_ca", "server.max_message_bytes", "server.keepalive_min_ping_interval",
    "server.keepalive_time", "server.keepalive_timeout", "server.worker_threads", "database.url",
    "registry.models_dir", "auth.enabled", "auth.admin_token_file",
})
_DURATION_KEYS = {"step_interval", "progress_deadline", "bake_time", "reconcile_interval", "heartbeat_interval",
                  "shutdown_grace", "drain_delay", "orphan_grace", "window",
                  "evaluate_interval", "retention", "loop_lag", "backoff", "max_backoff", "repeat_interval",
                  "group_wait", "stale_after", "command_timeout", "check_interval",
                  "keepalive_min_ping_interval", "keepalive_time", "keepalive_timeout", "busy_timeout"}
_ADDRESS_RE = re.compile(r"^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.\-]+):(\d{1,5})$")
_SEVERITIES = ("INFO", "WARNING", "ERROR", "CRITICAL")


def load_settings(config_file: str | os.PathLike[str] | None = None,
                  environ: Mapping[str, str] | None = None, *,
                  overrides: Mapping[str, Mapping[str, Any]] | None = None) -> Settings:
    """Build settings from defaults, then the TOML file, then the environment, then `overrides`.

    `overrides` ({section: {key: value}}) is how a program embedding the controller sets values
    in code; they win over the file and the environment and are validated the same way.
    """
    env = os.environ if environ is None else environ
    raw: dict[str, dict[str, Any]] = {s: {} for s in _SECTIONS}
    if config_file:
        path = Path(config_file)
        try:
            data = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
        for section, values in data.items():
            if section not in raw:
                raise ConfigError(f"{section}: unknown config section (known: {', '.join(_SECTIONS)})")
            if not isinstance(values, dict):
                raise ConfigError(f"{section}: must be a table of keys")
            raw[section].update(values)
    for section in _SECTIONS:
        known = {f.name for f in dataclasses.fields(_section_type(section))}
        for key in known:
            name = f"MODELCTL_{section.upper()}_{key.upper()}"
            if name in env:
                raw[section][key] = env[name]
    for section, values in (overrides or {}).items():
        if section not in raw:
            raise ConfigError(f"{section}: unknown config section (known: {', '.join(_SECTIONS)})")
        if not isinstance(values, Mapping):
            raise ConfigError(f"{section}: must be a mapping of keys")
        raw[section].update(values)
    sections = {s: _build_section(s, raw[s]) for s in _SECTIONS}
    settings = Settings(**sections, config_file=str(config_file or ""))
    _check(settings)
    return settings


def _section_type(section: str) -> type:
    return {
        "server": ServerSettings, "database": DatabaseSettings, "registry": RegistrySettings,
        "deployment": DeploymentSettings, "thresholds": ThresholdSettings, "telemetry": TelemetrySettings,
        "drift": DriftSettings, "experiments": ExperimentSettings,
        "notifications": NotificationSettings, "alerts": AlertSettings, "pipelines": PipelineSettings,
        "audit": AuditSettings,
        "auth": AuthSettings,
    }[section]


def _build_section(section: str, values: dict[str, Any]) -> Any:
    cls = _section_type(section)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        if key not in fields:
            raise ConfigError(f"{section}.{key}: unknown key (known: {', '.join(sorted(fields))})")
        default = fields[key].default
        kwargs[key] = _coerce(f"{section}.{key}", key, value, default)
    return cls(**kwargs)


def _coerce(name: str, key: str, value: Any, default: Any) -> Any:
    if name == "notifications.destinations":
        return _destinations(value)
    try:
        if key in _DURATION_KEYS:
            seconds = parse_duration(value) if isinstance(value, str) else float(value)
            if seconds < 0:
                raise ValueError("must not be negative")
            return seconds
        if isinstance(default, bool):
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError("expected true or false")
        if isinstance(default, int):
            if isinstance(value, bool):
                raise ValueError("expected an integer")
            return int(value)
        if isinstance(default, float):
            return float(value)
        if isinstance(default, tuple) and isinstance(value, dict):  # a TOML table: {name = value}
            return tuple(f"{k}={v}" for k, v in value.items())
        if isinstance(default, tuple):
            items = value if isinstance(value, list) else [v for v in str(value).split(",") if v.strip()]
            if default and isinstance(default[0], int):
                return tuple(int(str(v).strip()) for v in items)
            return tuple(str(v).strip() for v in items)
        if not isinstance(value, str):
            raise ValueError("expected a string")
        return value
    except (ValueError, TypeError, DurationError) as exc:
        raise ConfigError(f"{name}: invalid value {value!r}: {exc}") from None


def _check(s: Settings) -> None:
    for key in ("grpc_address", "metrics_address"):
        value = getattr(s.server, key)
        m = _ADDRESS_RE.fullmatch(value)
        if not m or int(m.group(2)) > 65535:
            raise ConfigError(f"server.{key}: invalid address {value!r} (expected HOST:PORT)")
    if bool(s.server.tls_cert) != bool(s.server.tls_key):
        raise ConfigError("server.tls_cert: tls_cert and tls_key must be set together")
    if s.server.tls_client_ca and not s.server.tls_cert:
        raise ConfigError("server.tls_client_ca: client certificates need tls_cert and tls_key as well")
    for key in ("tls_cert", "tls_key", "tls_client_ca"):
        value = getattr(s.server, key)
        if value and not Path(value).is_file():
            raise ConfigError(f"server.{key}: file {value} does not exist")
    if s.server.tls_cert:
        _check_tls_files(s.server)
    if s.server.max_message_bytes < 1024:
        raise ConfigError("server.max_message_bytes: must be at least 1024")
    if s.server.worker_threads < 1:
        raise ConfigError("server.worker_threads: must be at least 1")
    url = s.database.url
    if url and not (url.startswith("sqlite") or url.startswith("postgresql")):
        raise ConfigError(f"database.url: unsupported database {url.split(':')[0]!r} (use sqlite or postgresql)")
    if not 1 <= s.registry.max_versions <= 10_000:
        raise ConfigError("registry.max_versions: must be between 1 and 10000")
    if s.registry.max_artifact_bytes < 1:
        raise ConfigError("registry.max_artifact_bytes: must be positive")
    d = s.deployment
    if not d.steps or any(not 0 < p <= 100 for p in d.steps) or list(d.steps) != sorted(set(d.steps)):
        raise ConfigError("deployment.steps: must be increasing percentages in 1..100")
    if d.steps[-1] != 100:
        raise ConfigError("deployment.steps: the last step must be 100")
    if d.step_interval < 0.1:
        raise ConfigError("deployment.step_interval: must be at least 100ms")
    if d.min_samples < 1:
        raise ConfigError("deployment.min_samples: must be at least 1")
    if d.failure_limit < 1:
        raise ConfigError("deployment.failure_limit: must be at least 1")
    if d.reconcile_interval <= 0:
        raise ConfigError("deployment.reconcile_interval: must be positive")
    if d.heartbeat_interval < 0.1:
        raise ConfigError("deployment.heartbeat_interval: must be at least 100ms")
    t = s.thresholds
    if not 0 <= t.error_rate <= 1:
        raise ConfigError("thresholds.error_rate: must be between 0 and 1")
    if t.latency_p95_ms <= 0:
        raise ConfigError("thresholds.latency_p95_ms: must be positive")
    if t.drift_score < 0:
        raise ConfigError("thresholds.drift_score: must not be negative")
    if not 1 <= s.telemetry.max_values_per_sample <= 1_000_000:
        raise ConfigError("telemetry.max_values_per_sample: must be between 1 and 1000000")
    dr = s.drift
    if not 10 <= dr.reference_size <= dr.reference_max_values:
        raise ConfigError("drift.reference_size: must be at least 10 and at most drift.reference_max_values")
    if dr.reference_max_values > 1_000_000:
        raise ConfigError("drift.reference_max_values: must be at most 1000000")
    if dr.window <= 0:
        raise ConfigError("drift.window: must be positive")
    if not 0 < dr.alpha < 1:
        raise ConfigError("drift.alpha: must be between 0 and 1")
    if not 1 <= dr.max_features <= 10_000:
        raise ConfigError("drift.max_features: must be between 1 and 10000")
    parse_model_thresholds(dr.model_thresholds)
    ex = s.experiments
    if not 0 < ex.alpha < 0.5:
        raise ConfigError("experiments.alpha: must be between 0 and 0.5")
    if not 0.5 <= ex.power < 1:
        raise ConfigError("experiments.power: must be at least 0.5 and below 1")
    if not 0 < ex.min_effect <= 10:
        raise ConfigError("experiments.min_effect: must be a positive relative lift, e.g. 0.02")
    _check_notifications(s.notifications)
    _check_alerts(s.alerts, s.audit)
    _check_pipelines(s.pipelines)


_ALERT_KINDS = ("THRESHOLD", "DRIFT", "DEPLOYMENT", "EXPERIMENT", "SYSTEM")


def _destinations(value: Any) -> tuple[NotificationDestination, ...]:
    """`[[notifications.destinations]]` tables; each key checked, so a typo is named, not ignored."""
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ConfigError("notifications.destinations: must be an array of tables in the config file "
                          "([[notifications.destinations]] with url, min_severity, models, kinds)")
    out = []
    known = {f.name for f in dataclasses.fields(NotificationDestination)}
    for i, table in enumerate(value):
        where = f"notifications.destinations[{i}]"
        unknown = sorted(set(table) - known)
        if unknown:
            raise ConfigError(f"{where}.{unknown[0]}: unknown key (known: {', '.join(sorted(known))})")
        url = table.get("url")
        if not isinstance(url, str) or not url.strip():
            raise ConfigError(f"{where}.url: an Apprise URL is required, e.g. mailto://... or json://...")
        lists = {}
        for key in ("models", "kinds"):
            items = table.get(key, [])
            if isinstance(items, str):
                items = [v for v in items.split(",") if v.strip()]
            if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
                raise ConfigError(f"{where}.{key}: must be a list of strings")
            lists[key] = tuple(v.strip() for v in items)
        severity = table.get("min_severity", "WARNING")
        if not isinstance(severity, str):
            raise ConfigError(f"{where}.min_severity: must be one of {', '.join(_SEVERITIES)}")
        out.append(NotificationDestination(url=url.strip(), min_severity=severity.strip().upper(),
                                           models=lists["models"],
                                           kinds=tuple(k.upper() for k in lists["kinds"])))
    return tuple(out)


def _check_notifications(n: NotificationSettings) -> None:
    if n.min_severity.upper() not in _SEVERITIES:
        raise ConfigError(f"notifications.min_severity: must be one of {', '.join(_SEVERITIES)}")
    for i, d in enumerate(n.destinations):
        if d.min_severity not in _SEVERITIES:
            raise ConfigError(f"notifications.destinations[{i}].min_severity: must be one of "
                              f"{', '.join(_SEVERITIES)}")
        bad = [k for k in d.kinds if k not in _ALERT_KINDS]
        if bad:
            raise ConfigError(f"notifications.destinations[{i}].kinds: {bad[0]!r} is not one of "
                              f"{', '.join(_ALERT_KINDS)}")
    if not 1 <= n.max_attempts <= 1000:
        raise ConfigError("notifications.max_attempts: must be between 1 and 1000")
    if n.backoff <= 0 or n.max_backoff < n.backoff:
        raise ConfigError("notifications.backoff: must be positive and at most notifications.max_backoff")


def _check_alerts(a: AlertSettings, audit: AuditSettings) -> None:
    if a.window <= 0:
        raise ConfigError("alerts.window: must be positive")
    if a.min_samples < 1:
        raise ConfigError("alerts.min_samples: must be at least 1")
    if a.evaluate_interval < 0.1:
        raise ConfigError("alerts.evaluate_interval: must be at least 100ms")
    if a.retention <= 0:
        raise ConfigError("alerts.retention: must be positive")
    if a.max_history < 1:
        raise ConfigError("alerts.max_history: must be at least 1")
    for key in ("error_rate_severity", "latency_severity", "drift_severity", "experiment_severity",
                "system_severity", "database_severity", "component_severity"):
        if getattr(a, key).upper() not in _SEVERITIES:
            raise ConfigError(f"alerts.{key}: must be one of {', '.join(_SEVERITIES)}")
    for key in ("cpu_percent", "memory_percent"):
        if not 0 < getattr(a, key) <= 100:
            raise ConfigError(f"alerts.{key}: must be a percentage in (0, 100]")
    if a.loop_lag <= 0:
        raise ConfigError("alerts.loop_lag: must be positive")
    if audit.retention <= 0:
        raise ConfigError("audit.retention: must be positive")
    if audit.max_events < 1:
        raise ConfigError("audit.max_events: must be at least 1")


def _check_pipelines(p: PipelineSettings) -> None:
    if p.stale_after < 1:
        raise ConfigError("pipelines.stale_after: must be at least 1s")
    if p.command_timeout < 1:
        raise ConfigError("pipelines.command_timeout: must be at least 1s")
    if not 0.05 <= p.check_interval <= p.stale_after:
        raise ConfigError("pipelines.check_interval: must be at least 50ms and at most pipelines.stale_after")
    if p.stale_severity.upper() not in _SEVERITIES:
        raise ConfigError(f"pipelines.stale_severity: must be one of {', '.join(_SEVERITIES)}")


def parse_model_thresholds(items: tuple[str, ...]) -> dict[str, float]:
    """drift.model_thresholds as {model: threshold}; "fraud=0.2" items."""
    out: dict[str, float] = {}
    for item in items:
        model, sep, value = item.partition("=")
        try:
            threshold = float(value)
        except ValueError:
            threshold = -1.0
        if not sep or not model.strip() or not 0 <= threshold < float("inf"):
            raise ConfigError(f"drift.model_thresholds: {item!r} is not MODEL=THRESHOLD (e.g. fraud=0.2)")
        out[model.strip()] = threshold
    return out


def _check_tls_files(server: ServerSettings) -> None:
    """Load the PEM files the way the server will, so a bad one is named now, not as "failed to bind"."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        ctx.load_verify_locations(cafile=server.tls_cert)
    except (ssl.SSLError, OSError):
        raise ConfigError(f"server.tls_cert: {server.tls_cert} holds no PEM certificate") from None
    try:
        # password="" so that an encrypted key fails here instead of prompting on the terminal.
        ctx.load_cert_chain(server.tls_cert, server.tls_key, password="")
    except (ssl.SSLError, OSError):
        raise ConfigError(f"server.tls_key: {server.tls_key} is not an unencrypted PEM private key "
                          f"matching server.tls_cert") from None
    if server.tls_client_ca:
        try:
            ctx.load_verify_locations(cafile=server.tls_client_ca)
        except (ssl.SSLError, OSError):
            raise ConfigError(f"server.tls_client_ca: {server.tls_client_ca} holds no PEM certificate") from None
