"""Spinodal and condensation thresholds from planted population dynamics."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from lohard._util import RNGLike, as_generator
from lohard.cavity import _kernels as K
from lohard.cavity._popdyn import (
    DEFAULT_COLLAPSE_Q,
    PredicateArrays,
    _check_population,
    population_dynamics,
)
from lohard.predicates import Predicate

# Sweeps a planted population gets to collapse at a probe degree. Below the
# spinodal the collapse time diverges only like (d_sp - d)^(-1/2) (saddle-node
# bottleneck), so 150 sweeps resolve d_sp to well under 1e-3 relative; the
# residual bias is towards smaller d_sp.
DEFAULT_SPINODAL_SWEEPS = 150


# -- predicates travel to workers as plain JSON ---------------------------------------
def predicate_cell(predicate: Predicate) -> dict:
    """JSON-able description that rebuilds the predicate exactly (table, name, kernel)."""
    return {"table": predicate.table.tolist(), "name": predicate.name,
            "kernel": int(predicate.kernel)}


def predicate_from_cell(cell: dict) -> Predicate:
    return Predicate(np.asarray(cell["table"], dtype=np.uint8), name=cell["name"],
                     kernel=int(cell["kernel"]))


def _seed_int(seed: np.random.SeedSequence) -> int:
    return int(seed.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


# -- spinodal ---------------------------------------------------------------------------
def survives(predicate: Predicate, degree: float, *, population: int,
             sweeps: int = DEFAULT_SPINODAL_SWEEPS, collapse_q: float = DEFAULT_COLLAPSE_Q,
             rng: RNGLike = None) -> tuple[bool, float, int]:
    """Whether the planted (informative) population survives ``sweeps`` sweeps at ``degree``.

    Returns
    -------
    survived : bool
    q : float
        Final cavity order parameter (m <mu(sigma)> - 1) / (m - 1).
    used : int
        Sweeps run (a collapsed population stops early).
    """
    per = _check_population(predicate, population)
    gen = as_generator(rng)
    k, m = predicate.k, predicate.m
    arr = PredicateArrays.of(predicate)
    pop = np.zeros((m, per, m))
    for c in range(m):
        pop[c, :, c] = 1.0
    trace = np.empty(sweeps)
    done = 0
    while done < sweeps:
        step = min(5, sweeps - done)
        K.pd_sweeps(gen, pop, step, float(degree) / (k - 1), arr.code, arr.sat, arr.sc_off,
                    arr.sc_idx, k, m, trace[done:done + step])
        done += step
        if trace[done - 1] < collapse_q:
            return False, float(trace[done - 1]), done
    return True, float(trace[done - 1]), done


def _spinodal_cell(cell: dict, seed: np.random.SeedSequence) -> dict:
    """One bisection for d_sp with its own seed (a pure function of cell and seed)."""
    pred = predicate_from_cell(cell["predicate"])
    lo, hi = float(cell["d_lo"]), float(cell["d_hi"])
    gen = np.random.default_rng(seed)
    history = []
    q_hi = float("nan")
    while hi - lo > cell["tol"]:
        mid = 0.5 * (lo + hi)
        ok, q, used = survives(pred, mid, population=cell["population"],
                               sweeps=cell["sweeps"], collapse_q=cell["collapse_q"], rng=gen)
        history.append({"degree": mid, "survived": ok, "q": q, "sweeps": used})
        if ok:
            hi, q_hi = mid, q
        else:
            lo = mid
    return {"d_sp": 0.5 * (lo + hi), "lo": lo, "hi": hi, "q_hi": q_hi, "history": history}


@dataclass
class ThresholdEstimate:
    """A threshold with its error bar and the runs behind it."""

    value: float
    err: float
    estimates: list = field(default_factory=list)
    diagnostics: dict = field(default_factory=dict)


def _bracket_error(name, predicate, d_lo, d_hi, v_lo, v_hi, what):
    return ValueError(
        f"the degree range [{d_lo:g}, {d_hi:g}] does not bracket {name} for {predicate.name}: "
        f"{what} is {v_lo} at d = {d_lo:g} and {v_hi} at d = {d_hi:g}; widen the range"
    )


def locate_spinodal(
    predicate: Predicate,
    d_lo: float,
    d_hi: float,
    *,
    population: int = 10_000,
    sweeps: int = DEFAULT_SPINODAL_SWEEPS,
    tol: float | None = None,
    repeats: int = 3,
    collapse_q: float = DEFAULT_COLLAPSE_Q,
    rng: RNGLike = None,
    n_jobs: int = 1,
    backend: str = "loky",
) -> ThresholdEstimate:
    r"""Spinodal d_sp: the smallest degree at which the planted population survives.

    Each of ``repeats`` independent populations bisects [d_lo, d_hi] down to
    ``tol``: at a probe degree the population starts one-hot on the planted
    colours and runs ``sweeps`` sweeps; it has collapsed if its order parameter
    falls below ``collapse_q``. The estimate is the mean of the repeats; the
    error bar is their standard error combined in quadrature with the
    bisection resolution tol / 2.

    Parameters
    ----------
    predicate : Predicate
        Balanced (Assumption B.11).
    d_lo, d_hi : float
        Degrees where the planted population must collapse, resp. survive;
        checked first (ValueError with the order parameters at both ends).
    population : int
        Messages in all (split evenly over the m planted colours).
    tol : float, optional
        Bisection resolution (default 2e-3 * d_hi).
    repeats : int
        Independent bisections (>= 2 for an error bar).
    rng, n_jobs, backend
        Seed; workers and joblib backend of :func:`lohard.sweep.run_sweep`.

    Returns
    -------
    ThresholdEstimate
    """
    from lohard.sweep import run_sweep

    predicate.require_balanced()
    _check_population(predicate, population)
    if not d_hi > d_lo >= 0:
        raise ValueError(f"need 0 <= d_lo < d_hi, got d_lo = {d_lo}, d_hi = {d_hi}")
    if repeats < 2:
        raise ValueError(f"need repeats >= 2 independent bisections for an error bar, "
                         f"got {repeats}")
    tol = 2e-3 * d_hi if tol is None else float(tol)
    ss = _as_seedseq(rng)
    s_ends, s_rep = ss.spawn(2)
    g_ends = np.random.default_rng(s_ends)
    ok_lo, q_lo, _ = survives(predicate, d_lo, population=population, sweeps=sweeps,
                              collapse_q=collapse_q, rng=g_ends)
    ok_hi, q_hi, _ = survives(predicate, d_hi, population=population, sweeps=sweeps,
                              collapse_q=collapse_q, rng=g_ends)
    if ok_lo or not ok_hi:
        raise _bracket_error("the spinodal d_sp", predicate, d_lo, d_hi, f"{q_lo:.4f}",
                             f"{q_hi:.4f}", "the planted order parameter after "
                             f"{sweeps} sweeps (collapse below {collapse_q})")
    cell = {"predicate": predicate_cell(predicate), "d_lo": d_lo, "d_hi": d_hi, "tol": tol,
            "population": int(population), "sweeps": int(sweeps), "collapse_q": collapse_q}
    cells = [dict(cell, repeat=r) for r in range(repeats)]
    recs = run_sweep(_spinodal_cell, cells, root_seed=_seed_int(s_rep), n_jobs=n_jobs,
                     backend=backend, progress=False, desc="d_sp")
    vals = np.array([r["result"]["d_sp"] for r in recs])
    stat = float(vals.std(ddof=1) / math.sqrt(len(vals)))
    err = math.hypot(stat, tol / 2)
    return ThresholdEstimate(
        value=float(vals.mean()), err=err, estimates=vals.tolist(),
        diagnostics={"tol": tol, "population": int(population), "sweeps": int(sweeps),
                     "repeats": int(repeats), "q_at_ends": [q_lo, q_hi],
                     "q_just_above": [r["result"]["q_hi"] for r in recs],
                     "bisections": [r["result"]["history"] for r in recs]},
    )


# -- condensation -----------------------------------------------------------------------
def _phi_cell(cell: dict, seed: np.random.SeedSequence) -> dict:
    """Free-entropy difference at one degree (a pure function of cell and seed)."""
    pred = predicate_from_cell(cell["predicate"])
    res = population_dynamics(pred, cell["degree"], population=cell["population"],
                              sweeps=cell["sweeps"], measure=cell["measure"],
                              collapse_q=cell["collapse_q"], rng=seed)
    return res.summary()


def _phi_runs(predicate, degrees, *, population, sweeps, measure, collapse_q, seed, n_jobs,
              backend, tag):
    from lohard.sweep import run_sweep

    base = {"predicate": predicate_cell(predicate), "population": int(population),
            "sweeps": int(sweeps), "measure": int(measure), "collapse_q": collapse_q}
    cells = [dict(base, degree=float(d), tag=tag, index=i) for i, d in enumerate(degrees)]
    recs = run_sweep(_phi_cell, cells, root_seed=_seed_int(seed), n_jobs=n_jobs,
                     backend=backend, progress=False, desc=tag)
    return [r["result"] for r in recs]


def locate_condensation(
    predicate: Predicate,
    d_lo: float,
    d_hi: float,
    *,
    population: int = 20_000,
    sweeps: int = 60,
    measure: int = 30,
    grid: int = 5,
    repeats: int = 3,
    refine: int = 4,
    collapse_q: float = DEFAULT_COLLAPSE_Q,
    rng: RNGLike = None,
    n_jobs: int = 1,
    backend: str = "loky",
) -> ThresholdEstimate:
    r"""Condensation d_cond: the degree where the planted and paramagnetic free entropies cross.

    .. math:: \Delta\phi(d) = \phi_{\rm planted}(d) - \log m - \frac{d}{k(k-1)} \log\gamma,
              \qquad \Delta\phi(d_{\rm cond}) = 0.

    Steps: (1) check the bracket, (2) ``refine`` regula-falsi (Illinois)
    steps on single runs to find a rough root d0, (3) a grid of ``grid``
    degrees around d0, each run ``repeats`` times with independent seeds,
    (4) a straight-line fit of Delta phi against d for every repeat; the
    estimate is the mean of the per-repeat roots and the error bar their
    standard error, which includes the fluctuations of the population itself.

    Parameters
    ----------
    predicate : Predicate
        Balanced (Assumption B.11).
    d_lo, d_hi : float
        Degrees with Delta phi < 0 (on the informative branch, i.e. above the
        spinodal) and Delta phi > 0.
    population, sweeps, measure
        Population dynamics settings of every run (see :func:`population_dynamics`).
    grid, repeats, refine : int
        Fit points, independent repeats per point, and root-bracketing steps.
    rng, n_jobs, backend
        Seed; workers and joblib backend of :func:`lohard.sweep.run_sweep`.

    Returns
    -------
    ThresholdEstimate
        ``diagnostics`` holds the bracketing runs, every grid run and the fits.
    """
    predicate.require_balanced()
    _check_population(predicate, population)
    if not d_hi > d_lo >= 0:
        raise ValueError(f"need 0 <= d_lo < d_hi, got d_lo = {d_lo}, d_hi = {d_hi}")
    if grid < 2 or repeats < 2:
        raise ValueError(
            f"need grid >= 2 fit points and repeats >= 2 (for an error bar), got {grid} and "
            f"{repeats}"
        )
    ss = _as_seedseq(rng)
    s_br, s_ref, s_grid = ss.spawn(3)
    kw = dict(population=population, sweeps=sweeps, measure=measure, collapse_q=collapse_q,
              n_jobs=n_jobs, backend=backend)
    ends = _phi_runs(predicate, [d_lo, d_hi], seed=s_br, tag="bracket", **kw)
    f_lo, f_hi = ends[0]["delta_phi"], ends[1]["delta_phi"]
    if ends[0]["collapsed"] or not (f_lo < 0 < f_hi):
        what = "Delta phi (planted minus paramagnetic free entropy per variable)"
        lo_txt = "collapsed to the paramagnet" if ends[0]["collapsed"] else f"{f_lo:.3e}"
        raise _bracket_error("the condensation d_cond", predicate, d_lo, d_hi, lo_txt,
                             f"{f_hi:.3e}", what)
    # (2) Illinois regula falsi on single noisy runs: only a starting point for the fit
    a, fa, b, fb = d_lo, f_lo, d_hi, f_hi
    side = 0
    steps = []
    for j, sj in enumerate(s_ref.spawn(refine)):
        c = (a * fb - b * fa) / (fb - fa)
        rc = _phi_runs(predicate, [c], seed=sj, tag=f"refine{j}", **kw)[0]
        steps.append(rc)
        fc = rc["delta_phi"]
        if rc["collapsed"]:  # fell off the informative branch: move the lower end up
            a, fa = c, fa
            continue
        if fc > 0:
            b, fb = c, fc
            if side == 1:
                fa *= 0.5
            side = 1
        else:
            a, fa = c, fc
            if side == -1:
                fb *= 0.5
            side = -1
    d0 = (a * fb - b * fa) / (fb - fa)
    half = max(0.15 * (b - a), 0.01 * d0)
    lo_g = max(d0 - half, d_lo)
    degrees = np.linspace(lo_g, lo_g + 2 * half, grid)
    runs = _phi_runs(predicate, np.tile(degrees, repeats), seed=s_grid, tag="grid", **kw)
    roots, fits = [], []
    for r in range(repeats):
        rr = runs[r * grid:(r + 1) * grid]
        x = np.array([q["degree"] for q in rr if not q["collapsed"]])
        y = np.array([q["delta_phi"] for q in rr if not q["collapsed"]])
        if x.size < 2:
            continue
        slope, icpt = np.polyfit(x, y, 1)
        fits.append({"slope": float(slope), "intercept": float(icpt), "points": int(x.size)})
        if slope > 0:
            roots.append(-icpt / slope)
    if not roots:
        raise RuntimeError(
            f"condensation fit failed for {predicate.name}: no repeat gave an increasing "
            f"Delta phi(d) on [{degrees[0]:g}, {degrees[-1]:g}]; raise the population"
        )
    roots_a = np.array(roots)
    # a single usable repeat has no spread: report an infinite error rather than none
    err = float(roots_a.std(ddof=1) / math.sqrt(roots_a.size)) if roots_a.size > 1 else (
        float("inf"))
    value = float(roots_a.mean())
    return ThresholdEstimate(
        value=value, err=err, estimates=roots_a.tolist(),
        diagnostics={
            "bracket": ends, "refine": steps, "grid": degrees.tolist(), "runs": runs,
            "fits": fits, "extrapolated": bool(not degrees[0] <= value <= degrees[-1]),
            "max_abs_drift_z": float(max(abs(q["drift_z"]) for q in runs)),
            "contradictions": int(sum(q["contradictions"] for q in runs)),
            "population": int(population), "sweeps": int(sweeps), "measure": int(measure),
            "repeats": int(repeats),
        },
    )


def _as_seedseq(rng: RNGLike) -> np.random.SeedSequence:
    """A SeedSequence from the rng contract (a Generator contributes one 63-bit draw)."""
    if isinstance(rng, np.random.SeedSequence):
        return rng
    if isinstance(rng, np.random.Generator):
        return np.random.SeedSequence(int(rng.integers(0, 2**63 - 1)))
    if rng is None:
        return np.random.SeedSequence()
    if isinstance(rng, bool) or not isinstance(rng, int | np.integer):
        raise TypeError(
            f"rng must be a numpy Generator, an int seed, a SeedSequence or None, got {type(rng)!r}"
        )
    return np.random.SeedSequence(int(rng))
