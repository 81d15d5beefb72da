"""Bethe free entropy of BP messages on an instance, and the planted-vs-uniform gap."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lohard._util import RNGLike, as_generator
from lohard.cavity import _kernels as K
from lohard.cavity._popdyn import PredicateArrays, phi_paramagnetic


@dataclass(frozen=True)
class BetheResult:
    """Bethe free entropy of one set of messages on an instance.

    Attributes
    ----------
    phi : float
        Total Bethe free entropy Phi (natural log); -inf on a contradiction.
    per_variable : float
        Phi / n.
    contradictions : int
        Variables or clauses whose partition function vanished.
    """

    phi: float
    per_variable: float
    contradictions: int


def bethe_free_entropy(instance, mu: np.ndarray) -> BetheResult:
    r"""Bethe free entropy of an instance at variable-to-clause messages ``mu``.

    .. math:: \Phi(\mu) = \sum_i \log \sum_x \prod_{a \ni i} \hat\nu_{a \to i}(x)
              - (k - 1) \sum_a \log \sum_{y} g(y) \prod_{t} \mu_{t \to a}(y_t),

    where :math:`\hat\nu` is the clause update of ``mu``. At a BP fixed point
    this equals the usual variable + clause - edge expression; it is invariant
    under rescaling any message, and on uniform messages it equals
    :math:`n \log m + P \log \gamma` exactly.

    Parameters
    ----------
    instance : lohard.csp.Instance
    mu : float64 array, shape (E, m)
        Variable-to-clause messages on edges ``e = a * k + s`` (rows need not
        be normalised), e.g. ``BPResult.mu``.

    Returns
    -------
    BetheResult

    Notes
    -----
    O(E m) for NAE/colouring, O(E |g^{-1}(1)|) otherwise.
    """
    pred = instance.predicate
    k, m, n = pred.k, pred.m, instance.n
    mu = np.ascontiguousarray(np.asarray(mu, dtype=np.float64))
    if mu.shape != (instance.num_edges, m):
        raise ValueError(f"mu must have shape (E, m) = ({instance.num_edges}, {m}), got {mu.shape}")
    if not np.all(np.isfinite(mu)) or np.any(mu < 0):
        raise ValueError("messages must be finite and >= 0")
    arr = PredicateArrays.of(pred)
    hat = np.empty((instance.num_edges, m))
    logz_a = np.empty(instance.num_clauses)
    logz_i = np.empty(n)
    bad = K.bethe_instance(instance.clauses, mu, arr.code, arr.sat, k, m, n,
                           np.zeros((n, m)), hat, logz_a, logz_i)
    phi = float(logz_i.sum() - (k - 1) * logz_a.sum()) if bad == 0 else float("-inf")
    return BetheResult(phi=phi, per_variable=phi / n, contradictions=int(bad))


def instance_free_entropy_gap(instance, *, bp_options: dict | None = None,
                              rng: RNGLike = None) -> dict:
    """Bethe free entropy per variable of the planted-started and uniform-started BP fixed points.

    Runs :func:`lohard.bp.run_bp` twice (``init="planted"`` and
    ``init="uniform"``, other options from ``bp_options``) and evaluates
    :func:`bethe_free_entropy` on each. Also returns the annealed value
    log m + (P/N) log gamma of the realised instance.

    Returns
    -------
    dict
        ``phi_planted``, ``phi_uniform``, ``phi_annealed``, ``gap`` (planted minus
        uniform, per variable), ``overlap_planted``, ``overlap_uniform``,
        ``converged_planted``, ``converged_uniform``, ``iterations_*``, ``degree``.
    """
    from lohard.bp import run_bp

    if instance.sigma is None:
        raise ValueError("a planted instance (with sigma) is needed for the planted start")
    gen = as_generator(rng)
    opts = dict(bp_options or {})
    out = {"degree": instance.degree, "n": instance.n, "num_clauses": instance.num_clauses}
    for init in ("planted", "uniform"):
        res = run_bp(instance, **{**opts, "init": init}, warn=False, rng=gen)
        be = bethe_free_entropy(instance, res.mu)
        out[f"phi_{init}"] = be.per_variable
        out[f"overlap_{init}"] = float(res.overlap(instance.sigma).normalised)
        out[f"converged_{init}"] = bool(res.converged)
        out[f"iterations_{init}"] = int(res.iterations)
        out[f"contradictions_{init}"] = be.contradictions
    k = instance.k
    out["phi_annealed"] = phi_paramagnetic(instance.predicate,
                                           (k - 1) * k * instance.num_clauses / instance.n)
    out["gap"] = out["phi_planted"] - out["phi_uniform"]
    return out
