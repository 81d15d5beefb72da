"""``thresholds_report``: d_KS, d_sp and d_cond of a predicate, cached on disk."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lohard._util import (
    RNGLike,
    atomic_write_json,
    package_version,
    provenance,
    to_jsonable,
)
from lohard.cavity._popdyn import DEFAULT_COLLAPSE_Q
from lohard.cavity._thresholds import (
    DEFAULT_KS_EPS,
    DEFAULT_SPINODAL_SWEEPS,
    _as_seedseq,
    _child,
    _phi_runs,
    _survival,
    classify_transition,
    first_moment_degree,
    locate_condensation,
    locate_spinodal,
    predicate_cell,
)
from lohard.predicates import Predicate

CACHE_ENV = "LOHARD_CACHE"

# Bumped whenever the algorithm or the file format changes, so stale cache entries
# are never read. 2: fast index draws, continuity test, first-moment brackets, cells;
# 3: d_cond from one line through all grid runs, error bar from its scatter.
_CACHE_SCHEMA = 3

# Doublings tried when a threshold has no analytic upper bracket; 2^12 times the
# start degree is far beyond any threshold of interest.
_MAX_DOUBLINGS = 12

# Populations of the free-entropy runs and the spinodal bisections for predicates
# of moderate degree (all colourings q <= 10, NAE(3,3), 3-XOR): the cost of a sweep
# grows like the mean number of clauses per variable, d / (k - 1).
BASE_POPULATION = 12_000
BASE_SP_POPULATION = 6_000
# Above this many clauses per variable (at the smaller of d_1m and d_KS, where the
# thresholds lie) the default populations shrink in proportion, so a sweep costs
# about the same; 45 keeps q-colouring up to q = 10 and NAE(3,3) at the base sizes.
REFERENCE_CLAUSES = 45.0
# Floors of the shrunken populations: 750 / 375 messages per colour for m = 4.
MIN_DEFAULT_POPULATION = 3_000
MIN_DEFAULT_SP_POPULATION = 1_500

XOR_NOTE = (
    "lambda = 0 for k-XOR: a small perturbation of the uniform messages is not "
    "transmitted through a parity clause, so the uniform fixed point is locally "
    "stable at every degree and there is no Kesten-Stigum threshold (d_KS = inf); "
    "recovery by BP needs the frozen (2-core) structure that appears at d_sp"
)


@dataclass(frozen=True)
class ThresholdSettings:
    """Settings of :func:`thresholds_report`; the single source of its defaults.

    ``simulations/thresholds_table.py`` and ``lohard thresholds --cavity`` both
    use :data:`DEFAULT_SETTINGS`, so they share cache entries.
    """

    population: int | None = None  # messages per free-entropy run; None: default_populations
    sp_population: int | None = None  # messages per spinodal bisection; None: likewise
    sweeps: int = 40  # equilibration sweeps of a free-entropy run
    measure: int = 20  # measurement sweeps of a free-entropy run
    sp_sweeps: int = DEFAULT_SPINODAL_SWEEPS  # sweeps a population gets to collapse
    repeats: int = 3  # independent repeats behind every error bar
    grid: int = 4  # degrees in the straight-line fit of Delta phi around d_cond
    refine: int = 3  # regula-falsi steps that locate the fit window
    sp_tol: float | None = None  # bisection resolution (None: 2e-3 times the upper end)
    collapse_q: float = DEFAULT_COLLAPSE_Q  # order parameter of a collapsed population
    ks_eps: float = DEFAULT_KS_EPS  # relative offsets from d_KS of the continuity test

    def resolved(self, predicate: Predicate) -> ThresholdSettings:
        """These settings with the populations filled in for ``predicate``."""
        pop, sp = default_populations(predicate)
        return dataclasses.replace(
            self,
            population=int(self.population if self.population is not None else pop),
            sp_population=int(self.sp_population if self.sp_population is not None else sp),
        )


DEFAULT_SETTINGS = ThresholdSettings()


def default_populations(predicate: Predicate) -> tuple[int, int]:
    """Default (free-entropy, spinodal) populations: base sizes, shrunk at large degree.

    With c the mean number of clauses per variable at min(d_1m, d_KS), both
    base sizes are scaled by min(1, REFERENCE_CLAUSES / c), rounded to a
    multiple of m and floored at MIN_DEFAULT_POPULATION / MIN_DEFAULT_SP_POPULATION.
    The error bars (from independent repeats) grow accordingly.
    """
    d_ref = min(first_moment_degree(predicate), predicate.d_ks)
    m = predicate.m
    scale = 1.0
    if math.isfinite(d_ref) and d_ref > 0:
        scale = min(1.0, REFERENCE_CLAUSES / (d_ref / (predicate.k - 1)))

    def size(base, floor):
        return base if scale == 1.0 else max(floor, int(round(base * scale / m)) * m)

    return size(BASE_POPULATION, MIN_DEFAULT_POPULATION), size(BASE_SP_POPULATION,
                                                               MIN_DEFAULT_SP_POPULATION)


def default_cache_dir() -> Path:
    """``$LOHARD_CACHE`` if set, else ``~/.cache/lohard``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else Path.home() / ".cache" / "lohard"


