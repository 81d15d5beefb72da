"""Planted (Nishimori) population dynamics: overlap and Bethe free entropy at one degree."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from lohard._util import RNGLike, as_generator, require_int
from lohard.cavity import _kernels as K
from lohard.predicates import KERNEL_NAE, Predicate

POPULATION_INITS = ("planted", "uniform")

# Fewer than this many messages per planted colour cannot represent a
# distribution of messages: the sample mean of a single sweep already has
# relative error above ~10%, and a discontinuous spinodal is washed out.
MIN_POPULATION_PER_COLOUR = 100

# A population whose cavity order parameter (m <mu(sigma)> - 1)/(m - 1) ends
# below this value has collapsed to the paramagnetic (uniform) fixed point.
# The uniform point attracts exponentially fast below the spinodal, so a
# collapsed population reaches ~1e-6 within tens of sweeps; 0.02 leaves room
# for the slow approach near a continuous transition.
DEFAULT_COLLAPSE_Q = 0.02


@dataclass(frozen=True)
class PredicateArrays:
    """Flat arrays of a predicate for the kernels.

    Attributes
    ----------
    code : int
        Kernel fast path (``lohard.predicates.KERNEL_NAE``) or 0 for the truth table.
    sat : int64 array, shape (S, k)
        Satisfying tuples.
    sc_off : int64 array, shape (k * m + 1,)
        CSR offsets: the satisfying tuples with ``y_s = c`` are
        ``sc_idx[sc_off[s*m+c] : sc_off[s*m+c+1]]``.
    sc_idx : int64 array, shape (k * S,)
    """

    code: int
    sat: np.ndarray
    sc_off: np.ndarray
    sc_idx: np.ndarray

    @classmethod
    def of(cls, predicate: Predicate) -> PredicateArrays:
        k, m = predicate.k, predicate.m
        sat = np.ascontiguousarray(predicate.satisfying, dtype=np.int64)
        off = np.zeros(k * m + 1, dtype=np.int64)
        idx = []
        for s in range(k):
            for c in range(m):
                rows = np.flatnonzero(sat[:, s] == c)
                idx.append(rows)
                off[s * m + c + 1] = off[s * m + c] + rows.size
        code = K.NAE if predicate.kernel == KERNEL_NAE else 0
        return cls(code, sat, off, np.concatenate(idx).astype(np.int64))


def phi_paramagnetic(predicate: Predicate, degree: float) -> float:
    r"""Annealed (paramagnetic) free entropy per variable, :math:`\log m + (P/N)\log\gamma`.

    With lohard's degree :math:`d = (k-1) k P / N`, :math:`P/N = d / (k (k-1))`.
    """
    k = predicate.k
    return math.log(predicate.m) + degree / (k * (k - 1)) * math.log(predicate.gamma)


@dataclass
class PopulationResult:
    """Outcome of :func:`population_dynamics` at one degree.

    Attributes
    ----------
    degree : float
        d = (k-1) k P / N; each variable has Poisson(d / (k-1)) clauses.
    population : int
        Messages per planted colour (m of them in all sub-populations).
    delta_phi, delta_phi_err : float
        Bethe free entropy per variable of the planted fixed point minus the
        paramagnetic one, and its standard error (batch means over measurement
        sweeps, which absorbs the correlation between sweeps).
    phi_planted, phi_para : float
        The two free entropies per variable.
    overlap, overlap_err : float
        Argmax overlap of the full BP marginal with the planted colour,
        normalised to 0 (chance) .. 1 (exact): (P_correct - 1/m) / (1 - 1/m).
    q, q_err : float
        Normalised mean belief in the planted colour, (m <b(sigma)> - 1)/(m - 1).
    collapsed : bool
        The population ended at the paramagnetic point (cavity order parameter
        below ``collapse_q``).
    trace : float64 array, shape (sweeps + measure,)
        Cavity order parameter after every sweep.
    phi_trace : float64 array, shape (measure,)
        delta_phi estimated at every measurement sweep.
    drift_z : float
        (mean of the second half - first half of phi_trace) / its standard
        error; |drift_z| > 3 means the population was still moving.
    contradictions : int
        All-zero message products met (0 for a planted population).
    """

    degree: float
    population: int
    sweeps: int
    measure: int
    delta_phi: float
    delta_phi_err: float
    phi_planted: float
    phi_para: float
    overlap: float
    overlap_err: float
    q: float
    q_err: float
    collapsed: bool
    drift_z: float
    contradictions: int
    trace: np.ndarray = field(repr=False)
    phi_trace: np.ndarray = field(repr=False)

    @property
    def converged(self) -> bool:
        """No significant drift of the free entropy over the measurement sweeps."""
        return bool(abs(self.drift_z) <= 3.0)

    def summary(self) -> dict:
        """JSON-ready scalars (the traces are summarised by their last values)."""
        return {
            "degree": self.degree,
            "population": self.population,
            "sweeps": self.sweeps,
            "measure": self.measure,
            "delta_phi": self.delta_phi,
            "delta_phi_err": self.delta_phi_err,
            "phi_planted": self.phi_planted,
            "phi_para": self.phi_para,
            "overlap": self.overlap,
            "overlap_err": self.overlap_err,
            "q": self.q,
            "q_err": self.q_err,
            "collapsed": self.collapsed,
            "drift_z": self.drift_z,
            "converged": self.converged,
            "contradictions": self.contradictions,
            "final_cavity_q": float(self.trace[-1]) if self.trace.size else float("nan"),
        }


def check_collapse_q(collapse_q: float) -> float:
    """The collapse level of the order parameter: a finite number in [0, 1)."""
    q = float(collapse_q)
    if not (math.isfinite(q) and 0.0 <= q < 1.0):
        raise ValueError(f"the collapse level collapse_q of the order parameter must lie in "
                         f"[0, 1), got {collapse_q}")
    return q


def _check_population(predicate: Predicate, population: int) -> int:
    population = require_int(population, "population")
    per = population // predicate.m
    if per < MIN_POPULATION_PER_COLOUR:
        raise ValueError(
            f"population of {population} messages is too small to estimate anything: it gives "
            f"{per} messages per planted colour (m = {predicate.m}); need at least "
            f"{MIN_POPULATION_PER_COLOUR} per colour, i.e. population >= "
            f"{MIN_POPULATION_PER_COLOUR * predicate.m}"
        )
    return per


def _batch_mean_err(x: np.ndarray, batches: int = 10) -> tuple[float, float]:
    """Mean and standard error from batch means (robust to serial correlation)."""
    x = np.asarray(x, dtype=np.float64)
    n = x.size
    if n == 0:
        return float("nan"), float("nan")
    b = min(batches, n)
    if b < 2:
        return float(x.mean()), float("inf")
    means = np.array([c.mean() for c in np.array_split(x, b)])
    return float(x.mean()), float(means.std(ddof=1) / math.sqrt(b))


def _control_variate(terms: np.ndarray, mean_deg: float) -> np.ndarray:
    """Per-sweep free-entropy estimates with the degree as a control variate.

    ``terms[:, 0:4]`` are per-sweep means of (Delta, l, Delta l, l^2). The
    degree l has known mean ``mean_deg``; subtracting beta (l - mean_deg), with
    beta the pooled regression slope of Delta on l, removes the part of the
    variance that only reflects how many clauses the sampled variables had.
    """
    e_d, e_l, e_dl, e_ll = (float(terms[:, j].mean()) for j in range(4))
    var_l = e_ll - e_l * e_l
    beta = (e_dl - e_d * e_l) / var_l if var_l > 1e-12 else 0.0
    return terms[:, 0] - beta * (terms[:, 1] - mean_deg)


def population_dynamics(
    predicate: Predicate,
    degree: float,
    *,
    population: int = 20_000,
    sweeps: int = 100,
    measure: int = 40,
    samples: int | None = None,
    init: str = "planted",
    collapse_q: float = DEFAULT_COLLAPSE_Q,
    rng: RNGLike = None,
) -> PopulationResult:
    r"""Replica-symmetric population dynamics on the planted ensemble at degree ``d``.

    Under the planted (Nishimori) symmetry the cavity messages of variables of
    planted colour c form one sub-population; the update is

    .. math::
        \mu(x) \propto \prod_{a=1}^{l} \sum_{y \in g^{-1}(1),\, y_{s_a} = x}
        \prod_{t \ne s_a} \mu_{a,t}(y_t), \qquad l \sim \mathrm{Poisson}(d/(k-1)),

    with the slot s_a uniform, the other colours of clause a uniform among the
    satisfying tuples whose slot-s_a colour is c, and each
    :math:`\mu_{a,t}` drawn from the sub-population of colour :math:`y_t`.

    The Bethe free entropy per variable is

    .. math:: \phi = \mathbb E \log \sum_x \prod_{a \ni i} \hat\nu_{a\to i}(x)
              - \frac{d}{k}\, \mathbb E \log Z_a,

    and ``delta_phi`` = phi - (log m + d/(k(k-1)) log gamma).

    Parameters
    ----------
    predicate : Predicate
        Balanced (Assumption B.11) k-ary predicate on m colours.
    degree : float
        d = (k-1) k P / N >= 0.
    population : int
        Total number of messages, split evenly over the m planted colours.
    sweeps : int
        Equilibration sweeps; one sweep is ``population`` single-message updates.
        Stops early once the population has collapsed to the uniform point.
    measure : int
        Measurement sweeps: each is one sweep followed by ``samples`` Monte
        Carlo samples of the free-entropy terms and the overlap.
    samples : int, optional
        Samples per measurement sweep (default: ``population``).
    init : {"planted", "uniform"}
        Planted: every message one-hot on its planted colour (the informative
        branch). Uniform: 1/m plus 1% noise towards the planted colour
        (tests the stability of the paramagnetic point).
    collapse_q : float
        Order-parameter level under which the population counts as collapsed.
    rng : Generator, int, SeedSequence or None
        Randomness; a seed fixes the result.

    Returns
    -------
    PopulationResult

    Notes
    -----
    Cost is O((sweeps + 2 measure) * population * d/(k-1) * C) with C the cost of
    a clause update (k m for NAE/colouring, k |g^{-1}(1)| for a truth table).
    Poisson degrees make the excess degree distribution equal to the degree
    distribution, so the same update serves cavity and full marginals.

    References
    ----------
    Kim et al. (ICML 2025), App. B.4 and Conjecture B.13; Krzakala & Zdeborova,
    PRL 102, 238701 (2009); Mezard & Montanari, *Information, Physics and
    Computation*, ch. 14 and 19.
    """
    predicate.require_balanced()
    if not np.isfinite(degree) or degree < 0:
        raise ValueError(f"degree must be a finite number >= 0, got {degree}")
    if init not in POPULATION_INITS:
        raise ValueError(f"init must be one of {POPULATION_INITS}, got {init!r}")
    sweeps = require_int(sweeps, "the number of equilibration sweeps", minimum=0)
    measure = require_int(measure, "the number of measurement sweeps", minimum=1)
    if samples is not None:
        samples = require_int(samples, "samples per measurement sweep", minimum=1)
    check_collapse_q(collapse_q)
    per = _check_population(predicate, population)
    gen = as_generator(rng)
    k, m = predicate.k, predicate.m
    arr = PredicateArrays.of(predicate)
    mean_deg = float(degree) / (k - 1)

    pop = np.empty((m, per, m))
    if init == "planted":
        pop[:] = 0.0
        for c in range(m):
            pop[c, :, c] = 1.0
    else:
        pop[:] = 1.0 / m
        for c in range(m):
            pop[c, :, :] *= 0.99
            pop[c, :, c] += 0.01

    trace = np.empty(sweeps + measure)
    bad = 0
    # equilibrate in chunks so that a collapsed population stops early
    done = 0
    chunk = 10
    while done < sweeps:
        step = min(chunk, sweeps - done)
        bad += K.pd_sweeps(gen, pop, step, mean_deg, arr.code, arr.sat, arr.sc_off,
                           arr.sc_idx, k, m, trace[done:done + step])
        done += step
        if trace[done - 1] < 1e-6:
            break
    eq = done
    n_samples = int(samples) if samples is not None else per * m
    if n_samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    log_gamma = math.log(predicate.gamma)
    terms = np.empty((measure, 7))
    one = np.empty(1)
    for r in range(measure):
        bad += K.pd_sweeps(gen, pop, 1, mean_deg, arr.code, arr.sat, arr.sc_off, arr.sc_idx,
                           k, m, one)
        trace[eq + r] = one[0]
        K.pd_measure(gen, pop, n_samples, mean_deg, arr.code, arr.sat, arr.sc_off, arr.sc_idx,
                     k, m, log_gamma, terms[r])
        bad += int(terms[r, 6])
    trace = trace[: eq + measure].copy()

    phi_tr = _control_variate(terms, mean_deg)
    dphi, dphi_err = _batch_mean_err(phi_tr)
    b, b_err = _batch_mean_err(terms[:, 4])
    o, o_err = _batch_mean_err(terms[:, 5])
    scale = m / (m - 1.0)
    half = measure // 2
    if half >= 2:
        d1, e1 = _batch_mean_err(phi_tr[:half], 5)
        d2, e2 = _batch_mean_err(phi_tr[half:], 5)
        den = math.hypot(e1, e2)
        drift = (d2 - d1) / den if den > 0 else 0.0
    else:
        drift = 0.0
    phi_para = phi_paramagnetic(predicate, degree)
    return PopulationResult(
        degree=float(degree),
        population=per,
        sweeps=eq,
        measure=measure,
        delta_phi=dphi,
        delta_phi_err=dphi_err,
        phi_planted=phi_para + dphi,
        phi_para=phi_para,
        overlap=(o - 1.0 / m) * scale,
        overlap_err=o_err * scale,
        q=(b - 1.0 / m) * scale,
        q_err=b_err * scale,
        collapsed=bool(trace[-1] < collapse_q),
        drift_z=float(drift),
        contradictions=int(bad),
        trace=trace,
        phi_trace=phi_tr,
    )
