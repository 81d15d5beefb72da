"""Figure 4: overlap reached by BP from the ground truth and from a random start, against degree."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from lohard._util import (
    atomic_write,
    atomic_write_json,
    atomic_write_text,
    provenance,
    require_int,
)
from lohard.predicates import Predicate
from lohard.sweep import run_sweep

#: Version of the cell computation (:func:`_fig4_cell`). It is part of every cell, hence
#: of the sweep cache key: bump it when a cell computes something else, so that cached
#: cells of the old computation are never reused. 2: the random start's sweep cap
#: follows :func:`random_start_sweep_cap`, and cells report their caps.
CELL_VERSION = 2

#: N at which ``critical_sweeps`` was calibrated; the cap grows like ln N (see
#: :func:`random_start_sweep_cap`).
REFERENCE_N = 10_000

#: Default degrees of the finite-size study of NAE(3,3): around the spinodal
#: d_sp = 50.15 (49, 51), condensation d_cond = 52.52 (53) and d_KS = 64 (58, 64, 68, 72).
#: Few points, because every one costs a full BP run at N = 10^6 (see docs/fig4.md).
FINITE_SIZE_DEGREES = (49.0, 51.0, 53.0, 58.0, 64.0, 68.0, 72.0)

#: Columns of the CSV files, one row per (N, degree, instance) cell.
CELL_COLUMNS = ("realised_degree", "num_clauses", "overlap_truth", "overlap_random",
                "converged_truth", "converged_random", "iterations_truth",
                "iterations_random", "sweep_cap_truth", "sweep_cap_random",
                "last_change_truth", "last_change_random")

STARTS = ("truth", "random")


def random_start_sweep_cap(degree: float, d_ks: float, n: int, *, floor: int, ceiling: int,
                           critical_sweeps: float) -> int:
    r"""Sweeps allowed to BP from a random start at degree d on N variables.

    .. math::
        T(d, N) = \min\Big(\max\Big(\Big\lceil C\,\frac{\ln N / \ln 10^4}
                  {|\ln(d / d_{KS})|}\Big\rceil,\ T_{floor}\Big),\ T_{ceil}\Big)

    with :math:`T_{ceil}` raised to :math:`T_{floor}` if below it. Why: near d_KS the
    informative mode of BP linearised at the uniform point is multiplied by about
    (d / d_KS) per sweep, so a random start (overlap ~ N^{-1/2}) needs about
    ln(sqrt N) / ln(d / d_KS) sweeps to leave the uniform point above d_KS, and the
    initial noise decays as slowly below it. C = 20 at N = 10^4 was calibrated on
    NAE(3,3) (2 instances at each of d = 55, 58, ..., 73, up to 800 sweeps): recoveries
    took up to C = 14 (d = 70: 160 sweeps; d = 67: 163; d = 73: 82).

    Parameters
    ----------
    degree, d_ks : float
        The degree d = (k-1) k P / N and the Kesten-Stigum degree. Without a finite
        positive d_KS (XOR) the cap is ``floor``; at d = d_KS it is ``ceiling``.
    n : int
        Number of variables N (>= 2).
    floor, ceiling : int
        Fewest and most sweeps.
    critical_sweeps : float
        C, >= 0; 0 gives every random start ``floor`` sweeps (the old fixed cap).
    """
    n = require_int(n, "the number of variables N", minimum=2)
    return _critical_sweep_cap(degree, d_ks, math.log(n) / math.log(REFERENCE_N), floor,
                               ceiling, critical_sweeps, "random-start", "critical_sweeps")


def _critical_sweep_cap(degree: float, d_c: float, scale: float, floor: int, ceiling: int,
                        critical_sweeps: float, start: str, c_name: str) -> int:
    """ceil(C scale / |ln(d / d_c)|) between floor and ceiling (the rule of both caps)."""
    floor = require_int(floor, f"floor (fewest {start} sweeps)", minimum=1)
    ceiling = max(require_int(ceiling, f"ceiling (most {start} sweeps)", minimum=1), floor)
    if not (math.isfinite(critical_sweeps) and critical_sweeps >= 0):
        raise ValueError(f"{c_name} must be finite and >= 0, got {critical_sweeps}")
    if not (math.isfinite(d_c) and d_c > 0) or critical_sweeps == 0 or degree <= 0:
        return floor
    dist = abs(math.log(degree / d_c))
    if dist == 0.0:
        return ceiling
    want = critical_sweeps * scale / dist
    return int(min(max(math.ceil(want), floor), ceiling))


def truth_start_sweep_cap(degree: float, d_sp: float, *, floor: int, ceiling: int,
                          critical_sweeps: float) -> int:
    r"""Sweeps allowed to BP from the ground truth at degree d.

    .. math::
        T(d) = \min\Big(\max\Big(\Big\lceil \frac{C_{truth}}{|\ln(d / d_{sp})|}
               \Big\rceil,\ T_{floor}\Big),\ T_{ceil}\Big)

    with :math:`T_{ceil}` raised to :math:`T_{floor}` if below it. Why: at the spinodal
    d_sp the informative fixed point that BP starts next to appears by a saddle-node
    bifurcation. Just above d_sp BP reaches it slowly; just below, BP drifts through the
    bifurcation's ghost before it falls to the uninformative point, in a time that grows
    as d approaches d_sp (no dependence on N to first order, unlike the random start).
    Measured on NAE(3,3), N = 10^4 (the two instances of ``lohard fig4`` at d = 49 =
    0.977 d_sp): 188 and 134 sweeps, i.e. C = 4.4 and 3.1; the default C_truth = 10
    leaves twice that.

    Parameters
    ----------
    degree, d_sp : float
        The degree d = (k-1) k P / N and the spinodal degree (lohard's shipped cavity
        table). Without a finite positive d_sp the cap is ``floor``; at d = d_sp it is
        ``ceiling``.
    floor, ceiling : int
        Fewest and most sweeps.
    critical_sweeps : float
        C_truth, >= 0; 0 gives every truth start ``floor`` sweeps.
    """
    return _critical_sweep_cap(degree, d_sp, 1.0, floor, ceiling, critical_sweeps,
                               "truth-start", "truth_critical_sweeps")


def _d_sp(pred: Predicate) -> float:
    """The spinodal degree of lohard's shipped cavity table, NaN if it has none."""
    cav = shipped_cavity_thresholds(pred)
    return cav["d_sp"] if cav["available"] else float("nan")


