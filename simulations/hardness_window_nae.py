"""Figure: Prop. 3.3 hardness window of NAE(3,3) sparse-predicate L&O data at a few N.

Layout of Ex. 3.2: N latents and one observation per ordered 3-subset
(P = N (N-1) (N-2)); each token masked independently with probability alpha.
A mask lands in the window when every latent is masked and the unmasked
satisfied observations form a planted CSP with d_cond < d < d_KS. d_cond comes
from ``thresholds_report`` (cached), d_KS = 64 is analytic. Writes
figures/hardness_window_nae.png and .json. Usage::

    python simulations/hardness_window_nae.py [--sizes 100 1000 10000]
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np
from scipy.integrate import trapezoid

from lohard._util import atomic_write, atomic_write_json, provenance
from lohard.cavity import hardness_window, thresholds_report, window_probability
from lohard.predicates import Predicate


@dataclasses.dataclass
class Config:
    sizes: tuple = (100, 1000, 10000)
    seed: int = 0
    out: str = "figures/hardness_window_nae"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=list(Config.sizes))
    cfg = Config(sizes=tuple(ap.parse_args(argv).sizes))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pred = Predicate.nae(3, 3)
    # default settings: those of the thresholds table, so its cache is reused
    th = thresholds_report(pred, rng=cfg.seed)
    d_cond, d_ks = th["d_cond"], th["d_ks"]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    rows = []
    for n in cfg.sizes:
        w = hardness_window(pred, n, d_cond=d_cond, d_ks=d_ks)
        n_sat = int(round(w["expected_satisfied"]))
        # 1 - alpha on a log grid around the window; the window is O(N^(1-k)) wide
        x_lo, x_hi = (1 - w["alpha_hi"]) / 3, (1 - w["alpha_lo"]) * 3
        one_minus = np.geomspace(x_lo, x_hi, 400)
        p = window_probability(1 - one_minus, n, n_sat, 3, d_cond=d_cond, d_ks=d_ks)
        # probability that a mask with alpha ~ Uniform(0, 1) lands in the window
        fine = np.linspace(w["alpha_lo"] - (1 - w["alpha_lo"]), 1.0, 20001)
        fine = fine[(fine >= 0) & (fine <= 1)]
        pf = window_probability(fine, n, n_sat, 3, d_cond=d_cond, d_ks=d_ks)
        p_uniform = float(trapezoid(pf, fine))
        line, = ax.plot(one_minus, p, label=f"N = {n:,}: max p = {p.max():.2f}")
        ax.axvspan(1 - w["alpha_hi"], 1 - w["alpha_lo"], color=line.get_color(), alpha=0.12)
        rows.append({**w, "n": n, "max_probability": float(p.max()),
                     "probability_alpha_uniform": p_uniform})
        print(f"N={n}: alpha in ({w['alpha_lo']:.8f}, {w['alpha_hi']:.8f}), max p "
              f"{p.max():.3f}, P(window | alpha ~ U(0,1)) = {p_uniform:.3e}")
    ax.set_xscale("log")
    ax.set_xlabel("unmasked fraction 1 − α")
    ax.set_ylabel("P(mask lands in (d_cond, d_KS))")
    ax.set_title(f"NAE(3,3), Ex. 3.2 layout: hardness window between d_cond = {d_cond:.2f} "
                 f"and d_KS = {d_ks:.0f}", fontsize=9)
    ax.legend(fontsize=8, title="shaded: mean-field window", title_fontsize=8)
    fig.tight_layout()
    out = Path(cfg.out)
    atomic_write(out.with_suffix(".png"), lambda tmp: fig.savefig(tmp, format="png", dpi=130))
    plt.close(fig)
    atomic_write_json(out.with_suffix(".json"), {
        "meta": provenance(dataclasses.asdict(cfg), cfg.seed),
        "thresholds": {"d_cond": d_cond, "d_cond_err": th["d_cond_err"], "d_ks": d_ks},
        "rows": rows})
    print(f"wrote {out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
