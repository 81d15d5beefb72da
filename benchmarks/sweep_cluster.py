"""A fig4 sweep on 2 Dask workers next to loky with 2 workers, on the same machine.

Both run the same cells (every cell computed: a fresh cache each round) with two
worker processes; the rounds interleave the two backends so that a change in the
machine's load hits both. The Dask cluster (a ``LocalCluster`` of 2 single-threaded
worker processes on 127.0.0.1) is started once, outside the timed region, and its
start-up time is printed apart. Prints per-round times, medians, their ratio and
the load average before and after.

    python benchmarks/sweep_cluster.py [--n 5000] [--degrees 40,50,60,70] [--seeds 2]
                                       [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

from lohard.experiments.fig4 import Fig4Config, run_fig4


def timed(cfg: Fig4Config) -> float:
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        run_fig4(cfg, out_dir=out, progress=False)
        return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--degrees", default="40,50,60,70")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    from distributed import LocalCluster

    degrees = [float(d) for d in args.degrees.split(",")]
    base = dict(n=args.n, degrees=degrees, seeds=args.seeds, n_jobs=2)
    print(f"fig4 nae(3,3), N = {args.n}, degrees {degrees}, {args.seeds} seeds: "
          f"{len(degrees) * args.seeds} cells; load average {os.getloadavg()}")
    t0 = time.perf_counter()
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        print(f"dask LocalCluster start-up: {time.perf_counter() - t0:.1f} s")
        # warm-up (imports and numba's cached kernels in every worker), not timed
        timed(Fig4Config(**base, backend="loky"))
        timed(Fig4Config(**base, backend="dask", scheduler=cluster.scheduler_address))
        times = {"loky": [], "dask": []}
        for r in range(args.rounds):
            for backend in ("loky", "dask") if r % 2 == 0 else ("dask", "loky"):
                sched = cluster.scheduler_address if backend == "dask" else None
                times[backend].append(timed(Fig4Config(**base, backend=backend,
                                                       scheduler=sched)))
                print(f"round {r + 1}: {backend} {times[backend][-1]:.2f} s", flush=True)
    med = {b: statistics.median(t) for b, t in times.items()}
    for b, t in times.items():
        print(f"{b}: median {med[b]:.2f} s  rounds {' / '.join(f'{x:.2f}' for x in t)}")
    print(f"dask / loky = {med['dask'] / med['loky']:.2f}; load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
