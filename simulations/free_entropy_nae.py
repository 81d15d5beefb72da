"""Figure: Bethe free-entropy gap on planted NAE(3,3) instances against the degree.

For each (N, d, seed) cell a planted instance is drawn, BP is run from the
ground truth and from the uniform point, and the difference of their Bethe
free entropies per variable is recorded. Cells run through
``lohard.sweep.run_sweep`` (resumable; ``--backend dask --scheduler ADDR`` for
a cluster). Writes figures/free_entropy_nae.png and .json. A cell whose BP
did not converge (from the truth or from uniform) has no meaningful Bethe
value: it is drawn hollow and counted in the JSON (``not_converged``).
``--cached-only`` redraws from the cached cells and thresholds without
computing anything (error if one is missing). Usage::

    python simulations/free_entropy_nae.py [--sizes 10000 30000] [--seeds 2] [--cached-only]
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from pathlib import Path

import numpy as np

from lohard._util import atomic_write, atomic_write_json, provenance
from lohard.predicates import Predicate

# BP settings: random-sequential, undamped, no initial noise. Parallel damped BP
# oscillates at these degrees on NAE(3,3) (its global mode has eigenvalue
# d lambda ~ -7), and non-converged messages have no meaningful Bethe value.
BP_OPTIONS = {"schedule": "random-sequential", "damping": 0.0, "noise": 0.0, "max_iter": 300}


@dataclasses.dataclass
class Config:
    sizes: tuple = (10_000, 30_000)  # numbers of variables N
    degrees: tuple = (48.0, 50.0, 51.0, 51.5, 52.0, 52.5, 53.0, 53.5, 54.0, 55.0, 56.0, 58.0,
                      60.0, 64.0)
    seeds: int = 2  # instances per (N, d)
    root_seed: int = 0
    n_jobs: int = 2
    backend: str = "loky"
    scheduler: str | None = None
    cells_dir: str = "figures/free_entropy_nae_cells"  # per-cell results (resume)
    out: str = "figures/free_entropy_nae"
    cached_only: bool = False  # redraw from cached cells and thresholds; never compute


def cell_func(cell: dict, seed: np.random.SeedSequence) -> dict:
    from lohard.cavity import instance_free_entropy_gap
    from lohard.csp import planted_instance

    inst_seed, bp_seed = seed.spawn(2)
    inst = planted_instance(cell["n"], Predicate.nae(3, 3), cell["degree"],
                            rng=np.random.default_rng(inst_seed))
    return instance_free_entropy_gap(inst, bp_options=BP_OPTIONS,
                                     rng=np.random.default_rng(bp_seed))


def make_cells(cfg: Config) -> list[dict]:
    """The sweep's cells in their fixed order (the order sets the seeds)."""
    return [{"n": n, "degree": d, "seed_index": s, "bp": BP_OPTIONS}
            for n in cfg.sizes for d in cfg.degrees
            for s in range(cfg.seeds if n <= 10_000 else 1)]