def _check_bp_fields(cfg) -> None:
    """Validate the BP and sweep-cap fields shared by both configurations."""
    cfg.max_iter = require_int(cfg.max_iter, "max_iter (BP sweeps from the ground truth)",
                               minimum=1)
    cfg.max_iter_ceiling = require_int(cfg.max_iter_ceiling,
                                       "max_iter_ceiling (most sweeps of either start)", minimum=1)
    for name in ("critical_sweeps", "truth_critical_sweeps"):
        cs = float(getattr(cfg, name))
        if not (math.isfinite(cs) and cs >= 0):
            raise ValueError(f"{name} must be finite and >= 0, got {getattr(cfg, name)}")
        setattr(cfg, name, cs)
    cfg.degrees = [float(d) for d in cfg.degrees]
    if not cfg.degrees:
        raise ValueError("the degree list must hold at least one degree d = (k-1) k P / N")
    bad = [d for d in cfg.degrees if not (math.isfinite(d) and d >= 0)]
    if bad:
        raise ValueError(f"degrees d = (k-1) k P / N must be finite and >= 0, got {bad[0]}")
    if not 0.0 <= float(cfg.damping) < 1.0:
        raise ValueError(f"damping must lie in [0, 1), got {cfg.damping}")
    if not 0.0 <= float(cfg.noise):
        raise ValueError(f"noise must be >= 0, got {cfg.noise}")
    if not float(cfg.tol) > 0.0:
        raise ValueError(f"tol must be > 0, got {cfg.tol}")


def _d_ks(pred: Predicate) -> float:
    try:
        return float(pred.d_ks)
    except ValueError:
        return float("nan")


def _cell(cfg, pred: Predicate, n: int, degree: float, rep: int) -> dict:
    """One sweep cell: everything :func:`_fig4_cell` computes from (and the cache key)."""
    cap = random_start_sweep_cap(degree, _d_ks(pred), n, floor=cfg.max_iter,
                                 ceiling=cfg.max_iter_ceiling,
                                 critical_sweeps=cfg.critical_sweeps)
    cap_truth = truth_start_sweep_cap(degree, _d_sp(pred), floor=cfg.max_iter,
                                      ceiling=cfg.max_iter_ceiling,
                                      critical_sweeps=cfg.truth_critical_sweeps)
    return {"version": CELL_VERSION, "predicate": pred.to_dict(), "name": cfg.predicate,
            "k": cfg.k, "m": cfg.m, "n": n, "degree": float(degree), "rep": rep,
            "max_iter": cap_truth, "max_iter_random": cap, "damping": cfg.damping,
            "noise": cfg.noise, "tol": cfg.tol}


def cell_cost(cell: dict) -> float:
    """A cell's expected run time, in arbitrary units, for handing out the longest first.

    A sweep costs about N * degree (the edges), and a cell runs at most its two sweep
    caps; the random start's cap, largest at d_KS, is where the run time goes.
    """
    return float(cell["n"]) * float(cell["degree"]) * (cell["max_iter"]
                                                       + cell["max_iter_random"])


def _sweep_caps(cfg) -> dict:
    """How the sweep caps were set (recorded in the JSON, named in the legend)."""
    d_sp = _d_sp(cfg.make_predicate())
    ceiling = max(cfg.max_iter_ceiling, cfg.max_iter)
    truth_rule = cfg.truth_critical_sweeps > 0 and math.isfinite(d_sp) and ceiling > cfg.max_iter
    return {"truth": (f"ceil(C_truth / |ln(d / d_sp)|), d_sp = {d_sp:.4g} (lohard's cavity "
                      f"table), at least {cfg.max_iter} and at most {ceiling}")
                     if truth_rule else cfg.max_iter,
            "truth_critical_sweeps": cfg.truth_critical_sweeps if truth_rule else 0.0,
            "random": f"ceil(C (ln N / ln {REFERENCE_N}) / |ln(d / d_KS)|), at least "
                      f"{cfg.max_iter} and at most {max(cfg.max_iter_ceiling, cfg.max_iter)}",
            "critical_sweeps": cfg.critical_sweeps, "floor": cfg.max_iter,
            "ceiling": max(cfg.max_iter_ceiling, cfg.max_iter),
            "converged": "largest clause-to-variable message change in a sweep < tol"}


