"""Observation accuracy of generated L&O sequences (Sec. 4.2, Table 1)."""

from __future__ import annotations

import numpy as np

from lohard.lo._distribution import LODistribution

#: Rules deciding whether a generated observation is correct given the generated latents.
RULES = ("support", "mode")


def observation_correct(dist: LODistribution, tokens, *, rule: str = "support") -> np.ndarray:
    r"""Which generated observations are consistent with the generated latents.

    Parameters
    ----------
    dist : LODistribution
    tokens : int array or tensor, shape (n, L)
        Complete sequences (no mask ids).
    rule : {"support", "mode"}
        ``"support"``: :math:`P(o_j = \hat o_j \mid \hat x) > 0`.
        ``"mode"``: :math:`\hat o_j` attains :math:`\max_v P(o_j = v \mid \hat x)`.
        For deterministic observations (L&O-NAE-SAT, sparse predicates, slab) both
        are :math:`\hat o_j = g(\hat x_{S_j})`, e.g. :math:`\hat o_j =
        \mathrm{NAE}(\hat x_{S_j})`; for noisy parity ``"support"`` is always true
        and ``"mode"`` checks the parity. An observation whose scope holds a
        generated latent outside 0..m-1 counts as wrong.

    Returns
    -------
    bool array, shape (n, P)
    """
    if rule not in RULES:
        raise ValueError(f"unknown rule {rule!r}; choose one of {', '.join(RULES)}")
    t = tokens.detach().cpu().numpy() if hasattr(tokens, "detach") else np.asarray(tokens)
    t = dist.check_tokens(t)
    lat = dist.latents(t)
    # A generated latent outside the alphabet 0..m-1 (e.g. the trailing token's value)
    # makes every observation that depends on it wrong.
    bad_lat = lat >= dist.m
    probs = dist.observation_probs(np.where(bad_lat, 0, lat))  # (n, P, V)
    if dist.kind == "table":
        bad_obs = bad_lat[:, dist.scopes].any(axis=2)
    else:
        bad_obs = np.broadcast_to(bad_lat.any(axis=1)[:, None], (t.shape[0], dist.n_obs))
    obs = dist.observations(t)
    if obs.size and obs.max() >= dist.n_obs_values:
        # A value outside the observation alphabet has probability 0.
        obs_c = np.minimum(obs, dist.n_obs_values - 1)
        p = np.take_along_axis(probs, obs_c[..., None], axis=2)[..., 0]
        p = np.where(obs >= dist.n_obs_values, 0.0, p)
    else:
        p = np.take_along_axis(probs, obs[..., None], axis=2)[..., 0]
    if rule == "support":
        return (p > 0) & ~bad_obs
    return (p > 0) & (p >= probs.max(axis=2)) & ~bad_obs


def observation_accuracy(dist: LODistribution, tokens, *, rule: str = "support") -> float:
    r"""Fraction of generated observation tokens consistent with the generated latents.

    For L&O-NAE-SAT this is the mean over sequences and j of
    :math:`1[\hat o_j = \mathrm{NAE}(\hat x_{S_j})]`, the metric of Table 1; a
    naive guess (all observations 1) scores 75%.

    Parameters
    ----------
    dist : LODistribution
    tokens : int array or tensor, shape (n, L)
    rule : {"support", "mode"}
        See :func:`observation_correct`.

    Returns
    -------
    float in [0, 1] (NaN-free: raises ValueError if there is nothing to score).
    """
    ok = observation_correct(dist, tokens, rule=rule)
    if ok.size == 0:
        raise ValueError("no observations to score (n = 0 sequences or P = 0)")
    return float(ok.mean())
