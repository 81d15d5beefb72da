"""``thresholds_report``: d_KS, d_sp and d_cond of a predicate, cached on disk."""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from pathlib import Path

import numpy as np

from lohard._util import RNGLike, atomic_write_json, provenance, to_jsonable
from lohard.cavity._popdyn import DEFAULT_COLLAPSE_Q
from lohard.cavity._thresholds import (
    DEFAULT_SPINODAL_SWEEPS,
    _as_seedseq,
    _phi_runs,
    locate_condensation,
    locate_spinodal,
    predicate_cell,
    survives,
)
from lohard.predicates import Predicate

CACHE_ENV = "LOHARD_CACHE"

# Bumped whenever the algorithm changes, so stale cache entries are never read.
_CACHE_SCHEMA = 1

# Doublings tried when a threshold has no analytic upper bracket (k-XOR has no
# KS point); 2^12 times the start degree is far beyond any threshold of interest.
_MAX_DOUBLINGS = 12

XOR_NOTE = (
    "lambda = 0 for k-XOR: a small perturbation of the uniform messages is not "
    "transmitted through a parity clause, so the uniform fixed point is locally "
    "stable at every degree and there is no Kesten-Stigum threshold (d_KS = inf); "
    "recovery by BP needs the frozen (2-core) structure that appears at d_sp"
)