@dataclass
class _SweepFields:
    """Fields shared by :class:`Fig4Config` and :class:`FiniteSizeConfig`: the
    predicate, BP's settings and how the sweep runs (the subclasses add N, degrees and
    instances)."""

    predicate: str = "nae"  # nae | not-equal | xor
    k: int | None = 3  # arity (None: the predicate's default)
    m: int | None = 3  # colours
    max_iter: int = 120  # fewest BP sweeps from the truth and from a random start
    critical_sweeps: float = 20.0  # C of the random-start cap (random_start_sweep_cap)
    truth_critical_sweeps: float = 10.0  # C_truth of the truth-start cap (0: max_iter)
    max_iter_ceiling: int = 600  # most sweeps of either start (near d_KS, d_sp)
    damping: float = 0.3  # BP damping (weight of the old message)
    noise: float = 0.02  # size of the noise around uniform for the random start
    tol: float = 1e-6  # BP convergence tolerance
    root_seed: int = 2025  # root of the SeedSequence tree; fully determines the figure
    n_jobs: int = -1  # joblib workers (-1: all cores)
    backend: str = "loky"  # joblib backend (loky, threading, sequential, dask, ray)
    scheduler: str | None = None  # dask/ray scheduler address
    threads_per_worker: int | None = None  # numba threads per cell (None: lohard.sweep's)

    def make_predicate(self):
        from lohard.predicates import predicate_by_name

        return predicate_by_name(self.predicate, k=self.k, m=self.m)


