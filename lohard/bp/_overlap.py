"""Overlap between an estimate and the planted assignment (Def. B.9)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.optimize import linear_sum_assignment

from lohard._util import integer_array


class Overlap(NamedTuple):
    """Best agreement over colour permutations.

    raw : fraction of variables whose (permuted) estimate equals sigma.
    normalised : (raw - 1/m) / (1 - 1/m); 0 for a random guess, 1 for exact recovery.
    permutation : int64 array, shape (m,); estimate colour c is read as permutation[c].
    """

    raw: float
    normalised: float
    permutation: np.ndarray


def overlap(estimate: np.ndarray, sigma: np.ndarray, *, m: int | None = None) -> Overlap:
    """Overlap of an estimate with the planted assignment, maximised over colour permutations.

    Parameters
    ----------
    estimate : int array, shape (n,), or float array, shape (n, m)
        Hard colours, or beliefs (their argmax is taken; ties go to the lowest colour).
    sigma : int array, shape (n,)
        Planted colours in [0, m).
    m : int, optional
        Number of colours; inferred from beliefs or from the data.

    Notes
    -----
    The maximum over all m! permutations is a linear assignment problem on the
    m x m confusion matrix, solved exactly by ``scipy.optimize.linear_sum_assignment``
    in O(n + m^3). The best permutation of an uninformative estimate still scores
    about 1/m + O(1/sqrt(n)), so the normalised overlap of a random guess is
    O(1/sqrt(n)), not exactly 0.
    """
    est = np.asarray(estimate)
    sig = integer_array(sigma, "sigma")
    if est.ndim == 2:
        if m is None:
            m = est.shape[1]
        elif est.shape[1] != m:
            raise ValueError(f"beliefs have {est.shape[1]} colours but m = {m}")
        if not np.all(np.isfinite(est)):
            raise ValueError("beliefs contain NaN or inf")
        est = np.argmax(est, axis=1)
    est = integer_array(est, "estimate")
    if est.shape != sig.shape or sig.ndim != 1:
        raise ValueError(
            f"estimate and sigma must both have shape (n,), got {est.shape}, {sig.shape}"
        )
    if m is None:
        m = int(max(est.max(initial=0), sig.max(initial=0))) + 1
    if m < 2:
        raise ValueError(f"overlap needs m >= 2 colours, got {m}")
    if est.size == 0:
        raise ValueError("overlap of an empty assignment is undefined")
    if est.min() < 0 or est.max() >= m or sig.min() < 0 or sig.max() >= m:
        raise ValueError(f"colours must lie in [0, {m})")
    conf = np.bincount(est * m + sig, minlength=m * m).reshape(m, m)
    rows, cols = linear_sum_assignment(conf, maximize=True)
    perm = np.empty(m, dtype=np.int64)
    perm[rows] = cols
    raw = float(conf[rows, cols].sum()) / est.size
    return Overlap(raw, (raw - 1.0 / m) / (1.0 - 1.0 / m), perm)
