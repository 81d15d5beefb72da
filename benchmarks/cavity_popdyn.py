"""Benchmark: population-dynamics throughput and how the free-entropy error shrinks with M.

Part 1 (throughput): ns per clause update of a population sweep for colouring and
NAE at their first-moment degree d_1m, the NAE fast path against the generic
truth-table path in the same run (same populations, same seeds).

Part 2 (error against M): planted 5-colouring at d = 13.23 (near d_cond). For each
population size M, ``repeats`` independent runs give the spread of Delta phi
(which includes the population's own fluctuations) next to the within-run
batch-means error; the spread converts into a d_cond error through the measured
slope of Delta phi. Usage::

    python benchmarks/cavity_popdyn.py [--populations 2000 8000 32000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from lohard.cavity import _kernels as K
from lohard.cavity import first_moment_degree, population_dynamics
from lohard.cavity._popdyn import PredicateArrays
from lohard.predicates import Predicate


def sweep_ns_per_clause(pred: Predicate, degree: float, code: int, *, per: int = 1000,
                        sweeps: int = 3) -> float:
    """Wall-clock ns per clause update of ``sweeps`` planted sweeps (after one warm-up)."""
    k, m = pred.k, pred.m
    arr = PredicateArrays.of(pred)
    pop = np.zeros((m, per, m))
    for c in range(m):
        pop[c, :, c] = 1.0
    trace = np.empty(sweeps)
    gen = np.random.default_rng(0)
    K.pd_sweeps(gen, pop, 1, degree / (k - 1), code, arr.sat, arr.sc_off, arr.sc_idx, k, m,
                trace[:1])
    t0 = time.perf_counter()
    K.pd_sweeps(gen, pop, sweeps, degree / (k - 1), code, arr.sat, arr.sc_off, arr.sc_idx, k,
                m, trace)
    return (time.perf_counter() - t0) / (sweeps * m * per * degree / (k - 1)) * 1e9


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--populations", type=int, nargs="+", default=[2000, 8000, 32000])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--degree", type=float, default=13.23)
    ap.add_argument("--skip-throughput", action="store_true")
    a = ap.parse_args(argv)

    if not a.skip_throughput:
        print("predicate, d = d_1m, ns/clause NAE fast path, ns/clause truth table, ratio")
        for p in (Predicate.not_equal(5), Predicate.not_equal(10), Predicate.nae(3, 3),
                  Predicate.nae(3, 4), Predicate.nae(4, 3), Predicate.nae(4, 4)):
            d = first_moment_degree(p)
            fast = sweep_ns_per_clause(p, d, K.NAE)
            slow = sweep_ns_per_clause(p, d, 0)
            print(f"{p.name}, {d:.1f}, {fast:.0f}, {slow:.0f}, {slow / fast:.2f}", flush=True)

    p = Predicate.not_equal(5)
    population_dynamics(p, a.degree, population=500, sweeps=2, measure=2, rng=0)  # compile
    # slope of Delta phi near d_cond, from two runs 0.3 apart
    lo = population_dynamics(p, a.degree - 0.15, population=8000, sweeps=40, measure=20, rng=1)
    hi = population_dynamics(p, a.degree + 0.15, population=8000, sweeps=40, measure=20, rng=2)
    slope = (hi.delta_phi - lo.delta_phi) / 0.3
    print(f"slope d(Delta phi)/dd near d = {a.degree}: {slope:.4f}")
    print("M, seconds/run, clause updates/s, mean Delta phi, spread(sd over repeats), "
          "within-run err, implied d_cond sd per run")
    for m in a.populations:
        vals, errs, secs = [], [], []
        for r in range(a.repeats):
            t0 = time.perf_counter()
            res = population_dynamics(p, a.degree, population=m, sweeps=40, measure=20,
                                      rng=100 + r)
            secs.append(time.perf_counter() - t0)
            vals.append(res.delta_phi)
            errs.append(res.delta_phi_err)
        # updates: (sweeps + measure) sweeps of m updates + measure * m samples, d clauses each
        clause_updates = (40 + 20 + 20) * m * a.degree
        sd = float(np.std(vals, ddof=1))
        print(f"{m}, {np.mean(secs):.2f}, {clause_updates / np.mean(secs):.3g}, "
              f"{np.mean(vals):+.5f}, {sd:.5f}, {np.mean(errs):.5f}, {sd / slope:.4f}",
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
