"""Cavity method: planted population dynamics, Bethe free entropies and thresholds."""

from lohard.cavity._bethe import BetheResult, bethe_free_entropy, instance_free_entropy_gap
from lohard.cavity._popdyn import (
    POPULATION_INITS,
    PopulationResult,
    phi_paramagnetic,
    population_dynamics,
)
from lohard.cavity._report import (
    DEFAULT_SETTINGS,
    ThresholdSettings,
    default_cache_dir,
    default_populations,
    thresholds_report,
)
from lohard.cavity._thresholds import (
    ThresholdEstimate,
    classify_transition,
    first_moment_degree,
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
    "ThresholdSettings",
    "DEFAULT_SETTINGS",
    "default_populations",
    "classify_transition",
    "first_moment_degree",
    "default_cache_dir",
    "bethe_free_entropy",
    "BetheResult",
    "instance_free_entropy_gap",
    "hardness_window",
    "window_probability",
    "window_monte_carlo",
]
