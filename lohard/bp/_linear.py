"""Linearised BP at the uniform fixed point, and the numerical Kesten-Stigum check (Def. B.12)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse.linalg import LinearOperator, eigs

from lohard._util import RNGLike, as_generator


@dataclass
class LinearisedSpectrum:
    """Leading eigenvalues of linearised BP and how much each eigenvector knows about sigma.

    Attributes
    ----------
    eigenvalues : complex128 array, shape (r,)
        Largest-modulus eigenvalues, sorted by decreasing modulus.
    sigma_r2 : float64 array, shape (r,)
        Fraction of the eigenvector's variable-level perturbation explained by
        the planted colours (linear regression on one-hot sigma). Near 1 for
        informative modes, near 0 for the global and bulk modes.
    informative : float
        Mean real part of the m - 1 eigenvalues with the largest ``sigma_r2``
        (the informative modes, one per colour direction; finite n splits them).
    global_mode : float
        Real part of the largest-modulus eigenvalue (the global mode, ~ d * lambda).
    degree : float
        Realised degree of the instance.
    """

    eigenvalues: np.ndarray
    sigma_r2: np.ndarray
    informative: float
    global_mode: float
    degree: float


def _reduced_transfers(pred) -> tuple[np.ndarray, np.ndarray]:
    """Basis Q of 1^perp (m, m-1) and R[s, t] = Q^T T_{st} Q for all slot pairs."""
    m, k = pred.m, pred.k
    q, _ = np.linalg.qr(np.eye(m) - 1.0 / m)
    q = q[:, : m - 1]
    red = np.zeros((k, k, m - 1, m - 1))
    for s in range(k):
        for t in range(k):
            if s != t:
                red[s, t] = q.T @ pred.transfer_matrix(s, t) @ q
    return q, red


def linearised_operator(instance) -> LinearOperator:
    r"""Linearised BP at the uniform fixed point, on clause-to-variable perturbations.

    .. math:: \delta\nu_{a\to i} = \sum_{j \in \partial a \setminus i} T_{s_i s_j}
              \sum_{b \ni j,\, b \ne a} \delta\nu_{b \to j},

    restricted to perturbations orthogonal to the uniform vector on each edge
    (dimension E (m - 1)). Matrix-vector products cost O(E k m^2).
    """
    pred = instance.predicate
    k, m, n = pred.k, pred.m, instance.n
    P = instance.num_clauses
    r = m - 1
    _, red = _reduced_transfers(pred)
    var = instance.clauses.reshape(-1)

    def matvec(x):
        x = np.asarray(x).reshape(P * k, r)
        tot = np.zeros((n, r), dtype=x.dtype)
        np.add.at(tot, var, x)
        cav = (tot[var] - x).reshape(P, k, r)  # delta mu_{j -> a}
        out = np.zeros((P, k, r), dtype=x.dtype)
        for s in range(k):
            for t in range(k):
                if s != t:
                    out[:, s, :] += cav[:, t, :] @ red[s, t].T
        return out.reshape(-1)

    dim = P * k * r
    return LinearOperator((dim, dim), matvec=matvec, dtype=np.float64)


def linearised_spectrum(instance, *, num: int | None = None, rng: RNGLike = None,
                        tol: float = 1e-6) -> LinearisedSpectrum:
    """Leading eigenvalues of linearised BP on a planted instance, classified against sigma.

    Taken literally, Def. B.12 asks for the spectral radius of this operator.
    That is a trap: the radius is set by the *global* mode (every message
    tilted the same way), with eigenvalue about (k-1)(clauses per variable)
    lambda = d lambda, which for NAE(3,3) is -8 at d = 64 and exceeds 1 in
    modulus from d = 8 on. Its eigenvector carries no information about sigma.
    The Kesten-Stigum threshold is where the *informative* eigenvalue, about
    d lambda^2 for a slot-symmetric predicate, crosses 1; below it that mode
    sinks into the bulk of radius sqrt(d) |lambda|. This function returns the
    leading eigenvalues with the fraction of each eigenvector's variable-level
    perturbation explained by the planted colours, so the two are told apart.

    Parameters
    ----------
    instance : Instance
        A planted instance (sigma is needed to classify the modes).
    num : int, optional
        How many eigenvalues to compute (default 2 (m-1): the global and the
        informative modes; asking for bulk eigenvalues makes ARPACK very slow).
    rng : Generator, int or None
        Seeds ARPACK's starting vector.
    """
    if instance.sigma is None:
        raise ValueError("classifying informative modes needs a planted instance (sigma)")
    pred = instance.predicate
    pred.require_balanced()
    m, n = pred.m, instance.n
    r = m - 1
    op = linearised_operator(instance)
    if num is None:
        num = 2 * r
    num = min(num, op.shape[0] - 2)
    if num < 1:
        raise ValueError("instance too small for a spectrum (needs more clauses)")
    v0 = as_generator(rng).standard_normal(op.shape[0])
    vals, vecs = eigs(op, k=num, which="LM", v0=v0, tol=tol, maxiter=5_000,
                      ncv=min(op.shape[0] - 1, max(4 * num + 1, 40)))
    order = np.argsort(-np.abs(vals))
    vals, vecs = vals[order], vecs[:, order]
    q, _ = _reduced_transfers(pred)
    onehot = np.zeros((n, m))
    onehot[np.arange(n), instance.sigma] = 1.0
    y = (onehot - 1.0 / m) @ q  # n x r planted directions
    y = y - y.mean(axis=0)
    var = instance.clauses.reshape(-1)
    r2 = np.zeros(num)
    for j in range(num):
        x = vecs[:, j].reshape(-1, r)
        tot = np.zeros((n, r), dtype=x.dtype)
        np.add.at(tot, var, x)
        tot = tot - tot.mean(axis=0)
        # Regress each column of the variable perturbation on the planted directions.
        coef, *_ = np.linalg.lstsq(y.astype(tot.dtype), tot, rcond=None)
        fit = y @ coef
        den = np.sum(np.abs(tot) ** 2)
        r2[j] = float(np.sum(np.abs(fit) ** 2) / den) if den > 0 else 0.0
    best = np.argsort(-r2)[:r]
    return LinearisedSpectrum(vals, r2, float(vals[best].real.mean()), float(vals[0].real),
                              instance.degree)


def informative_eigenvalue(instance, *, rng: RNGLike = None) -> float:
    """The informative eigenvalue of linearised BP (crosses 1 at d_KS); see linearised_spectrum."""
    return linearised_spectrum(instance, rng=rng).informative


def numerical_ks(predicate, n: int, degrees, *, rng: RNGLike = None) -> dict:
    """Estimate d_KS from finite instances: fit the informative eigenvalue against d, solve = 1.

    The informative mode is visible only above d_KS (below, it lies in the bulk),
    so ``degrees`` should lie above the expected threshold. A straight-line fit
    eta(d) = a + b d is solved for eta = 1.

    Returns
    -------
    dict
        ``{"degrees", "eigenvalues", "sigma_r2", "d_ks_numerical", "fit"}``.
    """
    from lohard.csp import planted_instance

    gen = as_generator(rng)
    eta, r2s, ds = [], [], []
    for d in degrees:
        inst = planted_instance(n, predicate, float(d), rng=gen)
        spec = linearised_spectrum(inst, rng=gen)
        eta.append(spec.informative)
        r2s.append(float(spec.sigma_r2.max()))
        ds.append(inst.degree)
    b, a = np.polyfit(ds, eta, 1)
    if b <= 0:
        raise RuntimeError(f"informative eigenvalue does not grow with d: {eta}")
    return {"degrees": ds, "eigenvalues": eta, "sigma_r2": r2s,
            "d_ks_numerical": float((1.0 - a) / b), "fit": {"intercept": a, "slope": b}}
