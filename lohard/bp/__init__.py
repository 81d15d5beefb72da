"""Belief propagation on CSP instances and factor graphs, overlaps, and linearised BP."""

from lohard.bp._bp import (
    BP_INITS,
    BP_SCHEDULES,
    BPConvergenceWarning,
    BPResult,
    FactorGraph,
    default_bp_options,
    run_bp,
)
from lohard.bp._linear import (
    LinearisedSpectrum,
    informative_eigenvalue,
    linearised_spectrum,
    numerical_ks,
)
from lohard.bp._overlap import Overlap, overlap

__all__ = [
    "run_bp",
    "BPResult",
    "FactorGraph",
    "BPConvergenceWarning",
    "BP_INITS",
    "BP_SCHEDULES",
    "default_bp_options",
    "overlap",
    "Overlap",
    "linearised_spectrum",
    "informative_eigenvalue",
    "LinearisedSpectrum",
    "numerical_ks",
]