def is_converged(result: dict) -> bool:
    """Both BP runs of a cell converged, so its Bethe free-entropy gap is meaningful."""
    return bool(result["converged_planted"]) and bool(result["converged_uniform"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=list(Config.sizes))
    ap.add_argument("--seeds", type=int, default=Config.seeds)
    ap.add_argument("--n-jobs", type=int, default=Config.n_jobs)
    ap.add_argument("--backend", default=Config.backend)
    ap.add_argument("--scheduler", default=None)
    ap.add_argument("--root-seed", type=int, default=Config.root_seed)
    ap.add_argument("--cached-only", action="store_true",
                    help="redraw from the cached cells and thresholds; error if one is missing")
    ap.add_argument("--cells-dir", default=Config.cells_dir, help="per-cell results (resume)")
    ap.add_argument("--out", default=Config.out, help="output path without suffix")
    a = ap.parse_args(argv)
    cfg = Config(sizes=tuple(a.sizes), seeds=a.seeds, n_jobs=a.n_jobs, backend=a.backend,
                 scheduler=a.scheduler, root_seed=a.root_seed, cells_dir=a.cells_dir,
                 out=a.out, cached_only=a.cached_only)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lohard.cavity import thresholds_report
    from lohard.sweep import cached_record, run_sweep

    cells = make_cells(cfg)
    if cfg.cached_only:
        missing = [c for i, c in enumerate(cells)
                   if cached_record(cfg.cells_dir, c, cfg.root_seed, i) is None]
        if missing:
            raise SystemExit(f"--cached-only: {len(missing)} of {len(cells)} cells are not "
                             f"cached in {cfg.cells_dir} (first: N = {missing[0]['n']}, "
                             f"d = {missing[0]['degree']})")
    recs = run_sweep(cell_func, cells, root_seed=cfg.root_seed, out_dir=cfg.cells_dir,
                     n_jobs=cfg.n_jobs, backend=cfg.backend, scheduler=cfg.scheduler,
                     desc="free entropy")
    pred = Predicate.nae(3, 3)
    # default settings: those of the thresholds table, so its cache is reused
    th = thresholds_report(pred, rng=0, n_jobs=cfg.n_jobs, compute=not cfg.cached_only)
    n_cells = len(recs)
    finite = [r for r in recs if np.isfinite(float(r["result"]["gap"]))]
    not_converged = [r for r in finite if not is_converged(r["result"])]
    fig, ax = plt.subplots(figsize=(7, 4.8))
    for n, mk, colour in zip(cfg.sizes, "os^v", ("C0", "C1", "C2", "C4"), strict=False):
        rows = [r for r in finite if r["cell"]["n"] == n]
        d = np.array([r["result"]["degree"] for r in rows])
        g = np.array([float(r["result"]["gap"]) for r in rows])
        ok = np.array([is_converged(r["result"]) for r in rows], dtype=bool)
        ax.plot(d[ok], g[ok], mk, color=colour, alpha=0.8,
                label=f"N = {n:,} (planted − uniform start)")
        ax.plot(d[~ok], g[~ok], mk, mfc="none", mec=colour, mew=1.2, alpha=0.9)
    if not_converged:
        ax.plot([], [], "o", mfc="none", mec="0.3", mew=1.2,
                label=f"hollow: BP not converged in {BP_OPTIONS['max_iter']} sweeps "
                      f"({len(not_converged)} of {n_cells} cells; no meaningful Bethe value)")
    ax.axhline(0.0, color="k", lw=0.8)
    for name, val, ls in (("d_sp", th["d_sp"], ":"), ("d_cond", th["d_cond"], "--"),
                          ("d_KS", th["d_ks"], "-.")):
        if math.isfinite(val):
            ax.axvline(val, color="gray", ls=ls, label=f"{name} = {val:.2f} (cavity)"
                       if name != "d_KS" else f"{name} = {val:.0f} (analytic)")
    ax.set_xlabel("degree d = (k-1) k P / N")
    ax.set_ylabel("Bethe free entropy gap per variable")
    title = "Planted NAE(k=3, m=3): BP from the truth vs from uniform"
    if len(finite) < n_cells:
        title += f" ({n_cells - len(finite)} cells with a non-finite gap not shown)"
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7.5)
    fig.tight_layout()
    out = Path(cfg.out)
    atomic_write(out.with_suffix(".png"), lambda tmp: fig.savefig(tmp, format="png", dpi=130))
    plt.close(fig)
    atomic_write_json(out.with_suffix(".json"), {
        "meta": provenance(dataclasses.asdict(cfg), cfg.root_seed),
        "thresholds": {k: th[k] for k in ("d_sp", "d_sp_err", "d_cond", "d_cond_err", "d_ks")},
        "cells_total": n_cells,
        "non_finite_gap": n_cells - len(finite),
        "not_converged": len(not_converged),
        "not_converged_cells": [{"n": r["cell"]["n"], "degree": r["cell"]["degree"],
                                 "seed_index": r["cell"]["seed_index"],
                                 "realised_degree": r["result"]["degree"],
                                 "converged_planted": r["result"]["converged_planted"],
                                 "converged_uniform": r["result"]["converged_uniform"]}
                                for r in not_converged],
        "cells": [{**r["cell"], **r["result"]} for r in recs],
    })
    print(f"{len(not_converged)} of {n_cells} cells did not converge (drawn hollow); "
          f"{n_cells - len(finite)} had a non-finite gap (not drawn)")
    # Where does the gap change sign? (mean over seeds per degree, largest N)
    for n in cfg.sizes:
        rows = [r["result"] for r in recs if r["cell"]["n"] == n]
        ds = sorted({r["degree"] for r in rows})
        print(n, [(round(x, 2), round(float(r["gap"]), 5)) for x in ds for r in rows
                  if r["degree"] == x])
    print(f"wrote {out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
