"""Where BP's posterior error grows: BP vs exact on L&O-NAE-SAT (20, 280), App. C.2.1 masks.

Prints, for each l, the mean and max total-variation distance between BP and exact
posteriors over masked latents and masked observations, and BP's convergence rate.

    python simulations/lo_bp_vs_exact.py [--seqs 40] [--seed 0]
"""

from __future__ import annotations

import argparse

import numpy as np

from lohard.lo import bp_posterior, exact_posterior, nae_sat, protocol_mask


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seqs", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    d = nae_sat(20, 280, rng=args.seed)
    tok = d.sample(args.seqs, rng=args.seed + 1)
    print(f"{'l':>3} {'TV latents mean':>16} {'max':>7} {'TV obs mean':>12} {'max':>7} "
          f"{'BP conv':>8}")
    for ell in range(1, 20):
        mk = protocol_mask(d, args.seqs, ell, rng=args.seed + 100 + ell)
        ex = exact_posterior(d, tok, mk)
        bp = bp_posterior(d, tok, mk, rng=args.seed, warn=False)  # BP conv is a column
        tv = 0.5 * np.abs(ex.probs - bp.probs).sum(-1)
        lat = tv[:, d.latent_positions][mk[:, d.latent_positions]]
        obs = tv[:, d.observed_positions][mk[:, d.observed_positions]]
        print(f"{ell:3d} {lat.mean():16.4f} {lat.max():7.3f} {obs.mean():12.4f} {obs.max():7.3f} "
              f"{bp.converged.mean():8.2f}")


if __name__ == "__main__":
    main()
