"""A/B experiments: a traffic split between a control and a treatment version, judged on ingest-time sums."""

from .model import Arm, ArmIncrement, ArmTotals, Experiment, Metric, StartRequest
from .repository import ExperimentRepository, ExperimentTx
from .results import ArmResult, ExperimentResult, analyse
from .service import ExperimentService, ExperimentView, StopOutcome
from .states import TRANSITIONS, ExperimentState, IllegalExperimentTransition, check_transition

__all__ = [
    "TRANSITIONS", "Arm", "ArmIncrement", "ArmResult", "ArmTotals", "Experiment", "ExperimentRepository",
    "ExperimentResult", "ExperimentService", "ExperimentState", "ExperimentTx", "ExperimentView",
    "IllegalExperimentTransition", "Metric", "StartRequest", "StopOutcome", "analyse", "check_transition",
]
