"""Prop. 3.3 hardness window: mask fractions whose masking problems fall in (d_cond, d_KS)."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from lohard._util import RNGLike, as_generator, require_int
from lohard.predicates import Predicate


def _check_degrees(d_cond: float, d_ks: float) -> tuple[float, float]:
    d_cond, d_ks = float(d_cond), float(d_ks)
    if not (math.isfinite(d_cond) and 0 <= d_cond <= d_ks) or math.isnan(d_ks):
        raise ValueError(f"need 0 <= d_cond <= d_KS with d_cond finite, got d_cond = {d_cond}, "
                         f"d_KS = {d_ks}")
    return d_cond, d_ks


def _check_latents(n_latent, k: int) -> int:
    if k < 2:
        raise ValueError(f"the window needs arity k >= 2 (d = (k-1) k P / N), got k = {k}")
    n = require_int(n_latent, "the number of latents N")
    if n < k:
        raise ValueError(f"need N >= k latents, got N = {n}, k = {k}")
    return n


def check_window_sizes(predicate: Predicate, n_latent: int,
                       n_observations: int | None = None) -> tuple[int, int]:
    """Validated (N, P) of :func:`hardness_window`: N >= k, 1 <= P <= N!/(N-k)! and
    gamma P > 0.

    P defaults to the falling factorial N (N-1) ... (N-k+1) of Ex. 3.2.
    """
    k = predicate.k
    n = _check_latents(n_latent, k)
    if n_observations is None:
        p_obs = math.perm(n, k)
    else:
        p_obs = require_int(n_observations, "the number of observations P")
        if p_obs < 1:
            raise ValueError(f"P must be >= 1 observations (the masking problem's clauses are "
                             f"the unmasked satisfied observations), got P = {p_obs}")
        if p_obs > math.perm(n, k):
            raise ValueError(f"P = {p_obs} observations exceed the N!/(N-k)! = "
                             f"{math.perm(n, k)} ordered k-subsets of N = {n} latents (one "
                             f"observation per ordered k-subset, Ex. 3.2)")
    if not predicate.gamma * p_obs > 0:
        raise ValueError(f"need gamma P > 0 expected satisfied observations, got gamma = "
                         f"{predicate.gamma}, P = {p_obs}")
    return n, p_obs


def _check_alpha(alpha) -> np.ndarray:
    a = np.asarray(alpha, dtype=np.float64)
    if not np.all(np.isfinite(a) & (a >= 0) & (a <= 1)):
        raise ValueError(f"mask fractions alpha must be finite and lie in [0, 1], got {alpha}")
    return a


def _clauses_bounds(n_latent: int, k: int, d_cond: float, d_ks: float) -> tuple[float, float]:
    """Clause counts U with d = k (k-1) U / N in (d_cond, d_KS)."""
    return d_cond * n_latent / (k * (k - 1)), d_ks * n_latent / (k * (k - 1))


def hardness_window(predicate: Predicate, n_latent: int, *, d_cond: float,
                    d_ks: float | None = None, n_observations: int | None = None) -> dict:
    r"""Range of mask fractions alpha for which the masking problem lands in (d_cond, d_KS).

    Paper's reduction (Prop. 3.3, App. B.4): all N latent tokens masked; each of
    the P observation tokens unmasked with probability 1 - alpha; the unmasked
    observations with value g(x_S) = 1 are the clauses of a planted CSP on the
    latents. With about gamma P satisfied observations, the degree in lohard's
    convention is

    .. math:: d(\alpha) = k (k-1) (1 - \alpha) \gamma P / N,

    so the window is :math:`1 - d_{KS} N / (k(k-1)\gamma P) < \alpha <
    1 - d_{cond} N / (k(k-1)\gamma P)`. With P = N (N-1) ... (N-k+1) (one
    observation per ordered k-subset, Ex. 3.2) this is the paper's bound with
    its D = d / (k - 1).

    Parameters
    ----------
    predicate : Predicate
    n_latent : int
        N.
    d_cond, d_ks : float
        Thresholds in lohard's convention (d_ks defaults to ``predicate.d_ks``).
    n_observations : int, optional
        P (default: the falling factorial N^(k) of Ex. 3.2).

    Returns
    -------
    dict
        ``alpha_lo``, ``alpha_hi`` (clipped to [0, 1]; empty if equal),
        ``n_observations``, ``expected_satisfied``, ``clauses_lo``, ``clauses_hi``.

    Notes
    -----
    The reduction drops the unmasked observations with value 0, as the paper
    does; they also carry information about the latents, so the masking
    problem is at most as hard as the planted CSP it contains.
    """
    k = predicate.k
    d_ks = predicate.d_ks if d_ks is None else float(d_ks)
    d_cond, d_ks = _check_degrees(d_cond, d_ks)
    n_latent, p_obs = check_window_sizes(predicate, n_latent, n_observations)
    sat = predicate.gamma * p_obs
    scale = n_latent / (k * (k - 1) * sat)
    lo = 1.0 - d_ks * scale if math.isfinite(d_ks) else 0.0
    hi = 1.0 - d_cond * scale
    u_lo, u_hi = _clauses_bounds(n_latent, k, d_cond, d_ks)
    return {"alpha_lo": min(max(lo, 0.0), 1.0), "alpha_hi": min(max(hi, 0.0), 1.0),
            "n_observations": p_obs, "expected_satisfied": sat,
            "clauses_lo": u_lo, "clauses_hi": u_hi}


def window_probability(alpha, n_latent: int, n_satisfied: int, k: int, *, d_cond: float,
                       d_ks: float) -> np.ndarray:
    r"""Probability that a random mask at fraction alpha gives a problem in the window.

    .. math:: p(\alpha) = \alpha^N
              \Pr\left[ U_{lo} < \mathrm{Bin}(S, 1 - \alpha) < U_{hi} \right],

    with S the number of satisfied observations (exact given the sample) and
    U_lo, U_hi the clause counts of degrees d_cond and d_KS (strict).

    Parameters
    ----------
    alpha : float or float64 array, shape (A,)
        Finite, in [0, 1].
    n_latent, n_satisfied, k : int
        N >= k, S >= 0 and k >= 2 (the degree d = (k-1) k P / N needs k >= 2).
    d_cond, d_ks : float
        0 <= d_cond <= d_KS (d_KS may be infinite).

    Returns
    -------
    float64 array, shape (A,) (0-d for scalar alpha)
    """
    a = _check_alpha(alpha)
    k = require_int(k, "the arity k", minimum=2)
    n_latent = _check_latents(n_latent, k)
    n_satisfied = require_int(n_satisfied, "the number of satisfied observations S", minimum=0)
    d_cond, d_ks = _check_degrees(d_cond, d_ks)
    u_lo, u_hi = _clauses_bounds(n_latent, k, d_cond, d_ks)
    # P(u_lo < U < u_hi) for integer U: U >= floor(u_lo) + 1 and U <= ceil(u_hi) - 1
    top = math.ceil(u_hi) - 1 if math.isfinite(u_hi) else n_satisfied
    low = math.floor(u_lo) + 1
    q = 1.0 - a
    inside = stats.binom.cdf(top, n_satisfied, q) - stats.binom.cdf(low - 1, n_satisfied, q)
    return np.clip(a**n_latent * inside, 0.0, 1.0)


def window_monte_carlo(alpha: float, n_latent: int, satisfied: np.ndarray, k: int, *,
                       d_cond: float, d_ks: float, trials: int = 10_000,
                       rng: RNGLike = None) -> float:
    """Monte Carlo of :func:`window_probability`: mask every token independently w.p. alpha.

    Parameters
    ----------
    alpha : float
        Mask fraction, finite, in [0, 1].
    satisfied : bool array, shape (P,)
        g(x_S) of every observation token of one sample.
    trials : int
        Number of random masks, >= 1.

    Returns
    -------
    float
        Fraction of ``trials`` masks with all latents masked and a number of
        unmasked satisfied observations strictly inside the window.
    """
    alpha = float(_check_alpha(alpha))
    trials = require_int(trials, "trials", minimum=1)
    k = require_int(k, "the arity k", minimum=2)
    n_latent = _check_latents(n_latent, k)
    d_cond, d_ks = _check_degrees(d_cond, d_ks)
    gen = as_generator(rng)
    sat = np.asarray(satisfied, dtype=bool)
    u_lo, u_hi = _clauses_bounds(n_latent, k, d_cond, d_ks)
    hits = 0
    for _ in range(trials):
        latents_masked = bool(np.all(gen.random(n_latent) < alpha))
        unmasked = gen.random(sat.size) >= alpha
        u = int(np.count_nonzero(unmasked & sat))
        hits += latents_masked and (u_lo < u < u_hi)
    return hits / trials
