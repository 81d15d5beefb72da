"""Shared helpers for the lohard.lo tests: a brute-force posterior by full enumeration."""

import itertools

import numpy as np
import pytest


def brute_posterior(dist, tokens, mask):
    """Posterior laws {position: law} of one sequence by enumerating every masked-latent value."""
    m = dist.m
    lp, op = dist.latent_positions, dist.observed_positions
    lm, om = mask[lp], mask[op]
    u = np.flatnonzero(lm)
    xs = np.tile(np.where(lm, 0, tokens[lp]), (m ** u.size, 1))
    if u.size:
        xs[:, u] = np.array(list(itertools.product(range(m), repeat=u.size)))
    probs = dist.observation_probs(xs)  # (S, P, V)
    w = np.prod(dist.prior[xs], axis=1)
    ov = tokens[op]
    for j in np.flatnonzero(~om):
        w = w * probs[:, j, ov[j]]
    w = w / w.sum()
    out = {}
    for i in u:
        out[int(lp[i])] = np.bincount(xs[:, i], weights=w, minlength=m)
    for j in np.flatnonzero(om):
        out[int(op[j])] = (w[:, None] * probs[:, j, :]).sum(axis=0)
    return out


@pytest.fixture
def brute():
    return brute_posterior
