"""Alerts: one engine every source raises through (`engine`), fingerprints, silences, rules and rotation.

Only the plain records are re-exported here: the engine imports the store, which imports these records.
"""

from .model import Alert, AlertEvent, AlertFilter, AlertKind, AlertState, Change, Severity, Signal, Silence
from .rules import DriftReader, DriftReport, SystemReading

__all__ = ["Alert", "AlertEvent", "AlertFilter", "AlertKind", "AlertState", "Change", "DriftReader", "DriftReport",
           "Severity", "Signal", "Silence", "SystemReading"]