def cache_key(config: dict) -> str:
    """Hash of everything that determines a report (not workers or backend)."""
    blob = json.dumps(to_jsonable(config), sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def thresholds_report(
    predicate: Predicate,
    *,
    rng: RNGLike = 0,
    settings: ThresholdSettings | None = None,
    population: int | None = None,
    sp_population: int | None = None,
    sweeps: int | None = None,
    measure: int | None = None,
    sp_sweeps: int | None = None,
    repeats: int | None = None,
    grid: int | None = None,
    sp_tol: float | None = None,
    collapse_q: float | None = None,
    cache_dir: str | os.PathLike | None = None,
    use_cache: bool = True,
    compute: bool = True,
    n_jobs: int = 1,
    backend: str = "loky",
) -> dict:
    r"""Kesten-Stigum, spinodal and condensation degrees of a balanced predicate.

    d_KS is analytic (:attr:`Predicate.d_ks`). :func:`classify_transition`
    decides first whether the informative fixed point appears continuously at
    d_KS; then d_sp = d_cond = d_KS exactly (planted 3-colouring: 4). Otherwise
    d_sp comes from bisections of the planted population's survival
    (:func:`locate_spinodal`) and d_cond from the crossing of the planted and
    paramagnetic free entropies (:func:`locate_condensation`), both bracketed
    below the first-moment degree d_1m >= d_cond.

    Parameters
    ----------
    predicate : Predicate
        Balanced (Assumption B.11); otherwise ValueError.
    rng : int, SeedSequence, Generator or None
        Seed; the default 0 makes repeated calls hit the cache. A Generator
        contributes one draw, which becomes the recorded seed.
    settings : ThresholdSettings, optional
        Default :data:`DEFAULT_SETTINGS`; the keyword arguments below override
        single fields (None: keep).
    population, sp_population, sweeps, measure, sp_sweeps, repeats, grid, sp_tol, collapse_q
        See :class:`ThresholdSettings`.
    cache_dir : path, optional
        Cache root (default ``$LOHARD_CACHE`` or ``~/.cache/lohard``); the
        report is stored under ``cavity/`` keyed by the predicate's truth table,
        the resolved settings, the seed, the cache schema and the package
        version. While it is computed, every finished run is kept under
        ``cavity/cells-<key>/``, so an interrupted call resumes where it stopped.
    use_cache : bool
        Read and write the cache.
    compute : bool
        If False, only read the cache: a missing entry raises FileNotFoundError.
    n_jobs, backend
        joblib workers and backend for the independent runs (no effect on results).

    Returns
    -------
    dict
        ``d_ks``, ``d_1m``, ``d_sp``, ``d_sp_err``, ``d_cond``, ``d_cond_err``,
        ``transition`` ("continuous"/"discontinuous") with ``transition_reason``,
        ``d_ks_note`` (k-XOR), ``diagnostics``, ``config``, ``seed``,
        ``seconds``, ``meta`` (provenance) and ``cached``.
    """
    predicate.require_balanced()
    over = {"population": population, "sp_population": sp_population, "sweeps": sweeps,
            "measure": measure, "sp_sweeps": sp_sweeps, "repeats": repeats, "grid": grid,
            "sp_tol": sp_tol, "collapse_q": collapse_q}
    base = settings if settings is not None else DEFAULT_SETTINGS
    st = dataclasses.replace(base, **{k: v for k, v in over.items() if v is not None})
    st = st.resolved(predicate)
    if isinstance(rng, np.random.Generator):
        rng = int(rng.integers(0, 2**63 - 1))
    ss = _as_seedseq(rng)
    seed_desc = {"entropy": ss.entropy, "spawn_key": list(ss.spawn_key)}
    config = {"schema": _CACHE_SCHEMA, "lohard_version": package_version(),
              "predicate": predicate_cell(predicate), "settings": dataclasses.asdict(st),
              "seed": seed_desc}
    key = cache_key(config)
    root = (Path(cache_dir) if cache_dir else default_cache_dir()) / "cavity"
    path = root / f"thresholds-{key}.json"
    if use_cache and path.exists():
        try:
            out = json.loads(path.read_text())
            out["cached"] = True
            return _revive(out)
        except (json.JSONDecodeError, KeyError):
            pass  # a damaged entry is recomputed
    if not compute:
        raise FileNotFoundError(f"no cached thresholds for {predicate.name} at {path}")
    cells_dir = str(root / f"cells-{key}") if use_cache else None
    t0 = time.perf_counter()
    out = _compute(predicate, st, ss, n_jobs=n_jobs, backend=backend, cells_dir=cells_dir)
    out.update({"seconds": time.perf_counter() - t0, "config": config, "seed": seed_desc,
                "meta": provenance(config, seed_desc)})
    if use_cache:
        atomic_write_json(path, out)
        shutil.rmtree(cells_dir, ignore_errors=True)  # the report holds every run
    out["cached"] = False
    return _revive(json.loads(json.dumps(to_jsonable(out))))


def _compute(predicate: Predicate, st: ThresholdSettings, ss, *, n_jobs, backend,
             cells_dir) -> dict:
    """The report's numbers; every run is a cell of ``cells_dir`` (resumable)."""
    d_ks, d_1m = predicate.d_ks, first_moment_degree(predicate)
    s_tr, s_br, s_sp, s_cond = (_child(ss, j) for j in range(4))
    par = dict(n_jobs=n_jobs, backend=backend, cells_dir=cells_dir)
    out = {"predicate": predicate.name, "k": predicate.k, "m": predicate.m,
           "gamma": predicate.gamma, "lambda": predicate.lam, "d_ks": d_ks, "d_1m": d_1m,
           "convention": "d = (k-1) k P / N (mean number of clause-neighbours of a variable)"}
    if not math.isfinite(d_ks):
        out["d_ks_note"] = XOR_NOTE

    # (1) continuous or discontinuous
    tr = classify_transition(predicate, population=st.sp_population, sweeps=st.sp_sweeps,
                             eps=st.ks_eps, collapse_q=st.collapse_q, rng=s_tr, **par)
    diagnostics: dict = {"transition": tr}
    out.update(transition=tr["transition"], transition_reason=tr["reason"],
               diagnostics=diagnostics)
    if tr["transition"] == "continuous":
        # exact: no informative fixed point below d_KS, Delta phi = 0 up to d_KS, > 0 above
        return out | {"d_sp": d_ks, "d_sp_err": 0.0, "d_cond": d_ks, "d_cond_err": 0.0}

    # (2) spinodal bracket: d_sp <= d_cond <= d_1m, and below (1 - eps) d_KS if seen there
    skw = dict(population=st.sp_population, sweeps=st.sp_sweeps, collapse_q=st.collapse_q,
               **par)
    tests: list[dict] = []

    def test(d):
        r = _survival(predicate, d, seed=_child(s_br, len(tests)), tag=f"br{len(tests)}",
                      **skw)
        tests.append(r)
        return r

    hi_run = None
    known = tr.get("survives_at")
    if math.isfinite(d_1m) and (known is None or d_1m < known):
        r = test(d_1m)
        if r["survived"]:
            hi_run = r
    if hi_run is None and known is not None:
        hi_run = {"degree": known, "survived": True, "q": float("nan")}
    if hi_run is None:
        d = 1.05 * d_ks if math.isfinite(d_ks) else 1.0
        for _ in range(_MAX_DOUBLINGS):
            r = test(d)
            if r["survived"]:
                hi_run = r
                break
            d *= 2.0
    if hi_run is None:
        raise RuntimeError(f"the planted population of {predicate.name} collapsed at every "
                           f"degree tried: {[t['degree'] for t in tests]}")
    lo_run = None
    d = 0.75 * hi_run["degree"]
    for _ in range(_MAX_DOUBLINGS):
        r = test(d)
        if not r["survived"]:
            lo_run = r
            break
        d *= 0.5
    if lo_run is None:
        raise RuntimeError(f"the planted population of {predicate.name} survived at every "
                           f"degree tried: {[t['degree'] for t in tests]}")
    diagnostics["spinodal_bracket"] = tests
    sp = locate_spinodal(predicate, lo_run["degree"], hi_run["degree"], tol=st.sp_tol,
                         repeats=st.repeats, rng=s_sp, ends=(lo_run, hi_run), **skw)
    diagnostics["spinodal"] = {"estimates": sp.estimates, **sp.diagnostics}

    # (3) condensation between the informative branch just above d_sp and d_1m
    ckw = dict(population=st.population, sweeps=st.sweeps, measure=st.measure,
               collapse_q=st.collapse_q, **par)
    s_probe, s_up, s_loc = (_child(s_cond, j) for j in range(3))
    d_lo = sp.value + max(3.0 * sp.err, 0.005 * sp.value)
    probe = None
    for j in range(6):
        probe = _phi_runs(predicate, [d_lo], seed=_child(s_probe, j), tag=f"probe{j}",
                          **ckw)[0]
        if not probe["collapsed"]:
            break
        d_lo *= 1.01
    assert probe is not None
    if probe["collapsed"]:
        raise RuntimeError(
            f"the planted population of {predicate.name} collapses at every degree tried "
            f"above the estimated spinodal {sp.value:.4g} (up to {d_lo:.4g}); raise "
            "sp_sweeps or the population"
        )
    cands = [d for d in (d_1m, d_ks) if math.isfinite(d) and d > d_lo]
    d_hi = cands[0] if cands else 1.25 * d_lo
    up = None
    for j in range(_MAX_DOUBLINGS):
        up = _phi_runs(predicate, [d_hi], seed=_child(s_up, j), tag=f"up{j}", **ckw)[0]
        if up["delta_phi"] > 0:
            break
        d_hi = d_ks if (math.isfinite(d_ks) and d_hi < d_ks) else 1.25 * d_hi
    cond = locate_condensation(predicate, d_lo, d_hi, grid=st.grid, repeats=st.repeats,
                               refine=st.refine, rng=s_loc, ends=(probe, up), **ckw)
    diagnostics["condensation"] = {"estimates": cond.estimates, **cond.diagnostics}
    return out | {"d_sp": sp.value, "d_sp_err": sp.err, "d_cond": cond.value,
                  "d_cond_err": cond.err}


def _revive(out: dict) -> dict:
    """Undo the JSON encoding of infinities in the top-level numbers."""
    for key in ("d_ks", "d_1m", "d_sp", "d_sp_err", "d_cond", "d_cond_err"):
        v = out.get(key)
        if isinstance(v, str):
            out[key] = float(v)
        elif v is None and key in out:
            out[key] = float("nan")
    return out
