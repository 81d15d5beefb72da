"""Shared helpers for the lohard.mdm tests: thread limits and exact reference laws."""

import itertools

import numpy as np
import pytest

torch = pytest.importorskip("torch")

# The test machine is small and shared: one intra-op thread keeps runs predictable.
torch.set_num_threads(1)


def support(dist):
    """All sequences of positive probability and their probabilities (by enumeration).

    Returns (tokens int64 (S, L), probs float64 (S,)), for table-kind laws with few latents.
    """
    rows = []
    xs = np.array(list(itertools.product(range(dist.m), repeat=dist.n_latent)), dtype=np.int64)
    for x in xs:
        ranges = [range(dist.n_obs_values)] * dist.n_obs
        for o in itertools.product(*ranges):
            t = np.empty(dist.length, dtype=np.int64)
            t[dist.latent_positions] = x
            t[dist.observed_positions] = o
            t[dist.perm.shape[0]:] = dist.trailing
            rows.append(t)
    tokens = np.array(rows)
    p = np.exp(dist.log_prob(tokens))
    keep = p > 0
    return tokens[keep], p[keep]


@pytest.fixture
def support_of():
    return support
