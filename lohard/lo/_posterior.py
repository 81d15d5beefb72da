"""Bayes posteriors p_data(x_i | x[M]) of L&O distributions: exact enumeration and BP."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np

from lohard._util import RNGLike, as_generator, require_int
from lohard.bp import BPConvergenceWarning, FactorGraph, run_bp
from lohard.lo import _kernels as K
from lohard.lo._distribution import KIND_SLAB, KIND_TABLE, LODistribution

#: Largest number of joint assignments of one component enumerated by default
#: (2^24: N up to about 24 binary latents in one component, well under a second).
DEFAULT_MAX_STATES = 1 << 24

#: Default BP options for L&O posteriors. Damping 0.5 and the parallel schedule
#: were checked against exact enumeration on small NAE-SAT and parity instances
#: (tests/lo/test_posterior.py); tol and max_iter give converged messages there.
BP_DEFAULTS = {"schedule": "parallel", "damping": 0.5, "init": "uniform", "noise": 0.0,
               "tol": 1e-9, "max_iter": 2000}


@dataclass
class Posterior:
    """Posterior laws of every position of a batch of masked sequences.

    Attributes
    ----------
    probs : float64 array, shape (n, L, vocab_size)
        ``probs[b, i]`` is p(x_i | x[unmasked]) for masked i, and the point mass
        on the known value for unmasked i. Every row sums to one.
    mask : bool array, shape (n, L)
        Which positions were masked.
    method : str
        ``"exact"`` or ``"bp"``.
    converged : bool array, shape (n,)
        BP convergence per sequence (all True for exact).
    iterations : int64 array, shape (n,)
        BP iterations, or assignments visited for exact.
    """

    probs: np.ndarray
    mask: np.ndarray
    method: str
    converged: np.ndarray
    iterations: np.ndarray
    info: dict = field(default_factory=dict)

    def log_prob(self, tokens: np.ndarray) -> np.ndarray:
        """log p(x0_i | x0[unmasked]) at the true values: float64 array, shape (n, L).

        Zero at unmasked positions; ``-inf`` where the true value has probability 0.
        """
        t = np.asarray(tokens, dtype=np.int64)
        if t.shape != self.mask.shape:
            raise ValueError(f"tokens must have shape {self.mask.shape}, got {t.shape}")
        if t.size and (t.min() < 0 or t.max() >= self.probs.shape[-1]):
            raise ValueError("tokens must be data values (no mask ids) to score them")
        p = np.take_along_axis(self.probs, t[..., None], axis=-1)[..., 0]
        with np.errstate(divide="ignore"):
            return np.where(self.mask, np.log(p), 0.0)

    def argmax(self) -> np.ndarray:
        """Most probable value at every position: int64 array, shape (n, L)."""
        return np.argmax(self.probs, axis=-1).astype(np.int64)


def _prepare(dist: LODistribution, tokens, mask) -> tuple[np.ndarray, np.ndarray, bool]:
    t = np.asarray(tokens)
    single = t.ndim == 1
    if single:
        t = t[None, :]
    t = dist.check_tokens(t, allow_mask=True)
    if mask is None:
        mk = t == dist.mask_id
    else:
        mk = np.asarray(mask)
        if single and mk.ndim == 1:
            mk = mk[None, :]
        if mk.dtype != bool:
            raise ValueError(f"mask must be a bool array, got dtype {mk.dtype}")
        if mk.ndim != 2 or mk.shape[1] != t.shape[1]:
            raise ValueError(f"mask covers {mk.shape[-1]} positions but the sequence has "
                             f"L = {t.shape[1]}: a mask must lie inside the sequence")
        if mk.shape[0] != t.shape[0]:
            raise ValueError(f"mask has {mk.shape[0]} rows for {t.shape[0]} sequences")
        if np.any((t == dist.mask_id) & ~mk):
            raise ValueError("a position holds the mask id but is not marked masked")
    if np.any((t[:, dist.trailing_positions] != dist.trailing[None, :])
              & ~mk[:, dist.trailing_positions]):
        raise ValueError("an unmasked trailing token differs from the distribution's constant")
    return t, mk, single


def _fill_known(dist: LODistribution, t: np.ndarray, mk: np.ndarray) -> np.ndarray:
    """Output array with point masses at unmasked positions and the trailing constants."""
    n, length = t.shape
    probs = np.zeros((n, length, dist.vocab_size))
    known = np.where(mk, 0, t)
    probs[np.arange(n)[:, None], np.arange(length)[None, :], known] = 1.0
    tp = dist.trailing_positions
    if tp.size:
        probs[:, tp, :] = 0.0
        probs[:, tp, dist.trailing] = 1.0
    return probs


def _raise_status(status: int, b: int, info: np.ndarray, max_states: int) -> None:
    if status == K.STATUS_CONTRADICTION:
        raise ValueError(f"sequence {b}: the unmasked tokens have probability zero under the "
                         "distribution (no latent assignment explains the observations)")
    if status == K.STATUS_TOO_LARGE:
        raise ValueError(f"sequence {b}: a connected component of {info[1]} masked latents has "
                         f"more than max_states = {max_states} assignments; use "
                         "bp_posterior or raise max_states")


def exact_posterior(dist: LODistribution, tokens: np.ndarray, mask: np.ndarray | None = None, *,
                    max_states: int = DEFAULT_MAX_STATES, rng: RNGLike = None) -> Posterior:
    r"""Exact Bayes posteriors p_data(x_i | x[unmasked]) for every masked position.

    Parameters
    ----------
    dist : LODistribution
    tokens : int array, shape (n, L) or (L,)
        Sequences; values at masked positions are ignored (they may be ``mask_id``).
    mask : bool array, shape (n, L) or (L,), optional
        True where masked; by default the positions holding ``dist.mask_id``.
    max_states : int
        Largest number of assignments of one component of masked latents to
        enumerate (ValueError beyond); an integer >= 1.
    rng : Generator, int or None
        Accepted and ignored: exact enumeration is deterministic. It is there so
        that the same keywords serve :func:`exact_posterior`, :func:`bp_posterior`
        and :func:`posterior`.

    Returns
    -------
    Posterior
        With ``probs`` of shape (n, L, vocab_size) (or (L, vocab_size) for one sequence).

    Notes
    -----
    Conditioning is on every unmasked latent and observation:

    .. math:: p(x_U \mid \cdot) \propto \prod_{i \in U} \pi(x_i)
              \prod_{j \notin M} \mathcal{O}_j(o_j \mid x),

    summed by enumerating the masked latents U. A masked observation gets its
    predictive law :math:`\sum_x p(x_U \mid \cdot)\, \mathcal{O}_j(\cdot \mid x)`.
    Table observations split U into components linked by unmasked
    observations (independent under the posterior), each enumerated in Gray-code
    order: cost O(sum_c m^{|c|} (d_c + q_c)) with d_c the observations touched per
    step and q_c the masked observations reading component c. Slab observations
    couple all latents: O(2^{|U|} P). Exact up to floating-point rounding.

    References
    ----------
    Kim et al. (ICML 2025), Def. 3.1 and Sec. 3.3 (p_data(x_0 | x_0[M])).
    """
    max_states = require_int(max_states, "max_states", minimum=1)
    t, mk, single = _prepare(dist, tokens, mask)
    n = t.shape[0]
    probs = _fill_known(dist, t, mk)
    lat_pos, obs_pos = dist.latent_positions, dist.observed_positions
    m, V, N, P = dist.m, dist.n_obs_values, dist.n_latent, dist.n_obs
    logprior = np.log(dist.prior)
    visited = np.zeros(n, dtype=np.int64)
    info = np.zeros(4, dtype=np.int64)
    marg = np.zeros((N, m))
    pred = np.zeros((P, V))
    if dist.kind == KIND_TABLE:
        tables = dist.tables
        zerotab = (tables == 0).astype(np.uint8)
        with np.errstate(divide="ignore"):
            logtab = np.where(tables > 0, np.log(np.where(tables > 0, tables, 1.0)), 0.0)
        acc = np.zeros((P, dist.k, m ** dist.k))
    for b in range(n):
        lmask = np.ascontiguousarray(mk[b, lat_pos])
        omask = np.ascontiguousarray(mk[b, obs_pos])
        x = np.where(lmask, 0, t[b, lat_pos]).astype(np.int64)
        ovals = np.where(omask, 0, t[b, obs_pos]).astype(np.int64)
        if np.any(x >= m) or np.any(ovals >= V):
            raise ValueError(f"sequence {b}: an unmasked token is outside its alphabet "
                             f"(latents 0..{m - 1}, observations 0..{V - 1})")
        if dist.kind == KIND_TABLE:
            K.table_posterior(N, m, x, lmask, ovals, omask, dist.scopes, dist.obs_table, tables,
                              logtab, zerotab, logprior, int(max_states), marg, pred, acc, info)
        else:
            marg[:] = 0.0
            pred[:] = 0.0
            K.slab_posterior(x, lmask, ovals, omask, dist.z, dist.beta * math.sqrt(N),
                             logprior, int(max_states), marg, pred, info)
        _raise_status(int(info[0]), b, info, int(max_states))
        visited[b] = info[3]
        if lmask.any():
            probs[b, lat_pos[lmask], :] = 0.0
            probs[b, lat_pos[lmask], :m] = marg[lmask]
        if omask.any():
            probs[b, obs_pos[omask], :] = 0.0
            probs[b, obs_pos[omask], :V] = pred[omask]
    out = Posterior(probs, mk, "exact", np.ones(n, dtype=bool), visited)
    return _squeeze(out) if single else out


def _squeeze(post: Posterior) -> Posterior:
    return Posterior(post.probs[0], post.mask[0], post.method, post.converged[:1],
                     post.iterations[:1], post.info)


def bp_posterior(dist: LODistribution, tokens: np.ndarray, mask: np.ndarray | None = None, *,
                 schedule: str | None = None, damping: float | None = None,
                 tol: float | None = None, max_iter: int | None = None,
                 rng: RNGLike = None, warn: bool = True) -> Posterior:
    r"""Approximate posteriors by belief propagation on the induced factor graph.

    Variables are the N latents: unmasked ones are clamped by a one-hot field,
    masked ones carry the prior. Each unmasked observation j with value v is a
    factor with weights :math:`\mathcal{O}_j(v \mid x_{S_j})` (an observed NAE
    value 1 gives the NAE table, 0 the all-equal table; a noisy parity gives
    weights 1 - eta / eta). Observations whose scope is fully unmasked are
    constants and are left out (after checking they have positive probability).

    Parameters
    ----------
    dist : LODistribution
        Table kind only (a slab observation is one dense factor on all N latents,
        on which BP is exact enumeration; use :func:`exact_posterior`).
    tokens, mask
        As in :func:`exact_posterior`.
    schedule, damping, tol, max_iter
        BP options; defaults in ``BP_DEFAULTS`` (parallel, damping 0.5).
    rng : Generator, int or None
        For the random-sequential schedule.
    warn : bool
        Warn when BP did not converge on some sequence (False for callers that
        report ``Posterior.converged`` themselves).

    Returns
    -------
    Posterior
        ``converged`` and ``iterations`` per sequence; when some sequence's BP
        did not converge (and ``warn``), one :class:`lohard.bp.BPConvergenceWarning`
        says on how many. Masked observations get
        :math:`\sum_{x_S} \prod_{i \in S} b_i(x_i)\, \mathcal{O}_j(\cdot \mid x_S)`
        (BP's beliefs, independent across the scope: the Bethe approximation
        of a variable set that is not a factor).

    Notes
    -----
    Exact on trees. The dense small instances of the paper (e.g. NAE-SAT with
    N = 20, P = 280) are loopy, and BP's error against :func:`exact_posterior`
    grows with the number of short loops among masked latents; see
    ``simulations/lo_bp_vs_exact.py``.

    References
    ----------
    Kim et al. (ICML 2025), Def. B.10.
    """
    if dist.kind != KIND_TABLE:
        raise ValueError("BP needs table observations of small arity; slab observations couple "
                         "all N latents in one factor, so use exact_posterior")
    t, mk, single = _prepare(dist, tokens, mask)
    opts = dict(BP_DEFAULTS)
    for key, val in (("schedule", schedule), ("damping", damping), ("tol", tol),
                     ("max_iter", max_iter)):
        if val is not None:
            opts[key] = val
    gen = as_generator(rng)
    n = t.shape[0]
    probs = _fill_known(dist, t, mk)
    lat_pos, obs_pos = dist.latent_positions, dist.observed_positions
    m, V, N, k = dist.m, dist.n_obs_values, dist.n_latent, dist.k
    powers = m ** np.arange(k - 1, -1, -1, dtype=np.int64)
    # All scope assignments, one row per code, for the masked-observation predictions.
    all_codes = np.indices((m,) * k).reshape(k, -1).T
    converged = np.ones(n, dtype=bool)
    iters = np.zeros(n, dtype=np.int64)
    for b in range(n):
        lmask, omask = mk[b, lat_pos], mk[b, obs_pos]
        x = np.where(lmask, 0, t[b, lat_pos]).astype(np.int64)
        ovals = np.where(omask, 0, t[b, obs_pos]).astype(np.int64)
        if np.any(x >= m) or np.any(ovals >= V):
            raise ValueError(f"sequence {b}: an unmasked token is outside its alphabet")
        field_ = np.tile(dist.prior, (N, 1))
        field_[~lmask] = np.eye(m)[x[~lmask]]
        unm = np.flatnonzero(~omask)
        touches = lmask[dist.scopes[unm]].any(axis=1)
        const = unm[~touches]
        if const.size:
            pc = dist.tables[dist.obs_table[const], (x[dist.scopes[const]] * powers).sum(1),
                             ovals[const]]
            if np.any(pc == 0):
                _raise_status(K.STATUS_CONTRADICTION, b, np.zeros(4, np.int64), 0)
        fac = unm[touches]
        if fac.size:
            key = dist.obs_table[fac] * V + ovals[fac]
            uniq, inv = np.unique(key, return_inverse=True)
            tabs = dist.tables[uniq // V, :, uniq % V]
            graph = FactorGraph(N, m, dist.scopes[fac], tabs, inv.astype(np.int64), field_)
            res = run_bp(graph, warn=False, rng=gen, **opts)
            if res.contradictions:
                _raise_status(K.STATUS_CONTRADICTION, b, np.zeros(4, np.int64), 0)
            beliefs = res.beliefs
            converged[b] = res.converged
            iters[b] = res.iterations
        else:
            beliefs = field_ / field_.sum(axis=1, keepdims=True)
        if lmask.any():
            probs[b, lat_pos[lmask], :] = 0.0
            probs[b, lat_pos[lmask], :m] = beliefs[lmask]
        if omask.any():
            mo = np.flatnonzero(omask)
            # q[j, code] = prod_s b_{S_j[s]}(code_s)
            bs = beliefs[dist.scopes[mo]]  # (Q, k, m)
            q = np.ones((mo.size, all_codes.shape[0]))
            for s in range(k):
                q *= bs[:, s, all_codes[:, s]]
            pred = np.einsum("qc,qcv->qv", q, dist.tables[dist.obs_table[mo]])
            probs[b, obs_pos[mo], :] = 0.0
            probs[b, obs_pos[mo], :V] = pred / pred.sum(axis=1, keepdims=True)
    n_bad = int(np.count_nonzero(~converged))
    if n_bad and warn:
        warnings.warn(
            f"BP did not converge on {n_bad} of {n} sequences (largest message change still "
            f"above tol = {opts['tol']:g} after max_iter = {opts['max_iter']} iterations, "
            f"{opts['schedule']}, damping {opts['damping']:g}); Posterior.converged flags them",
            BPConvergenceWarning,
            stacklevel=2,
        )
    out = Posterior(probs, mk, "bp", converged, iters, {"bp_options": opts})
    return _squeeze(out) if single else out


def largest_masked_component(dist: LODistribution, tokens: np.ndarray,
                             mask: np.ndarray | None = None) -> np.ndarray:
    """Size of the largest component of masked latents that exact enumeration must visit.

    Table observations: masked latents linked by an unmasked observation whose
    scope holds them (as in :func:`exact_posterior`); slab observations: all
    masked latents of the sequence.

    Returns
    -------
    int64 array, shape (n,) (0-d for one sequence)
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    t, mk, single = _prepare(dist, tokens, mask)
    lm = mk[:, dist.latent_positions]
    om = mk[:, dist.observed_positions]
    n, N = lm.shape
    out = np.zeros(n, dtype=np.int64)
    if dist.kind != KIND_TABLE:
        out[:] = lm.sum(axis=1)
        return out[0] if single else out
    P, k = dist.scopes.shape
    obs = np.repeat(np.arange(P), k)
    lat = dist.scopes.reshape(-1)
    for b in range(n):
        # Bipartite graph: latent i -- unmasked observation f, for masked i in S_f.
        keep = lm[b, lat] & ~om[b, obs]
        g = coo_matrix((np.ones(int(keep.sum())), (lat[keep], N + obs[keep])),
                       shape=(N + P, N + P))
        _, labels = connected_components(g, directed=False)
        sizes = np.bincount(labels[:N][lm[b]], minlength=1)
        out[b] = sizes.max()
    return out[0] if single else out