@dataclass
class Fig4Config(_SweepFields):
    """Configuration of the Figure 4 sweep (defaults: the paper's NAE k=3 m=3, N = 10^4)."""

    n: int = 10_000  # variables N
    degrees: list[float] = field(
        default_factory=lambda: [float(x) for x in np.linspace(40, 82, 15)]
    )  # d = (k-1) k P / N
    seeds: int = 2  # independent instances per degree

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check the sweep is well posed (ValueError naming the violated condition).

        Called on construction and again by :func:`run_fig4`, so fields changed
        after construction are checked too.
        """
        self.n = require_int(self.n, "the number of variables N", minimum=2)
        self.seeds = require_int(self.seeds, "seeds (instances per degree)", minimum=1)
        _check_bp_fields(self)

    def cells(self) -> list[dict]:
        pred = self.make_predicate()
        return [_cell(self, pred, self.n, d, r) for d in self.degrees for r in range(self.seeds)]


def _fig4_cell(cell: dict, seed: np.random.SeedSequence) -> dict:
    """One (N, degree, replicate) cell: an instance, BP from the truth and from a random start.

    The truth start gets ``cell["max_iter"]`` sweeps, the random start
    ``cell["max_iter_random"]``; each reports whether it converged (largest message
    change in a sweep below ``tol``), its sweeps, its cap and its last message change.
    """
    from lohard.bp import run_bp
    from lohard.csp import planted_instance
    from lohard.predicates import predicate_by_name

    pred = predicate_by_name(cell["name"], k=cell["k"], m=cell["m"])
    s_inst, s_truth, s_rand = seed.spawn(3)
    inst = planted_instance(cell["n"], pred, cell["degree"], rng=np.random.default_rng(s_inst))
    out = {"realised_degree": inst.degree, "num_clauses": inst.num_clauses}
    for label, init, s, cap in (("truth", "planted", s_truth, cell["max_iter"]),
                                ("random", "uniform", s_rand, cell["max_iter_random"])):
        t0 = time.perf_counter()
        res = run_bp(inst, init=init, noise=0.0 if init == "planted" else cell["noise"],
                     damping=cell["damping"], max_iter=cap, tol=cell["tol"],
                     warn=False, rng=np.random.default_rng(s))
        ov = res.overlap(inst.sigma)
        out[f"overlap_{label}"] = ov.normalised
        out[f"raw_overlap_{label}"] = ov.raw
        out[f"converged_{label}"] = bool(res.converged)
        out[f"iterations_{label}"] = res.iterations
        out[f"sweep_cap_{label}"] = int(cap)
        out[f"last_change_{label}"] = float(res.history[-1])
        out[f"seconds_{label}"] = time.perf_counter() - t0
    return out


def _jump_bracket(degrees: np.ndarray, values: np.ndarray) -> tuple[float, float] | None:
    """Consecutive grid degrees between which ``values`` rises most, None if no rise > 0.3.

    The curve is only known on the grid, so the jump lies somewhere in this interval.
    """
    if len(degrees) < 2:
        return None
    rise = np.diff(values)
    j = int(np.argmax(rise))
    return (float(degrees[j]), float(degrees[j + 1])) if rise[j] > 0.3 else None


def _jump(degrees: np.ndarray, values: np.ndarray) -> float:
    """Midpoint of :func:`_jump_bracket`, NaN if there is no rise > 0.3."""
    b = _jump_bracket(degrees, values)
    return float("nan") if b is None else 0.5 * (b[0] + b[1])


def shipped_cavity_thresholds(pred: Predicate) -> dict:
    """d_sp and d_cond of ``pred`` from the table shipped with lohard (never computed).

    The lines Figure 4 draws come from :data:`lohard.cavity._shipped.SHIPPED_THRESHOLDS`
    (lohard's committed ``figures/thresholds.json``), not from a local cache, so the same
    command draws the same figure on every machine.

    Returns
    -------
    dict
        ``{"available": True, "d_sp", "d_sp_err", "d_cond", "d_cond_err",
        "transition", "source"}``, or ``{"available": False, "reason"}`` for a predicate
        the table does not hold.
    """
    from lohard.cavity._shipped import SHIPPED_THRESHOLDS, SOURCE

    row = SHIPPED_THRESHOLDS.get(pred.name)
    if row is None:
        return {"available": False,
                "reason": f"{pred.name} is not in lohard's shipped thresholds table ({SOURCE}); "
                          f"`lohard thresholds --cavity` computes its d_sp and d_cond"}
    out = {"available": True, "source": SOURCE, "transition": row["transition"]}
    for key in ("d_sp", "d_sp_err", "d_cond", "d_cond_err"):
        out[key] = float(row[key])
    return out


#: Fields of :class:`Fig4Config` that change the figure's numbers (not how they are run).
RESULT_FIELDS = ("n", "degrees", "seeds", "max_iter", "critical_sweeps",
                 "truth_critical_sweeps", "max_iter_ceiling",
                 "damping", "noise", "tol", "root_seed")


def default_degrees(pred: Predicate, points: int = 15) -> list[float]:
    """The degree grid of ``lohard fig4`` for a predicate: the paper's 40..82 for NAE with
    k = m = 3, else ``points`` degrees from 0.6 d_KS to 1.3 d_KS (up to 10 without a
    finite d_KS)."""
    points = require_int(points, "points", minimum=1)
    if pred == Predicate.nae(3, 3):
        return [float(x) for x in np.linspace(40, 82, points)]
    try:
        dks = pred.d_ks
    except ValueError:
        dks = float("inf")
    hi = 1.3 * dks if np.isfinite(dks) else 10.0
    return [float(x) for x in np.linspace(0.6 * hi / 1.3, hi, points)]


def _stem(base_name: str, pred: Predicate, predicate: str, mine: dict, default: dict) -> str:
    stem = base_name if pred == Predicate.nae(3, 3) else (
        f"{base_name}_{predicate}_k{pred.k}_m{pred.m}")
    if mine == default:
        return stem
    digest = hashlib.sha256(json.dumps(mine, sort_keys=True).encode()).hexdigest()[:8]
    return f"{stem}_{digest}"


def output_stem(config: Fig4Config) -> str:
    """Name of the output files.

    ``fig4_overlap`` (the paper's NAE k = m = 3) or ``fig4_overlap_<predicate>_k<k>_m<m>``
    when every field that changes the numbers has its default (the committed figures);
    any other run adds a short hash of those fields, so that a variant never overwrites
    a committed figure.
    """
    pred = config.make_predicate()
    base = Fig4Config(predicate=config.predicate, k=config.k, m=config.m,
                      degrees=default_degrees(pred))
    return _stem("fig4_overlap", pred, config.predicate,
                 {f: getattr(config, f) for f in RESULT_FIELDS},
                 {f: getattr(base, f) for f in RESULT_FIELDS})


def _run_cells(config, cache_dir, progress, desc: str):
    """Compute (or read from ``cache_dir``) every cell of ``config``: the sweep records,
    their flat rows (:func:`_cell_rows`) and this call's wall seconds."""
    t0 = time.perf_counter()
    records = run_sweep(_fig4_cell, config.cells(), root_seed=config.root_seed,
                        out_dir=cache_dir, n_jobs=config.n_jobs, backend=config.backend,
                        scheduler=config.scheduler,
                        threads_per_worker=config.threads_per_worker, progress=progress,
                        desc=desc, cost=cell_cost)
    return records, _cell_rows(records), time.perf_counter() - t0


def _cell_rows(records: list[dict]) -> list[dict]:
    """One flat row per cell: N, degree, replicate and :data:`CELL_COLUMNS` (no timings, so
    that the outputs do not depend on the machine or the backend)."""
    return [{"n": r["cell"]["n"], "degree": r["cell"]["degree"], "rep": r["cell"]["rep"],
             **{c: r["result"][c] for c in CELL_COLUMNS}} for r in records]


def _point(rows: list[dict]) -> dict:
    """Mean and standard error of both overlaps over ``rows``, and the converged fractions."""
    pt = {"n_seeds": len(rows)}
    for label in STARTS:
        v = np.array([r[f"overlap_{label}"] for r in rows])
        pt[f"overlap_{label}_mean"] = float(v.mean())
        pt[f"overlap_{label}_sem"] = float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else 0.0
        pt[f"converged_{label}_frac"] = float(np.mean([r[f"converged_{label}"] for r in rows]))
    return pt


def _csv_text(header: str, rows: list[dict], *, with_n: bool) -> str:
    buf = io.StringIO()
    buf.write(header)
    w = csv.writer(buf)
    cols = (["n"] if with_n else []) + ["degree", "rep", *CELL_COLUMNS]
    w.writerow(cols)
    for r in rows:
        w.writerow([r[c] for c in cols])
    return buf.getvalue()


def run_fig4(config: Fig4Config, *, out_dir: str | Path = "figures",
             cache_dir: str | Path | None = None, progress: bool = True,
             cavity_lines: bool = True) -> dict:
    """Run the Figure 4 sweep, write CSV + JSON + PNG, and return the summary.

    Every (degree, replicate) cell is an independent sweep cell with its own
    seed from ``SeedSequence(root_seed).spawn``; finished cells are cached under
    ``cache_dir`` so an interrupted run resumes. BP from the truth gets
    :func:`truth_start_sweep_cap` sweeps (more near d_sp), BP from a random start
    :func:`random_start_sweep_cap` sweeps (more near d_KS); each slows down there.

    With ``cavity_lines`` the figure also shows d_sp and d_cond when lohard's shipped
    thresholds table holds the predicate (:func:`shipped_cavity_thresholds`; nothing is
    computed, no local cache is read); the JSON records under ``"cavity"`` where they
    came from, or why there are none. Files are named by :func:`output_stem`.

    Returns
    -------
    dict
        ``{"config", "predicate", "d_ks", "d_jump_truth", "d_jump_truth_between",
        "d_rise_random", "d_rise_random_between", "cavity", "sweep_caps", "points":
        [...per degree...], "cells": [...per (degree, instance): overlaps, converged,
        sweeps (``iterations_*``), caps...], "wall_seconds" (this call), "cells_seconds"
        (the cells' own compute time, cached or not), "files"}``. ``d_jump_truth`` is
        the midpoint of the grid step ``d_jump_truth_between`` over which the
        truth-start curve rises most (NaN / None if it rises by at most 0.3); likewise
        for the random start.
    """
    config.validate()
    pred = config.make_predicate()
    out_dir = Path(out_dir)
    stem = output_stem(config)
    records, rows, wall = _run_cells(config, out_dir / ".cache" / stem
                                     if cache_dir is None else cache_dir, progress,
                                     "fig4 cells")
    degrees = np.array(sorted({float(d) for d in config.degrees}))
    points = [{"degree": float(d), **_point([r for r in rows if r["degree"] == d])}
              for d in degrees]
    truth = np.array([p["overlap_truth_mean"] for p in points])
    rand = np.array([p["overlap_random_mean"] for p in points])
    summary = {
        "config": asdict(config),
        "predicate": pred.to_dict(),
        "d_ks": _d_ks(pred),
        "d_jump_truth": _jump(degrees, truth),
        "d_jump_truth_between": _jump_bracket(degrees, truth),
        "d_rise_random": _jump(degrees, rand),
        "d_rise_random_between": _jump_bracket(degrees, rand),
        "cavity": (shipped_cavity_thresholds(pred) if cavity_lines else
                   {"available": False, "reason": "not requested (cavity_lines=False)"}),
        "sweep_caps": _sweep_caps(config),
        "points": points,
        "cells": rows,
        "wall_seconds": wall,  # this call; cells read from the cache cost nothing here
        "cells_seconds": float(sum(r["seconds"] for r in records)),  # when each was computed
    }
    meta = provenance(asdict(config), seed=config.root_seed)
    files = {}
    files["json"] = str(atomic_write_json(out_dir / f"{stem}.json", {"meta": meta, **summary}))
    header = (f"# lohard fig4; lohard {meta['lohard_version']}; root_seed {config.root_seed}; "
              f"predicate {pred.name}; n {config.n}; degree d = (k-1) k P / N; "
              "iterations_* are BP sweeps, sweep_cap_* their caps\n")
    files["csv"] = str(atomic_write_text(out_dir / f"{stem}.csv",
                                         _csv_text(header, rows, with_n=False)))
    files["png"] = str(plot_fig4(summary, out_dir / f"{stem}.png"))
    summary["files"] = files
    return summary


def _threshold_lines(ax, summary: dict) -> None:
    """d_KS (analytic) and, from lohard's shipped table, d_sp and d_cond, with their names."""
    if np.isfinite(summary["d_ks"]):
        ax.axvline(summary["d_ks"], color="k", ls="--",
                   label="Kesten-Stigum $d_{KS} = 1/\\lambda^2 = "
                         f"{summary['d_ks']:.4g}$ (analytic)")
    cav = summary.get("cavity") or {}
    if cav.get("available") and cav.get("transition") != "continuous":
        for key, name, ls in (("d_sp", "spinodal $d_{sp}$", (0, (1, 1.5))),
                              ("d_cond", "condensation $d_{cond}$", "-.")):
            ax.axvline(cav[key], color="0.45", ls=ls, lw=1.1,
                       label=f"{name} = {cav[key]:.4g} ± {cav[key + '_err']:.2g} (cavity)")


def _cap_text(summary: dict) -> str:
    caps = summary.get("sweep_caps") or {}
    if not caps:
        return f"max_iter = {summary['config']['max_iter']} sweeps"
    truth = (f"truth {caps['floor']}-{caps['ceiling']}, "
             "$\\propto 1/|\\ln(d/d_{sp})|$" if caps.get("truth_critical_sweeps")
             else f"truth {caps['truth']}")
    if caps["critical_sweeps"] == 0 or caps["floor"] == caps["ceiling"]:
        return f"{truth}; random {caps['floor']} sweeps"
    return (f"{truth}; random {caps['floor']}-{caps['ceiling']} sweeps, "
            "$\\propto \\ln N\\,/\\,|\\ln(d/d_{KS})|$")


DEGREE_LABEL = "degree $d = (k-1)\\,k\\,P/N$ (mean number of clause-neighbours)"
OVERLAP_LABEL = "overlap with planted $\\sigma$  (acc $- 1/m$)/(1 $- 1/m$)"


def _draw_fig4(summary: dict):
    """The Figure 4 matplotlib figure (not saved) of a :func:`run_fig4` summary.

    Each instance is a dot on top of the mean ± s.e. curve: filled if its BP run
    converged, hollow if it stopped at its sweep cap (line gids
    ``cells_converged_<start>`` and ``cells_not_converged_<start>``).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    pts = summary["points"]
    cells = summary["cells"]
    d = np.array([p["degree"] for p in pts])
    cfg = summary["config"]
    pred = summary["predicate"]
    fig, ax = plt.subplots(figsize=(7.0, 5.8), dpi=130)
    any_unconverged = False
    for label, colour, text in (("truth", "C3", "BP from the ground truth"),
                                ("random", "C0", "BP from a random start (uniform + noise)")):
        y = np.array([p[f"overlap_{label}_mean"] for p in pts])
        ax.errorbar(d, y, yerr=[p[f"overlap_{label}_sem"] for p in pts], color=colour,
                    capsize=2, lw=1.3, label=f"{text}: mean ± s.e.")
        cx = np.array([c["degree"] for c in cells], dtype=float)
        cy = np.array([c[f"overlap_{label}"] for c in cells], dtype=float)
        ok = np.array([bool(c[f"converged_{label}"]) for c in cells], dtype=bool)
        any_unconverged |= bool((~ok).any())
        ax.plot(cx[ok], cy[ok], "o", ms=4, color=colour, ls="none", alpha=0.8, zorder=3,
                gid=f"cells_converged_{label}")
        ax.plot(cx[~ok], cy[~ok], "o", ms=5.5, mec=colour, mfc="white", mew=1.3, ls="none",
                zorder=4, gid=f"cells_not_converged_{label}")
    _threshold_lines(ax, summary)
    between = summary.get("d_jump_truth_between")
    if between is None and np.isfinite(summary.get("d_jump_truth", float("nan"))):
        between = _jump_bracket(d, np.array([p["overlap_truth_mean"] for p in pts]))
    if between is not None:
        ax.axvspan(between[0], between[1], color="C3", alpha=0.08, lw=0,
                   label=f"truth-start curve jumps between d = {between[0]:.4g} and "
                         f"{between[1]:.4g}")
    handles, labels = ax.get_legend_handles_labels()
    handles.append(Line2D([], [], marker="o", ms=4, color="0.3", ls="none"))
    labels.append("dot: one instance, BP converged")
    if any_unconverged:
        handles.append(Line2D([], [], marker="o", ms=5.5, mec="0.3", mfc="white", mew=1.3,
                              ls="none"))
        labels.append("hollow: one instance, stopped at its sweep cap unconverged")
    ax.set_xlabel(DEGREE_LABEL)
    ax.set_ylabel(OVERLAP_LABEL)
    ax.set_ylim(-0.05, 1.05)
    ax.set_title(f"Planted {pred['name']}, N = {cfg['n']}, {cfg['seeds']} instances per "
                 f"degree\nsweep caps: {_cap_text(summary)}", fontsize=9)
    # below the axes: inside, it would hide part of the curves
    ax.legend(handles, labels, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13),
              ncol=2, frameon=False)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def _save_figure(fig, path: str | Path) -> Path:
    import matplotlib.pyplot as plt

    def _save(tmp: str) -> None:
        fig.savefig(tmp, format="png")

    try:
        return atomic_write(path, _save)
    finally:
        plt.close(fig)


def plot_fig4(summary: dict, path: str | Path) -> Path:
    """Draw the two overlap curves with the threshold lines and the ground-truth jump.

    Every instance is a dot, hollow where its BP run stopped at its sweep cap without
    converging. The truth-start jump is shaded over the grid step where it happens;
    d_sp and d_cond are drawn when ``summary["cavity"]`` holds them (from lohard's
    shipped thresholds table).
    """
    return _save_figure(_draw_fig4(summary), path)


# -- finite-size scaling --------------------------------------------------------------
def default_instances(n: int) -> int:
    """Instances per degree at N variables in the finite-size study: 16 up to N = 10^3,
    8 up to 10^4, 2 up to 10^5, then 1 (a BP sweep costs ~N, and more at large N,
    where the messages no longer fit in cache)."""
    n = require_int(n, "the number of variables N", minimum=1)
    return 16 if n <= 1_000 else 8 if n <= 10_000 else 2 if n <= 100_000 else 1


def default_finite_size_degrees(pred: Predicate, points: int = 7) -> list[float]:
    """Degrees of the finite-size study: :data:`FINITE_SIZE_DEGREES` for NAE with
    k = m = 3, else :func:`default_degrees` with ``points`` points."""
    if pred == Predicate.nae(3, 3):
        return list(FINITE_SIZE_DEGREES)
    return default_degrees(pred, points)


@dataclass
class FiniteSizeConfig(_SweepFields):
    """Figure 4 at several N (defaults: NAE k=3 m=3, N = 10^3 ... 10^6, about 45
    minutes on 2 cores; see docs/fig4.md)."""

    sizes: list[int] = field(
        default_factory=lambda: [1_000, 10_000, 100_000, 1_000_000])  # numbers of variables N
    degrees: list[float] = field(
        default_factory=lambda: list(FINITE_SIZE_DEGREES))  # d = (k-1) k P / N
    seeds: list[int] | None = None  # instances per degree, one per N (None: default_instances)
    # The truth start keeps max_iter sweeps: at N = 10^6 a sweep costs about 3 s, and the
    # two degrees next to d_sp would take most of the hour the figure is meant to fit in.
    truth_critical_sweeps: float = 0.0

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check the sweep is well posed (ValueError naming the violated condition)."""
        self.sizes = [require_int(n, "a number of variables N", minimum=2) for n in self.sizes]
        if not self.sizes:
            raise ValueError("the list of sizes N must hold at least one N")
        if len(set(self.sizes)) != len(self.sizes):
            raise ValueError(f"the sizes N must be distinct, got {self.sizes}")
        if self.seeds is not None:
            self.seeds = [require_int(s, "seeds (instances per degree)", minimum=1)
                          for s in self.seeds]
            if len(self.seeds) != len(self.sizes):
                raise ValueError(f"give one instance count per N: {len(self.sizes)} sizes "
                                 f"but {len(self.seeds)} instance counts")
        _check_bp_fields(self)

    def instances(self) -> dict[int, int]:
        """Instances per degree at each N."""
        seeds = self.seeds or [default_instances(n) for n in self.sizes]
        return dict(zip(self.sizes, seeds, strict=True))

    def cells(self) -> list[dict]:
        """The cells, largest N first and, within one N, nearest d_KS first: the longest
        cells start first, so the last ones to finish are short (the order sets the
        seeds, and is fixed by the configuration)."""
        pred = self.make_predicate()
        dks = _d_ks(pred)

        def distance_to_ks(d: float) -> float:
            if not (math.isfinite(dks) and dks > 0):
                return 0.0  # no KS point: keep the given order (sorted() is stable)
            return abs(math.log(d / dks)) if d > 0 else math.inf

        degrees = sorted(self.degrees, key=distance_to_ks)
        inst = self.instances()
        return [_cell(self, pred, n, d, r) for n in sorted(self.sizes, reverse=True)
                for d in degrees for r in range(inst[n])]


#: Fields of :class:`FiniteSizeConfig` that change the numbers (``seeds`` as resolved).
FINITE_SIZE_RESULT_FIELDS = ("sizes", "degrees", "seeds", "max_iter", "critical_sweeps",
                             "truth_critical_sweeps",
                             "max_iter_ceiling", "damping", "noise", "tol", "root_seed")


def finite_size_stem(config: FiniteSizeConfig) -> str:
    """``fig4_finite_size`` (``_<predicate>_k<k>_m<m>`` for another predicate) for the
    default settings, plus a short hash of the fields that change the numbers otherwise."""
    pred = config.make_predicate()
    base = FiniteSizeConfig(predicate=config.predicate, k=config.k, m=config.m,
                            degrees=default_finite_size_degrees(pred))

    def fields(cfg):
        out = {f: getattr(cfg, f) for f in FINITE_SIZE_RESULT_FIELDS}
        out["seeds"] = [cfg.instances()[n] for n in cfg.sizes]
        return out

    return _stem("fig4_finite_size", pred, config.predicate, fields(config), fields(base))


def run_fig4_finite_size(config: FiniteSizeConfig, *, out_dir: str | Path = "figures",
                         cache_dir: str | Path | None = None, progress: bool = True,
                         cavity_lines: bool = True) -> dict:
    """Figure 4 at several N: both overlap curves for every N in one figure.

    Each (N, degree, instance) is one cell of :func:`lohard.sweep.run_sweep` (the same
    cell as :func:`run_fig4`'s, cached under ``cache_dir``, so an interrupted run
    resumes with the missing cells). Writes ``<stem>.{json,csv,png}``
    (:func:`finite_size_stem`) atomically, the JSON and the CSV header with the
    config, root seed and package version.

    Returns
    -------
    dict
        ``{"config", "predicate", "d_ks", "cavity", "sweep_caps", "instances" ({N:
        count}), "transitions" ({N: grid steps of the largest rise of each curve}),
        "points" (per N and degree), "cells", "wall_seconds", "cells_seconds",
        "cells_seconds_by_n", "files"}``.
    """
    config.validate()
    pred = config.make_predicate()
    out_dir = Path(out_dir)
    stem = finite_size_stem(config)
    records, rows, wall = _run_cells(config, out_dir / ".cache" / stem
                                     if cache_dir is None else cache_dir, progress,
                                     "fig4 finite-size cells")
    degrees = np.array(sorted({float(d) for d in config.degrees}))
    points, transitions = [], {}
    for n in sorted(config.sizes):
        mine = [{"n": n, "degree": float(d),
                 **_point([r for r in rows if r["n"] == n and r["degree"] == d])}
                for d in degrees]
        points += mine
        transitions[n] = {
            f"{key}_between": _jump_bracket(degrees, np.array([p[f"overlap_{lab}_mean"]
                                                               for p in mine]))
            for key, lab in (("d_jump_truth", "truth"), ("d_rise_random", "random"))}
    summary = {
        "config": asdict(config),
        "predicate": pred.to_dict(),
        "d_ks": _d_ks(pred),
        "cavity": (shipped_cavity_thresholds(pred) if cavity_lines else
                   {"available": False, "reason": "not requested (cavity_lines=False)"}),
        "sweep_caps": _sweep_caps(config),
        "instances": config.instances(),
        "transitions": transitions,
        "points": points,
        "cells": sorted(rows, key=lambda r: (r["n"], r["degree"], r["rep"])),
        "wall_seconds": wall,  # this call; cells read from the cache cost nothing here
        "cells_seconds": float(sum(r["seconds"] for r in records)),  # when each was computed
        "cells_seconds_by_n": {n: float(sum(r["seconds"] for r in records
                                            if r["cell"]["n"] == n)) for n in sorted(config.sizes)},
    }
    meta = provenance(asdict(config), seed=config.root_seed)
    files = {}
    files["json"] = str(atomic_write_json(out_dir / f"{stem}.json", {"meta": meta, **summary}))
    header = (f"# lohard fig4 finite size; lohard {meta['lohard_version']}; root_seed "
              f"{config.root_seed}; predicate {pred.name}; sizes "
              f"{' '.join(str(n) for n in sorted(config.sizes))}; instances "
              f"{' '.join(str(config.instances()[n]) for n in sorted(config.sizes))}; degree "
              "d = (k-1) k P / N; iterations_* are BP sweeps, sweep_cap_* their caps\n")
    files["csv"] = str(atomic_write_text(out_dir / f"{stem}.csv",
                                         _csv_text(header, summary["cells"], with_n=True)))
    files["png"] = str(_save_figure(_draw_finite_size(summary), out_dir / f"{stem}.png"))
    summary["files"] = files
    return summary


def _draw_finite_size(summary: dict):
    """The finite-size figure (not saved): one colour per N, solid truth start, dashed
    random start; hollow markers where some instance stopped at its sweep cap.

    Line gids: ``<start>_n<N>`` (the mean curve) and ``not_converged_<start>_n<N>``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    pts = summary["points"]
    sizes = sorted({int(p["n"]) for p in pts})
    inst = {int(n): c for n, c in summary["instances"].items()}
    colours = plt.get_cmap("viridis")(np.linspace(0.0, 0.85, max(len(sizes), 2)))
    styles = {"truth": ("-", "o"), "random": ("--", "s")}
    fig, ax = plt.subplots(figsize=(7.4, 6.0), dpi=130)
    any_unconverged = False
    for colour, n in zip(colours, sizes, strict=False):
        mine = [p for p in pts if int(p["n"]) == n]
        d = np.array([p["degree"] for p in mine])
        for label in STARTS:
            ls, mk = styles[label]
            y = np.array([p[f"overlap_{label}_mean"] for p in mine])
            bars = ax.errorbar(d, y, yerr=[p[f"overlap_{label}_sem"] for p in mine],
                               color=colour, ls=ls, marker=mk, ms=4, capsize=2, lw=1.2)
            bars.lines[0].set_gid(f"{label}_n{n}")  # the mean curve (not its caps)
            bad = np.array([p[f"converged_{label}_frac"] < 1.0 for p in mine], dtype=bool)
            any_unconverged |= bool(bad.any())
            ax.plot(d[bad], y[bad], mk, ms=6, mec=colour, mfc="white", mew=1.3, ls="none",
                    zorder=4, gid=f"not_converged_{label}_n{n}")
    _threshold_lines(ax, summary)
    handles, labels = ax.get_legend_handles_labels()
    for colour, n in zip(colours, sizes, strict=False):
        handles.append(Line2D([], [], color=colour, lw=2.5))
        labels.append(f"N = {n:,} ({inst[n]} instance{'s' if inst[n] > 1 else ''} per degree)")
    for label, text in (("truth", "BP from the ground truth"),
                        ("random", "BP from a random start (uniform + noise)")):
        ls, mk = styles[label]
        handles.append(Line2D([], [], color="0.3", ls=ls, marker=mk, ms=4))
        labels.append(f"{text}: mean ± s.e.")
    if any_unconverged:
        handles.append(Line2D([], [], marker="o", ms=6, mec="0.3", mfc="white", mew=1.3,
                              ls="none"))
        labels.append("hollow: ≥ 1 instance stopped at its sweep cap unconverged")
    ax.set_xlabel(DEGREE_LABEL)
    ax.set_ylabel(OVERLAP_LABEL)
    ax.set_ylim(-0.05, 1.05)
    ax.set_title(f"Planted {summary['predicate']['name']}: finite-size scaling of Figure 4"
                 f"\nsweep caps: {_cap_text(summary)}", fontsize=9)
    ax.legend(handles, labels, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.12),
              ncol=2, frameon=False)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
