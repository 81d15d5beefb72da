"""Cavity method: planted population dynamics, Bethe free entropies and thresholds."""

from lohard.cavity._bethe import BetheResult, bethe_free_entropy, instance_free_entropy_gap
from lohard.cavity._popdyn import (
    POPULATION_INITS,
    PopulationResult,
    phi_paramagnetic,
    population_dynamics,
)
from lohard.cavity._report import default_cache_dir, thresholds_report
from lohard.cavity._thresholds import (
    ThresholdEstimate,
    locate_condensation,
    locate_spinodal,
    survives,
)
from lohard.cavity._window import hardness_window, window_monte_carlo, window_probability

__all__ = [
    "population_dynamics",
    "PopulationResult",
    "POPULATION_INITS",
    "phi_paramagnetic",
    "survives",
    "locate_spinodal",
    "locate_condensation",
    "ThresholdEstimate",
    "thresholds_report",
    "default_cache_dir",
    "bethe_free_entropy",
    "BetheResult",
    "instance_free_entropy_gap",
    "hardness_window",
    "window_probability",
    "window_monte_carlo",
]
