"""Spinodal and condensation thresholds from planted population dynamics."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

import numpy as np

from lohard._util import RNGLike, as_generator, require_int
from lohard.cavity import _kernels as K
from lohard.cavity._popdyn import (
    DEFAULT_COLLAPSE_Q,
    PredicateArrays,
    _check_population,
    check_collapse_q,
    population_dynamics,
)
from lohard.predicates import Predicate

log = logging.getLogger("lohard.cavity")

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


def _child(seed: np.random.SeedSequence, j: int) -> np.random.SeedSequence:
    """The j-th child of ``seed``, without the spawn counter (the same on every call)."""
    return np.random.SeedSequence(seed.entropy, spawn_key=(*seed.spawn_key, int(j)))


def _run_cells(func, cells, seed, *, n_jobs, backend, cells_dir, desc):
    """Run cells through :func:`lohard.sweep.run_sweep`, keeping finished cells in ``cells_dir``.

    A single cell runs in-process (the result does not depend on the backend,
    only on the cell and its seed); ``cells_dir`` makes an interrupted
    computation resume with only the missing cells.
    """
    from lohard.sweep import cached_record, run_sweep

    if len(cells) == 1 and backend in ("loky", "multiprocessing", "threading"):
        backend = "sequential"
    root = _seed_int(seed)
    done = 0
    if cells_dir is not None:
        done = sum(cached_record(cells_dir, c, root, i) is not None
                   for i, c in enumerate(cells))
    name = cells[0]["predicate"]["name"] if cells and "predicate" in cells[0] else ""
    if done < len(cells):
        # (worded unlike the summary line below, which counts each stage once)
        log.info("%s %s: computing %d of %d cells ...", name, desc, len(cells) - done,
                 len(cells))
    t0 = time.perf_counter()
    recs = run_sweep(func, cells, root_seed=root, n_jobs=n_jobs, backend=backend,
                     out_dir=cells_dir, progress=False, desc=desc)
    log.info("%s %s: %d cell(s), %d from cache, %.1f s", name, desc, len(cells), done,
             time.perf_counter() - t0)
    return recs


def first_moment_degree(predicate: Predicate) -> float:
    r"""Degree where the annealed free entropy of the null model vanishes.

    .. math:: \log m + \frac{d}{k(k-1)} \log\gamma = 0 \quad\Longrightarrow\quad
              d_{1m} = -\frac{k(k-1) \log m}{\log \gamma}.

    Above :math:`d_{1m}` a null instance has no solution with high probability
    while a planted one has one, so the ensembles are distinguishable:
    :math:`d_{sp} \le d_{cond} \le d_{1m}`. Infinite if every tuple
    satisfies g (gamma = 1).
    """
    k, m, g = predicate.k, predicate.m, predicate.gamma
    if g >= 1.0:
        return float("inf")
    return -k * (k - 1) * math.log(m) / math.log(g)


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
    sweeps = require_int(sweeps, "sweeps", minimum=1)
    check_collapse_q(collapse_q)
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


def _survive_cell(cell: dict, seed: np.random.SeedSequence) -> dict:
    """One survival test (a pure function of cell and seed)."""
    ok, q, used = survives(predicate_from_cell(cell["predicate"]), cell["degree"],
                           population=cell["population"], sweeps=cell["sweeps"],
                           collapse_q=cell["collapse_q"], rng=np.random.default_rng(seed))
    return {"degree": cell["degree"], "survived": ok, "q": q, "sweeps": used}


def _survival(predicate, degree, *, population, sweeps, collapse_q, seed, n_jobs, backend,
              cells_dir, tag) -> dict:
    cell = {"predicate": predicate_cell(predicate), "degree": float(degree),
            "population": int(population), "sweeps": int(sweeps), "collapse_q": collapse_q,
            "tag": tag}
    res = _run_cells(_survive_cell, [cell], seed, n_jobs=n_jobs, backend=backend,
                     cells_dir=cells_dir, desc=tag)[0]["result"]
    log.info("%s %s: at d = %.6g the planted population %s (q = %.4g after %d sweeps)",
             predicate.name, tag, res["degree"], "survived" if res["survived"] else "collapsed",
             res["q"], res["sweeps"])
    return res


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
        log.info("%s d_sp bisection (repeat %s): d = %.6g %s (q = %.4g); d_sp in [%.6g, %.6g]",
                 pred.name, cell.get("repeat", "-"), mid, "survived" if ok else "collapsed", q,
                 lo, hi)
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
    population: int = 6_000,
    sweeps: int = DEFAULT_SPINODAL_SWEEPS,
    tol: float | None = None,
    repeats: int = 3,
    collapse_q: float = DEFAULT_COLLAPSE_Q,
    rng: RNGLike = None,
    n_jobs: int = 1,
    backend: str = "loky",
    cells_dir: str | None = None,
    ends: tuple[dict, dict] | None = None,
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
    cells_dir : path, optional
        Keep every finished run here, so that an interrupted call resumes.
    ends : (dict, dict), optional
        Survival tests already run at d_lo and d_hi (``{"survived", "q"}``),
        which then are not repeated.

    Returns
    -------
    ThresholdEstimate
    """
    predicate.require_balanced()
    _check_population(predicate, population)
    if not d_hi > d_lo >= 0:
        raise ValueError(f"need 0 <= d_lo < d_hi, got d_lo = {d_lo}, d_hi = {d_hi}")
    if repeats < 2:
        raise ValueError(f"need repeats >= 2 independent bisections for an error bar, "
                         f"got {repeats}")
    tol = 2e-3 * d_hi if tol is None else float(tol)
    if not tol > 0:
        raise ValueError(f"the bisection resolution tol must be > 0, got {tol}")
    ss = _as_seedseq(rng)
    s_ends, s_rep = _child(ss, 0), _child(ss, 1)
    kw = dict(population=population, sweeps=sweeps, collapse_q=collapse_q, n_jobs=n_jobs,
              backend=backend, cells_dir=cells_dir)
    if ends is None:
        ends = (_survival(predicate, d_lo, seed=_child(s_ends, 0), tag="sp_lo", **kw),
                _survival(predicate, d_hi, seed=_child(s_ends, 1), tag="sp_hi", **kw))
    (ok_lo, q_lo), (ok_hi, q_hi) = ((e["survived"], e["q"]) for e in ends)
    if ok_lo or not ok_hi:
        raise _bracket_error("the spinodal d_sp", predicate, d_lo, d_hi, f"{q_lo:.4f}",
                             f"{q_hi:.4f}", "the planted order parameter after "
                             f"{sweeps} sweeps (collapse below {collapse_q})")
    cell = {"predicate": predicate_cell(predicate), "d_lo": d_lo, "d_hi": d_hi, "tol": tol,
            "population": int(population), "sweeps": int(sweeps), "collapse_q": collapse_q}
    cells = [dict(cell, repeat=r) for r in range(repeats)]
    recs = _run_cells(_spinodal_cell, cells, s_rep, n_jobs=n_jobs, backend=backend,
                      cells_dir=cells_dir, desc="d_sp")
    vals = np.array([r["result"]["d_sp"] for r in recs])
    stat = float(vals.std(ddof=1) / math.sqrt(len(vals)))
    err = math.hypot(stat, tol / 2)
    return ThresholdEstimate(
        value=float(vals.mean()), err=err, estimates=vals.tolist(),
        diagnostics={"tol": tol, "population": int(population), "sweeps": int(sweeps),
                     "repeats": int(repeats), "bracket": [d_lo, d_hi],
                     "q_at_ends": [q_lo, q_hi],
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
              backend, tag, cells_dir=None):
    base = {"predicate": predicate_cell(predicate), "population": int(population),
            "sweeps": int(sweeps), "measure": int(measure), "collapse_q": collapse_q}
    cells = [dict(base, degree=float(d), tag=tag, index=i) for i, d in enumerate(degrees)]
    recs = _run_cells(_phi_cell, cells, seed, n_jobs=n_jobs, backend=backend,
                      cells_dir=cells_dir, desc=tag)
    return [r["result"] for r in recs]


def locate_condensation(
    predicate: Predicate,
    d_lo: float,
    d_hi: float,
    *,
    population: int = 12_000,
    sweeps: int = 40,
    measure: int = 20,
    grid: int = 4,
    repeats: int = 3,
    refine: int = 3,
    collapse_q: float = DEFAULT_COLLAPSE_Q,
    rng: RNGLike = None,
    n_jobs: int = 1,
    backend: str = "loky",
    cells_dir: str | None = None,
    ends: tuple[dict, dict] | None = None,
) -> ThresholdEstimate:
    r"""Condensation d_cond: the degree where the planted and paramagnetic free entropies cross.

    .. math:: \Delta\phi(d) = \phi_{\rm planted}(d) - \log m - \frac{d}{k(k-1)} \log\gamma,
              \qquad \Delta\phi(d_{\rm cond}) = 0.

    Steps: (1) check the bracket, (2) ``refine`` regula-falsi (Illinois)
    steps on single runs to find a rough root d0, (3) a grid of ``grid``
    degrees around d0, each run ``repeats`` times with independent seeds,
    (4) a straight-line fit of Delta phi against d through all grid runs; the
    estimate is its root. The error bar is the larger of the root's
    inverse-prediction error (from the scatter of the independent runs about
    the line, which includes the fluctuations of the population itself) and
    the standard error of the roots of separate fits to each repeat.

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
    cells_dir : path, optional
        Keep every finished run here, so that an interrupted call resumes.
    ends : (dict, dict), optional
        :meth:`PopulationResult.summary` of runs already made at d_lo and
        d_hi with these settings, which then are not repeated.

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
    s_br, s_ref, s_grid = _child(ss, 0), _child(ss, 1), _child(ss, 2)
    kw = dict(population=population, sweeps=sweeps, measure=measure, collapse_q=collapse_q,
              n_jobs=n_jobs, backend=backend, cells_dir=cells_dir)
    if ends is None:
        ends = tuple(_phi_runs(predicate, [d_lo, d_hi], seed=s_br, tag="bracket", **kw))
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
    for j in range(refine):
        c = (a * fb - b * fa) / (fb - fa)
        rc = _phi_runs(predicate, [c], seed=_child(s_ref, j), tag=f"refine{j}", **kw)[0]
        steps.append(rc)
        fc = rc["delta_phi"]
        log.info("%s d_cond bracketing step %d of %d: probe d = %.6g in [%.6g, %.6g]: %s",
                 predicate.name, j + 1, refine, c, a, b,
                 "collapsed" if rc["collapsed"] else f"Delta phi = {fc:.3e}")
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
    pooled = _pooled_root(runs)
    if not roots or pooled is None:
        raise RuntimeError(
            f"condensation fit failed for {predicate.name}: no repeat gave an increasing "
            f"Delta phi(d) on [{degrees[0]:g}, {degrees[-1]:g}]; raise the population"
        )
    roots_a = np.array(roots)
    # Two error bars; the larger is reported. The spread of the per-repeat roots has
    # only repeats - 1 degrees of freedom (with 3 repeats it is below a third of the
    # true value one time in ten); the scatter of all grid runs about one straight
    # line has grid * repeats - 2, and every run is independent, so it includes the
    # population's own run-to-run fluctuations.
    spread = float(roots_a.std(ddof=1) / math.sqrt(roots_a.size)) if roots_a.size > 1 else (
        float("inf"))
    value, fit_err = pooled["root"], pooled["root_err"]
    err = max(spread, fit_err)
    return ThresholdEstimate(
        value=value, err=err, estimates=roots_a.tolist(),
        diagnostics={
            "bracket": list(ends), "refine": steps, "grid": degrees.tolist(), "runs": runs,
            "fits": fits, "pooled_fit": pooled, "err_spread": spread, "err_fit": fit_err,
            "extrapolated": bool(not degrees[0] <= value <= degrees[-1]),
            "max_abs_drift_z": float(max(abs(q["drift_z"]) for q in runs)),
            "contradictions": int(sum(q["contradictions"] for q in runs)),
            "population": int(population), "sweeps": int(sweeps), "measure": int(measure),
            "repeats": int(repeats),
        },
    )


def _pooled_root(runs: list[dict]) -> dict | None:
    r"""Root of one least-squares line through every non-collapsed run, with its error.

    .. math:: \operatorname{Var} \hat d \approx \frac{s^2}{b^2}
              \left(\frac1n + \frac{(\hat d - \bar x)^2}{S_{xx}}\right)

    (inverse prediction; s^2 the residual variance with n - 2 degrees of freedom,
    b the slope). None if fewer than 3 points or a non-increasing line.
    """
    x = np.array([q["degree"] for q in runs if not q["collapsed"]], dtype=np.float64)
    y = np.array([q["delta_phi"] for q in runs if not q["collapsed"]], dtype=np.float64)
    n = x.size
    if n < 3 or np.ptp(x) == 0:
        return None
    slope, icpt = np.polyfit(x, y, 1)
    if not slope > 0:
        return None
    resid = y - (slope * x + icpt)
    s2 = float(resid @ resid) / (n - 2)
    root = -icpt / slope
    sxx = float(((x - x.mean()) ** 2).sum())
    err = math.sqrt(s2 / slope**2 * (1.0 / n + (root - x.mean()) ** 2 / sxx))
    return {"root": float(root), "root_err": err, "slope": float(slope),
            "intercept": float(icpt), "residual_sd": math.sqrt(s2), "points": int(n)}


# -- continuous or discontinuous --------------------------------------------------------
# Relative distance from d_KS of the degrees that classify the transition.
DEFAULT_KS_EPS = 0.05

# Largest ratio q(d_KS (1 + eps)) / q(d_KS (1 + 2 eps)) of a continuous transition. The
# informative branch of a continuous (transcritical) transition starts at q = 0 and
# grows about linearly, ratio ~1/2 (less where it curves up, as for 3-colouring);
# a jump at a spinodal just below d_KS gives a ratio near 1 (0.97 for 4-colouring).
CONTINUOUS_MAX_RATIO = 0.75


def _q_cell(cell: dict, seed: np.random.SeedSequence) -> dict:
    """Order parameter of the planted fixed point at one degree (pure in cell and seed)."""
    res = population_dynamics(predicate_from_cell(cell["predicate"]), cell["degree"],
                              population=cell["population"], sweeps=cell["sweeps"],
                              measure=cell["measure"], collapse_q=cell["collapse_q"], rng=seed)
    return res.summary()


def classify_transition(
    predicate: Predicate,
    *,
    population: int = 6_000,
    sweeps: int = DEFAULT_SPINODAL_SWEEPS,
    eps: float = DEFAULT_KS_EPS,
    collapse_q: float = DEFAULT_COLLAPSE_Q,
    rng: RNGLike = None,
    n_jobs: int = 1,
    backend: str = "loky",
    cells_dir: str | None = None,
) -> dict:
    r"""Whether the informative fixed point appears continuously at d_KS.

    Continuous means no informative fixed point below d_KS and one whose
    overlap grows from 0 above it; then d_sp = d_cond = d_KS exactly (below
    d_KS only the paramagnetic fixed point exists, so Delta phi = 0; above it
    Delta phi > 0). Finite-sweep population dynamics cannot see a vanishing
    overlap, so a bisection would put d_sp slightly above d_KS; this test
    replaces it. In order:

    1. :math:`d_{1m} < d_{KS}` (:func:`first_moment_degree`): discontinuous,
       since :math:`d_{cond} \le d_{1m}`; no population dynamics needed.
    2. No KS point (lambda = 0, k-XOR): discontinuous (the informative branch
       appears with the frozen 2-core, at a finite overlap).
    3. The planted population survives at :math:`(1-\epsilon) d_{KS}`:
       discontinuous, and that degree is an upper bracket of d_sp.
    4. Otherwise the planted fixed point's normalised belief q at
       :math:`(1+\epsilon) d_{KS}` and :math:`(1+2\epsilon) d_{KS}`: continuous
       if :math:`q_1 / q_2 \le` ``CONTINUOUS_MAX_RATIO`` (q vanishing at d_KS),
       discontinuous (with d_sp between the two ends) otherwise.

    Returns
    -------
    dict
        ``transition`` ("continuous" or "discontinuous"), ``reason``, and the
        measured values (``survives_at``: a degree where the planted population
        was seen to survive, if any; ``collapses_at`` likewise).
    """
    predicate.require_balanced()
    _check_population(predicate, population)
    if not 0 < eps < 0.5:
        raise ValueError(f"eps must lie in (0, 0.5), got {eps}")
    d_ks = predicate.d_ks
    d_1m = first_moment_degree(predicate)
    out = {"d_ks": d_ks, "d_1m": d_1m, "eps": eps}
    if math.isfinite(d_ks) and d_1m < d_ks:
        return out | {"transition": "discontinuous",
                      "reason": f"d_cond <= d_1m = {d_1m:.6g} < d_KS = {d_ks:.6g} (first moment)"}
    if not math.isfinite(d_ks):
        return out | {"transition": "discontinuous",
                      "reason": "no Kesten-Stigum point (lambda = 0): the informative branch "
                                "appears at a finite overlap"}
    ss = _as_seedseq(rng)
    kw = dict(population=population, sweeps=sweeps, collapse_q=collapse_q, n_jobs=n_jobs,
              backend=backend, cells_dir=cells_dir)
    d_below = (1.0 - eps) * d_ks
    below = _survival(predicate, d_below, seed=_child(ss, 0), tag="ks_below", **kw)
    out["below"] = below
    if below["survived"]:
        return out | {"transition": "discontinuous", "survives_at": d_below,
                      "reason": f"the planted population survives {sweeps} sweeps at "
                                f"(1 - {eps}) d_KS = {d_below:.6g} (q = {below['q']:.3g})"}
    degrees = [(1.0 + eps) * d_ks, (1.0 + 2.0 * eps) * d_ks]
    base = {"predicate": predicate_cell(predicate), "population": int(population),
            "sweeps": int(sweeps), "measure": 10, "collapse_q": collapse_q, "tag": "ks_above"}
    recs = _run_cells(_q_cell, [dict(base, degree=d) for d in degrees], _child(ss, 1),
                      n_jobs=n_jobs, backend=backend, cells_dir=cells_dir, desc="ks_above")
    q1, q2 = (r["result"]["q"] for r in recs)
    out["above"] = [r["result"] for r in recs]
    out["q_above"] = [q1, q2]
    out["collapses_at"] = d_below
    if q2 <= 0.0:
        raise RuntimeError(
            f"the planted population of {predicate.name} collapses at (1 + 2 eps) d_KS = "
            f"{degrees[1]:.6g}, where the paramagnet is unstable; raise the population or sweeps"
        )
    ratio = q1 / q2
    out["q_ratio"] = ratio
    if ratio <= CONTINUOUS_MAX_RATIO:
        return out | {"transition": "continuous",
                      "reason": f"no informative fixed point at (1 - {eps}) d_KS (collapsed to "
                                f"q = {below['q']:.3g}) and q grows from 0 at d_KS: q = "
                                f"{q1:.3g}, {q2:.3g} at (1 + {eps}) and (1 + {2 * eps}) d_KS, "
                                f"ratio {ratio:.3f} <= {CONTINUOUS_MAX_RATIO}"}
    return out | {"transition": "discontinuous", "survives_at": degrees[0],
                  "reason": f"q jumps: q = {q1:.3g}, {q2:.3g} at (1 + {eps}) and (1 + {2 * eps})"
                            f" d_KS (ratio {ratio:.3f} > {CONTINUOUS_MAX_RATIO}), no informative"
                            f" fixed point at (1 - {eps}) d_KS"}


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
