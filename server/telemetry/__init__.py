"""Telemetry: model traffic aggregated on ingest and read back over windows."""

from .histogram import LatencyHistogram
from .sample import TelemetrySample
from .store import Ingested, MetricsStore, Report
from .window import DriftSource, MetricsSource, WindowStats

__all__ = ["DriftSource", "Ingested", "LatencyHistogram", "MetricsSource", "MetricsStore", "Report",
           "TelemetrySample", "WindowStats"]