_EXACT_KEYWORDS = frozenset({"max_states", "rng"})
_BP_KEYWORDS = frozenset({"schedule", "damping", "tol", "max_iter", "rng", "warn"})


def posterior(dist: LODistribution, tokens: np.ndarray, mask: np.ndarray | None = None, *,
              method: str = "auto", **kwargs) -> Posterior:
    """Posteriors by ``method``: "exact", "bp", or "auto".

    "auto" is exact enumeration when, for every sequence, the largest component
    of masked latents (:func:`largest_masked_component`) has at most
    ``max_states`` (default ``DEFAULT_MAX_STATES``) joint assignments, i.e.
    m^c <= max_states, and BP otherwise; slab observations are always exact
    (BP does not apply to them). Keywords go to the method chosen:
    ``max_states`` (exact), ``schedule``, ``damping``, ``tol``, ``max_iter``
    (BP) and ``rng`` (both; exact ignores it). With "auto", keywords of the
    method not chosen are dropped; a keyword neither method takes is a TypeError.
    """
    if method not in ("auto", "exact", "bp"):
        raise ValueError(f"unknown posterior method {method!r}; choose exact, bp or auto")
    if method == "auto":
        unknown = set(kwargs) - _EXACT_KEYWORDS - _BP_KEYWORDS
        if unknown:
            raise TypeError(f"posterior() got unexpected keyword arguments {sorted(unknown)}")
        max_states = require_int(kwargs.get("max_states", DEFAULT_MAX_STATES), "max_states",
                                 minimum=1)
        if dist.kind == KIND_SLAB:
            method = "exact"
        else:
            biggest = int(np.max(largest_masked_component(dist, tokens, mask), initial=0))
            method = "exact" if int(dist.m) ** biggest <= max_states else "bp"
        allowed = _EXACT_KEYWORDS if method == "exact" else _BP_KEYWORDS
        kwargs = {key: val for key, val in kwargs.items() if key in allowed}
    if method == "exact":
        return exact_posterior(dist, tokens, mask, **kwargs)
    return bp_posterior(dist, tokens, mask, **kwargs)
