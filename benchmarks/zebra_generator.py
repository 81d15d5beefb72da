"""Zebra generator and solver speed: puzzles per second at sizes 3x3 .. 6x6 (one process).

Generation: a random solution, random true clues until the strategies solve it
(incremental propagation), then one strategy solve per clue to drop redundant ones.
Solving: :func:`lohard.zebra.solve` (strategies, and the search that proves uniqueness),
and the strategies alone (``guess=False``) as the reference measured in the same run;
the ratio shows what the uniqueness proof costs on top. Medians over ``--repeats``; the
machine load (``os.getloadavg``) is printed before and after, since these numbers are
wall-clock rates.

    python benchmarks/zebra_generator.py [--num 100] [--repeats 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numpy as np

from lohard import __version__
from lohard.zebra import generate, solve

SIZES = ((3, 3), (4, 4), (5, 5), (6, 6))


def rate(fn, count: int) -> float:
    t = time.perf_counter()
    fn()
    return count / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--num", type=int, default=100, help="puzzles per measurement (3x3; "
                    "divided by 1, 2, 4, 8 for the larger sizes)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    load0 = os.getloadavg()
    rows = []
    for k, (m, n) in enumerate(SIZES):
        num = max(5, args.num // 2**k)
        gen, sol, strat = [], [], []
        for r in range(args.repeats):
            rng = np.random.default_rng([args.seed, m, n, r])
            puzzles: list = []
            gen.append(rate(lambda rng=rng, puzzles=puzzles, m=m, n=n: puzzles.extend(
                generate(m, n, rng=rng) for _ in range(num)), num))
            sol.append(rate(lambda puzzles=puzzles: [solve(p) for p in puzzles], num))
            strat.append(rate(lambda puzzles=puzzles: [solve(p, guess=False)
                                                       for p in puzzles], num))
        clues = float(np.mean([len(p.clues) for p in puzzles]))
        row = {"size": f"{m}x{n}", "puzzles": num, "clues_mean": clues,
               "generate_per_s": statistics.median(gen), "solve_per_s": statistics.median(sol),
               "strategies_only_per_s": statistics.median(strat)}
        row["solve_vs_strategies"] = row["solve_per_s"] / row["strategies_only_per_s"]
        rows.append(row)
        if not args.json:
            print(f"{m}x{n}: generate {row['generate_per_s']:8.1f} puzzles/s, solve "
                  f"{row['solve_per_s']:8.1f}/s (strategies only "
                  f"{row['strategies_only_per_s']:8.1f}/s, ratio "
                  f"{row['solve_vs_strategies']:.2f}), {clues:.1f} clues, median of "
                  f"{args.repeats} x {num}", flush=True)
    load1 = os.getloadavg()
    meta = {"lohard_version": __version__, "cpu_count": os.cpu_count(),
            "loadavg_before": load0, "loadavg_after": load1, "seed": args.seed}
    if args.json:
        print(json.dumps({**meta, "rows": rows}, indent=2))
    else:
        print(f"load average before {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}, after "
              f"{load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f} ({os.cpu_count()} CPUs); "
              f"lohard {__version__}")


if __name__ == "__main__":
    main()
