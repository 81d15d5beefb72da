"""Latent-and-observed (L&O) distributions: samplers, masking, exact and BP Bayes posteriors."""

from lohard.lo._distribution import (
    DIST_FORMAT,
    FORMAT_VERSION,
    NAE_SAT_PRESETS,
    SAMPLES_FORMAT,
    LODistribution,
    distinct_subsets,
    load_distribution,
    load_samples,
    nae_sat,
    nae_sat_preset,
    noisy_parity,
    random_slab,
    save_samples,
    sparse_predicate,
)
from lohard.lo._masking import (
    COSINE,
    LINEAR,
    NoiseSchedule,
    apply_mask,
    fixed_size_mask,
    forward_mask,
    latent_mask,
    observation_mask,
    protocol_mask,
    protocol_obs_count,
    schedule_by_name,
)
from lohard.lo._posterior import (
    BP_DEFAULTS,
    DEFAULT_MAX_STATES,
    Posterior,
    bp_posterior,
    exact_posterior,
    largest_masked_component,
    posterior,
)

# The torch adapter is imported on first use, so lohard.lo works without torch.
_TORCH_NAMES = ("LOMaskedDataset", "LOMaskedIterableDataset")


def __getattr__(name: str):
    if name in _TORCH_NAMES:
        from lohard.lo import _torch

        return getattr(_torch, name)
    raise AttributeError(f"module 'lohard.lo' has no attribute {name!r}")


__all__ = [
    "LODistribution",
    "sparse_predicate",
    "noisy_parity",
    "random_slab",
    "nae_sat",
    "nae_sat_preset",
    "NAE_SAT_PRESETS",
    "distinct_subsets",
    "load_distribution",
    "save_samples",
    "load_samples",
    "DIST_FORMAT",
    "SAMPLES_FORMAT",
    "FORMAT_VERSION",
    "NoiseSchedule",
    "LINEAR",
    "COSINE",
    "schedule_by_name",
    "forward_mask",
    "fixed_size_mask",
    "latent_mask",
    "observation_mask",
    "protocol_mask",
    "protocol_obs_count",
    "apply_mask",
    "Posterior",
    "exact_posterior",
    "bp_posterior",
    "posterior",
    "largest_masked_component",
    "BP_DEFAULTS",
    "DEFAULT_MAX_STATES",

]
# LOMaskedDataset and LOMaskedIterableDataset are lazy (torch) and stay out of __all__ so
# that ``from lohard.lo import *`` works without torch.
