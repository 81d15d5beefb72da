"""Figure 4: overlap reached by BP from the ground truth and from a random start, against degree."""

from __future__ import annotations

import csv
import io
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


@dataclass
class Fig4Config:
    """Configuration of the Figure 4 sweep (defaults: the paper's NAE k=3 m=3, N = 10^4)."""

    predicate: str = "nae"  # nae | not-equal | xor
    k: int | None = 3  # arity (None: the predicate's default)
    m: int | None = 3  # colours
    n: int = 10_000  # variables N
    degrees: list[float] = field(
        default_factory=lambda: [float(x) for x in np.linspace(40, 82, 15)]
    )  # d = (k-1) k P / N
    seeds: int = 2  # independent instances per degree
    max_iter: int = 120  # BP sweeps per run (random-sequential schedule)
    damping: float = 0.3  # BP damping (weight of the old message)
    noise: float = 0.02  # size of the noise around uniform for the random start
    tol: float = 1e-6  # BP convergence tolerance
    root_seed: int = 2025  # root of the SeedSequence tree; fully determines the figure
    n_jobs: int = -1  # joblib workers (-1: all cores)
    backend: str = "loky"  # joblib backend (loky, threading, sequential, dask, ray)
    scheduler: str | None = None  # dask/ray scheduler address
    threads_per_worker: int | None = None  # numba threads per cell (None: lohard.sweep's)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check the sweep is well posed (ValueError naming the violated condition).

        Called on construction and again by :func:`run_fig4`, so fields changed
        after construction are checked too.
        """
        self.n = require_int(self.n, "the number of variables N", minimum=1)
        self.seeds = require_int(self.seeds, "seeds (instances per degree)", minimum=1)
        self.max_iter = require_int(self.max_iter, "max_iter (BP sweeps per run)", minimum=1)
        self.degrees = [float(d) for d in self.degrees]
        if not self.degrees:
            raise ValueError("the degree list must hold at least one degree d = (k-1) k P / N")
        bad = [d for d in self.degrees if not (math.isfinite(d) and d >= 0)]
        if bad:
            raise ValueError(f"degrees d = (k-1) k P / N must be finite and >= 0, got {bad[0]}")
        if not 0.0 <= float(self.damping) < 1.0:
            raise ValueError(f"damping must lie in [0, 1), got {self.damping}")
        if not 0.0 <= float(self.noise):
            raise ValueError(f"noise must be >= 0, got {self.noise}")
        if not float(self.tol) > 0.0:
            raise ValueError(f"tol must be > 0, got {self.tol}")

    def make_predicate(self):
        from lohard.predicates import predicate_by_name

        return predicate_by_name(self.predicate, k=self.k, m=self.m)

    def cells(self) -> list[dict]:
        return [
            {"predicate": self.make_predicate().to_dict(), "name": self.predicate, "k": self.k,
             "m": self.m, "n": self.n, "degree": float(d), "rep": r, "max_iter": self.max_iter,
             "damping": self.damping, "noise": self.noise, "tol": self.tol}
            for d in self.degrees
            for r in range(self.seeds)
        ]


def _fig4_cell(cell: dict, seed: np.random.SeedSequence) -> dict:
    """One (degree, replicate) cell: an instance, BP from the truth and from a random start."""
    from lohard.bp import run_bp
    from lohard.csp import planted_instance
    from lohard.predicates import predicate_by_name

    pred = predicate_by_name(cell["name"], k=cell["k"], m=cell["m"])
    s_inst, s_truth, s_rand = seed.spawn(3)
    inst = planted_instance(cell["n"], pred, cell["degree"], rng=np.random.default_rng(s_inst))
    out = {"realised_degree": inst.degree, "num_clauses": inst.num_clauses}
    for label, init, s in (("truth", "planted", s_truth), ("random", "uniform", s_rand)):
        t0 = time.perf_counter()
        res = run_bp(inst, init=init, noise=0.0 if init == "planted" else cell["noise"],
                     damping=cell["damping"], max_iter=cell["max_iter"], tol=cell["tol"],
                     warn=False, rng=np.random.default_rng(s))
        ov = res.overlap(inst.sigma)
        out[f"overlap_{label}"] = ov.normalised
        out[f"raw_overlap_{label}"] = ov.raw
        out[f"converged_{label}"] = bool(res.converged)
        out[f"iterations_{label}"] = res.iterations
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
RESULT_FIELDS = ("n", "degrees", "seeds", "max_iter", "damping", "noise", "tol", "root_seed")


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


def output_stem(config: Fig4Config) -> str:
    """Name of the output files.

    ``fig4_overlap`` (the paper's NAE k = m = 3) or ``fig4_overlap_<predicate>_k<k>_m<m>``
    when every field that changes the numbers has its default (the committed figures);
    any other run adds a short hash of those fields, so that a variant never overwrites
    a committed figure.
    """
    pred = config.make_predicate()
    stem = "fig4_overlap" if pred == Predicate.nae(3, 3) else (
        f"fig4_overlap_{config.predicate}_k{pred.k}_m{pred.m}")
    base = Fig4Config(predicate=config.predicate, k=config.k, m=config.m,
                      degrees=default_degrees(pred))
    mine = {f: getattr(config, f) for f in RESULT_FIELDS}
    if mine == {f: getattr(base, f) for f in RESULT_FIELDS}:
        return stem
    import hashlib
    import json

    digest = hashlib.sha256(json.dumps(mine, sort_keys=True).encode()).hexdigest()[:8]
    return f"{stem}_{digest}"


def run_fig4(config: Fig4Config, *, out_dir: str | Path = "figures",
             cache_dir: str | Path | None = None, progress: bool = True,
             cavity_lines: bool = True) -> dict:
    """Run the Figure 4 sweep, write CSV + JSON + PNG, and return the summary.

    Every (degree, replicate) cell is an independent sweep cell with its own
    seed from ``SeedSequence(root_seed).spawn``; finished cells are cached under
    ``cache_dir`` so an interrupted run resumes.

    With ``cavity_lines`` the figure also shows d_sp and d_cond when lohard's shipped
    thresholds table holds the predicate (:func:`shipped_cavity_thresholds`; nothing is
    computed, no local cache is read); the JSON records under ``"cavity"`` where they
    came from, or why there are none. Files are named by :func:`output_stem`.

    Returns
    -------
    dict
        ``{"config", "predicate", "d_ks", "d_jump_truth", "d_jump_truth_between",
        "d_rise_random", "d_rise_random_between", "cavity", "points": [...per
        degree...], "wall_seconds" (this call), "cells_seconds" (the cells' own compute
        time, cached or not), "files"}``. ``d_jump_truth`` is the midpoint of
        the grid step ``d_jump_truth_between`` over which the truth-start curve
        rises most (NaN / None if it rises by at most 0.3); likewise for the
        random start.
    """
    config.validate()
    pred = config.make_predicate()
    out_dir = Path(out_dir)
    stem = output_stem(config)
    if cache_dir is None:
        cache_dir = out_dir / ".cache" / stem
    t0 = time.perf_counter()
    records = run_sweep(_fig4_cell, config.cells(), root_seed=config.root_seed,
                        out_dir=cache_dir, n_jobs=config.n_jobs, backend=config.backend,
                        scheduler=config.scheduler,
                        threads_per_worker=config.threads_per_worker, progress=progress,
                        desc="fig4 cells")
    wall = time.perf_counter() - t0
    degrees = np.array(sorted({float(d) for d in config.degrees}))
    points = []
    for d in degrees:
        rows = [r["result"] for r in records if r["cell"]["degree"] == d]
        pt = {"degree": float(d), "n_seeds": len(rows)}
        for label in ("truth", "random"):
            v = np.array([r[f"overlap_{label}"] for r in rows])
            pt[f"overlap_{label}_mean"] = float(v.mean())
            sem = float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else 0.0
            pt[f"overlap_{label}_sem"] = sem
            pt[f"converged_{label}_frac"] = float(np.mean([r[f"converged_{label}"] for r in rows]))
        points.append(pt)
    truth = np.array([p["overlap_truth_mean"] for p in points])
    rand = np.array([p["overlap_random_mean"] for p in points])
    try:
        d_ks = pred.d_ks
    except ValueError:
        d_ks = float("nan")
    summary = {
        "config": asdict(config),
        "predicate": pred.to_dict(),
        "d_ks": d_ks,
        "d_jump_truth": _jump(degrees, truth),
        "d_jump_truth_between": _jump_bracket(degrees, truth),
        "d_rise_random": _jump(degrees, rand),
        "d_rise_random_between": _jump_bracket(degrees, rand),
        "cavity": (shipped_cavity_thresholds(pred) if cavity_lines else
                   {"available": False, "reason": "not requested (cavity_lines=False)"}),
        "points": points,
        "wall_seconds": wall,  # this call; cells read from the cache cost nothing here
        "cells_seconds": float(sum(r["seconds"] for r in records)),  # when each was computed
    }
    meta = provenance(asdict(config), seed=config.root_seed)
    files = {}
    files["json"] = str(atomic_write_json(out_dir / f"{stem}.json", {"meta": meta, **summary}))
    buf = io.StringIO()
    buf.write(f"# lohard fig4; lohard {meta['lohard_version']}; root_seed {config.root_seed}; "
              f"predicate {pred.name}; n {config.n}; degree d = (k-1) k P / N\n")
    w = csv.writer(buf)
    cols = ["degree", "rep", "realised_degree", "num_clauses", "overlap_truth", "overlap_random",
            "converged_truth", "converged_random", "iterations_truth", "iterations_random"]
    w.writerow(cols)
    for r in records:
        w.writerow([r["cell"]["degree"], r["cell"]["rep"]] + [r["result"][c] for c in cols[2:]])
    files["csv"] = str(atomic_write_text(out_dir / f"{stem}.csv", buf.getvalue()))
    files["png"] = str(plot_fig4(summary, out_dir / f"{stem}.png"))
    summary["files"] = files
    return summary


def _draw_fig4(summary: dict):
    """The Figure 4 matplotlib figure (not saved) of a :func:`run_fig4` summary."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    pts = summary["points"]
    d = np.array([p["degree"] for p in pts])
    cfg = summary["config"]
    pred = summary["predicate"]
    fig, ax = plt.subplots(figsize=(7.0, 5.6), dpi=130)
    any_unconverged = False
    for label, colour, text in (("truth", "C3", "BP from the ground truth"),
                                ("random", "C0", "BP from a random start (uniform + noise)")):
        y = np.array([p[f"overlap_{label}_mean"] for p in pts])
        ax.errorbar(d, y, yerr=[p[f"overlap_{label}_sem"] for p in pts], marker="o", ms=4,
                    color=colour, capsize=2, label=text)
        # hollow: at least one instance at this degree had not converged within max_iter
        bad = np.array([p[f"converged_{label}_frac"] < 1.0 for p in pts], dtype=bool)
        any_unconverged |= bool(bad.any())
        ax.plot(d[bad], y[bad], "o", ms=5.5, mec=colour, mfc="white", mew=1.3, ls="none",
                zorder=3, gid=f"not_converged_{label}")
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
    between = summary.get("d_jump_truth_between")
    if between is None and np.isfinite(summary.get("d_jump_truth", float("nan"))):
        between = _jump_bracket(d, np.array([p["overlap_truth_mean"] for p in pts]))
    if between is not None:
        ax.axvspan(between[0], between[1], color="C3", alpha=0.08, lw=0,
                   label=f"truth-start curve jumps between d = {between[0]:.4g} and "
                         f"{between[1]:.4g}")
    handles, labels = ax.get_legend_handles_labels()
    if any_unconverged:
        handles.append(Line2D([], [], marker="o", ms=5.5, mec="0.3", mfc="white", mew=1.3,
                              ls="none"))
        labels.append(f"hollow: ≥ 1 instance not converged in max_iter = {cfg['max_iter']} "
                      "sweeps")
    ax.set_xlabel("degree $d = (k-1)\\,k\\,P/N$ (mean number of clause-neighbours)")
    ax.set_ylabel("overlap with planted $\\sigma$  (acc $- 1/m$)/(1 $- 1/m$)")
    ax.set_ylim(-0.05, 1.05)
    ax.set_title(f"Planted {pred['name']}, N = {cfg['n']}, {cfg['seeds']} instances per degree "
                 "(mean ± s.e.)", fontsize=9)
    # below the axes: inside, it would hide part of the curves
    ax.legend(handles, labels, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13),
              ncol=2, frameon=False)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_fig4(summary: dict, path: str | Path) -> Path:
    """Draw the two overlap curves with the threshold lines and the ground-truth jump.

    Markers are hollow where at least one instance had not converged within
    ``max_iter`` sweeps. The truth-start jump is shaded over the grid step
    where it happens; d_sp and d_cond are drawn when ``summary["cavity"]``
    holds them (from lohard's shipped thresholds table).
    """
    import matplotlib.pyplot as plt

    fig = _draw_fig4(summary)

    def _save(tmp: str) -> None:
        fig.savefig(tmp, format="png")

    try:
        return atomic_write(path, _save)
    finally:
        plt.close(fig)