def default_cache_dir() -> Path:
    """``$LOHARD_CACHE`` if set, else ``~/.cache/lohard``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else Path.home() / ".cache" / "lohard"


def _cache_path(cache_dir: Path, config: dict) -> Path:
    blob = json.dumps(to_jsonable(config), sort_keys=True)
    key = hashlib.sha256(blob.encode()).hexdigest()[:24]
    return cache_dir / "cavity" / f"thresholds-{key}.json"


def thresholds_report(
    predicate: Predicate,
    *,
    rng: RNGLike = 0,
    population: int = 20_000,
    sp_population: int = 10_000,
    sweeps: int = 60,
    measure: int = 30,
    sp_sweeps: int = DEFAULT_SPINODAL_SWEEPS,
    repeats: int = 3,
    grid: int = 5,
    sp_tol: float | None = None,
    collapse_q: float = DEFAULT_COLLAPSE_Q,
    cache_dir: str | os.PathLike | None = None,
    use_cache: bool = True,
    compute: bool = True,
    n_jobs: int = 1,
    backend: str = "loky",
) -> dict:
    r"""Kesten-Stigum, spinodal and condensation degrees of a balanced predicate.

    d_KS is analytic (:attr:`Predicate.d_ks`); d_sp and d_cond come from planted
    population dynamics (:func:`locate_spinodal`, :func:`locate_condensation`).
    When the free entropy of the informative branch is already >= the
    paramagnetic one just above d_sp, the transition is continuous and
    d_cond = d_sp (planted 3-colouring: d_sp = d_cond = d_KS = 4).

    Parameters
    ----------
    predicate : Predicate
        Balanced (Assumption B.11); otherwise ValueError.
    rng : int, SeedSequence, Generator or None
        Seed; the default 0 makes repeated calls hit the cache. A Generator
        contributes one draw, which becomes the recorded seed.
    population, sweeps, measure, grid, repeats
        Settings of the free-entropy runs (messages in all, equilibration and
        measurement sweeps, fit points and independent repeats).
    sp_population, sp_sweeps, sp_tol
        Settings of the spinodal bisections.
    cache_dir : path, optional
        Cache root (default ``$LOHARD_CACHE`` or ``~/.cache/lohard``); the
        result is stored under ``cavity/`` keyed by predicate, settings and seed.
    use_cache : bool
        Read and write the cache.
    compute : bool
        If False, only read the cache: a missing entry raises FileNotFoundError.
    n_jobs, backend
        joblib workers and backend for the independent runs.

    Returns
    -------
    dict
        ``d_ks``, ``d_sp``, ``d_sp_err``, ``d_cond``, ``d_cond_err``,
        ``transition`` ("continuous"/"discontinuous"), ``d_ks_note`` (k-XOR),
        ``diagnostics``, ``config``, ``seed``, ``seconds``, ``meta``
        (provenance) and ``cached``.
    """
    predicate.require_balanced()
    if isinstance(rng, np.random.Generator):
        rng = int(rng.integers(0, 2**63 - 1))
    ss = _as_seedseq(rng)
    seed_desc = {"entropy": ss.entropy, "spawn_key": list(ss.spawn_key)}
    config = {
        "schema": _CACHE_SCHEMA, "predicate": predicate_cell(predicate),
        "population": int(population), "sp_population": int(sp_population),
        "sweeps": int(sweeps), "measure": int(measure), "sp_sweeps": int(sp_sweeps),
        "repeats": int(repeats), "grid": int(grid), "sp_tol": sp_tol,
        "collapse_q": collapse_q, "seed": seed_desc,
    }
    path = _cache_path(Path(cache_dir) if cache_dir else default_cache_dir(), config)
    if use_cache and path.exists():
        try:
            out = json.loads(path.read_text())
            out["cached"] = True
            return _revive(out)
        except (json.JSONDecodeError, KeyError):
            pass  # a damaged entry is recomputed
    if not compute:
        raise FileNotFoundError(f"no cached thresholds for {predicate.name} at {path}")
    t0 = time.perf_counter()
    d_ks = predicate.d_ks
    s_sp, s_br, s_cond = ss.spawn(3)
    g_br = np.random.default_rng(s_br)
    skw = dict(population=sp_population, sweeps=sp_sweeps, collapse_q=collapse_q)

    # -- spinodal bracket: survives just above d_KS; collapses at half of it ------------
    if math.isfinite(d_ks):
        hi = 1.05 * d_ks
    else:
        hi = 1.0
        for _ in range(_MAX_DOUBLINGS):
            if survives(predicate, hi, rng=g_br, **skw)[0]:
                break
            hi *= 2.0
    lo = 0.5 * hi
    for _ in range(_MAX_DOUBLINGS):
        if not survives(predicate, lo, rng=g_br, **skw)[0]:
            break
        lo *= 0.5
    sp = locate_spinodal(predicate, lo, hi, tol=sp_tol, repeats=repeats, rng=s_sp,
                         n_jobs=n_jobs, backend=backend, **skw)

    # -- condensation: first decide whether the transition is continuous -------------------
    ckw = dict(population=population, sweeps=sweeps, measure=measure, collapse_q=collapse_q,
               n_jobs=n_jobs, backend=backend)
    s_probe, s_loc = s_cond.spawn(2)
    d_lo = sp.value + max(3.0 * sp.err, 0.005 * sp.value)
    probe = None
    for j, sj in enumerate(s_probe.spawn(6)):
        probe = _phi_runs(predicate, [d_lo], seed=sj, tag=f"probe{j}", **ckw)[0]
        if not probe["collapsed"]:
            break
        d_lo *= 1.01
    assert probe is not None
    diagnostics = {"spinodal": {"estimates": sp.estimates, **sp.diagnostics},
                   "probe_above_spinodal": probe}
    if probe["collapsed"]:
        raise RuntimeError(
            f"the planted population of {predicate.name} collapses at every degree tried "
            f"above the estimated spinodal {sp.value:.4g} (up to {d_lo:.4g}); raise "
            "sp_sweeps or the population"
        )
    if probe["delta_phi"] >= -2.0 * probe["delta_phi_err"]:
        transition = "continuous"
        d_cond, d_cond_err = sp.value, sp.err
    else:
        transition = "discontinuous"
        if math.isfinite(d_ks):
            d_hi = d_ks
        else:
            d_hi = 1.25 * d_lo
            for j, sj in enumerate(s_probe.spawn(_MAX_DOUBLINGS)):
                r = _phi_runs(predicate, [d_hi], seed=sj, tag=f"up{j}", **ckw)[0]
                if r["delta_phi"] > 0:
                    break
                d_hi *= 1.25
        cond = locate_condensation(predicate, d_lo, d_hi, grid=grid, repeats=repeats,
                                   rng=s_loc, **ckw)
        d_cond, d_cond_err = cond.value, cond.err
        diagnostics["condensation"] = {"estimates": cond.estimates, **cond.diagnostics}
    out = {
        "predicate": predicate.name, "k": predicate.k, "m": predicate.m,
        "gamma": predicate.gamma, "lambda": predicate.lam,
        "d_ks": d_ks, "d_sp": sp.value, "d_sp_err": sp.err,
        "d_cond": d_cond, "d_cond_err": d_cond_err, "transition": transition,
        "convention": "d = (k-1) k P / N (mean number of clause-neighbours of a variable)",
        "seconds": time.perf_counter() - t0, "config": config, "seed": seed_desc,
        "diagnostics": diagnostics, "meta": provenance(config, seed_desc),
    }
    if not math.isfinite(d_ks):
        out["d_ks_note"] = XOR_NOTE
    if use_cache:
        atomic_write_json(path, out)
    out["cached"] = False
    return _revive(json.loads(json.dumps(to_jsonable(out))))


def _revive(out: dict) -> dict:
    """Undo the JSON encoding of infinities in the top-level numbers."""
    for key in ("d_ks", "d_sp", "d_sp_err", "d_cond", "d_cond_err"):
        v = out.get(key)
        if isinstance(v, str):
            out[key] = float(v)
        elif v is None:
            out[key] = float("nan")
    return out
