"""Exact-posterior speed on L&O-NAE-SAT (20, 280) with App. C.2.1 masks (target: <= 50 ms).

Times ``lohard.lo.exact_posterior`` (Numba, components + Gray code, one core) per
sequence for each l, and a simple reference measured in the same run: NumPy
enumeration of every joint assignment of the masked latents, all observations
evaluated per assignment (no components, no incremental updates).

    NUMBA_NUM_THREADS=1 python benchmarks/lo_posterior_speed.py [--seqs 50] [--ref-seqs 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from lohard.lo import exact_posterior, nae_sat, protocol_mask


def reference_posterior(dist, tokens, mask):
    """Masked-latent marginals and masked-observation laws by vectorised full enumeration."""
    lp, op = dist.latent_positions, dist.observed_positions
    lm, om = mask[lp], mask[op]
    u = np.flatnonzero(lm)
    xs = np.tile(np.where(lm, 0, tokens[lp]), (1 << u.size, 1))
    xs[:, u] = (np.arange(1 << u.size)[:, None] >> np.arange(u.size)[None, :]) & 1
    sc = xs[:, dist.scopes]
    nae = (sc.min(axis=2) != sc.max(axis=2)).astype(np.int64)
    obs = tokens[op]
    ok = np.all(nae[:, ~om] == obs[~om], axis=1)
    w = ok / ok.sum()
    return w @ xs[:, u], w @ nae[:, om]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seqs", type=int, default=50, help="sequences timed per l")
    ap.add_argument("--ref-seqs", type=int, default=3, help="sequences timed for the reference")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    d = nae_sat(20, 280, rng=args.seed)
    tok = d.sample(args.seqs, rng=args.seed + 1)
    exact_posterior(d, tok[:1], protocol_mask(d, 1, 5, rng=0))  # compile / load cache
    print(f"L&O-NAE-SAT (20, 280), App. C.2.1 masks; {args.seqs} sequences per l")
    print(f"{'l':>3} {'lohard ms/seq':>14} {'max ms':>8} {'reference ms/seq':>17} {'ratio':>8}")
    worst = 0.0
    for ell in range(1, 20):
        mk = protocol_mask(d, args.seqs, ell, rng=args.seed + 100 + ell)
        times = []
        for b in range(args.seqs):
            t0 = time.perf_counter()
            post = exact_posterior(d, tok[b], mk[b])
            times.append(time.perf_counter() - t0)
        worst = max(worst, max(times))
        r = []
        for b in range(args.ref_seqs):
            t0 = time.perf_counter()
            lat, ob = reference_posterior(d, tok[b], mk[b])
            r.append(time.perf_counter() - t0)
            post = exact_posterior(d, tok[b], mk[b])
            assert np.allclose(post.probs[d.latent_positions[mk[b, :20]], 1], lat, atol=1e-12)
            assert np.allclose(post.probs[d.observed_positions[mk[b, 20:]], 1], ob, atol=1e-12)
        ours, ref = 1e3 * np.mean(times), 1e3 * np.mean(r)
        print(f"{ell:3d} {ours:14.3f} {1e3 * max(times):8.3f} {ref:17.3f} {ref / ours:8.1f}x")
    print(f"slowest single sequence over all l: {1e3 * worst:.2f} ms (target 50 ms)")


if __name__ == "__main__":
    main()
