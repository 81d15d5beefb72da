"""BP speed on planted NAE(3,3), N = 10^4, d = 64 (about 107k clauses).

Prints ms per iteration and edge updates per second for lohard's Numba kernels
(flooding schedule, serial and multi-threaded; random-sequential sweep) next to
two references measured in the same process on the same instance and messages:
a plain vectorised-NumPy implementation of the same flooding update, and the
plain Numba loop (variable-major storage, prefix/suffix leave-one-out products)
that the production kernels are tested against. It checks that all compute
the same messages.

    python benchmarks/bp_speed.py [--n 10000] [--degree 64] [--reps 20]
"""

from __future__ import annotations

import argparse
import json
import time

import numba
import numpy as np

from lohard import __version__
from lohard.bp import FactorGraph
from lohard.bp import _kernels as K
from lohard.csp import planted_instance
from lohard.predicates import Predicate


def numpy_flooding_step(nu, clauses, n, damping):
    """One flooding NAE update in vectorised NumPy (edge order e = a*k + s).

    Leave-one-out by dividing the full product by the own message, which is
    valid here because the benchmark's messages have no zeros.
    """
    E, m = nu.shape
    k = clauses.shape[1]
    var = clauses.reshape(-1)
    logtot = np.zeros((n, m))
    np.add.at(logtot, var, np.log(nu))
    mu = np.exp(logtot[var] - np.log(nu))
    mu /= mu.sum(axis=1, keepdims=True)
    mu3 = mu.reshape(-1, k, m)
    new = np.empty_like(mu3)
    for s in range(k):
        others = [t for t in range(k) if t != s]
        new[:, s, :] = 1.0 - np.prod(mu3[:, others, :], axis=1)
    new /= new.sum(axis=2, keepdims=True)
    return damping * nu + (1 - damping) * new.reshape(E, m)


def timeit(fn, reps):
    """Median seconds per call over ``reps`` calls, after a second of warm-up calls.

    The median, not the mean: on a shared machine a few calls are slowed by
    other processes, and a multi-threaded call by a descheduled thread.
    """
    fn()  # JIT compile
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < 1.0:  # warm-up: caches, threads, an idle second core
        fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--degree", type=float, default=64.0)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    inst = planted_instance(args.n, Predicate.nae(3, 3), args.degree, rng=args.seed)
    g = FactorGraph.from_instance(inst)
    offsets, edges = g._csr
    pos = g._pos
    si, so = g._sat
    md = K.max_degree(offsets)
    flat = inst.clauses.reshape(-1)
    E, m, k = g.num_edges, 3, 3
    kt, mt = K.shape_tuples(k, m)
    n = inst.n
    rng = np.random.default_rng(args.seed)
    nu_edge = 1 / 3 + 0.02 * rng.uniform(-1, 1, (E, m))  # the default random start
    nu_edge /= nu_edge.sum(axis=1, keepdims=True)
    w = 0.5

    nch = K.flood_chunks(E, n)
    nblocks = 8 * numba.get_num_threads()

    def state():
        """Messages, then products, beliefs and partial products as run_bp sets them up."""
        nu = nu_edge.copy()
        arrays, _ = K.flood_start(nu, g.field, offsets, edges, inst.num_clauses, mt, nch)
        return (nu, *arrays)

    def flood(fn, st, damping):
        return fn(*st, g.field, offsets, edges, flat, kt, mt, damping, 1, 0, g.tables,
                  g.clause_table, si, so, nblocks)

    def ref_state():
        nu = np.ascontiguousarray(nu_edge[edges])  # variable-major rows pos[e]
        return nu, np.empty_like(nu), np.empty((n, m))

    # correctness: one step of each kernel equals one NumPy step
    ref = numpy_flooding_step(nu_edge, inst.clauses, n, w)
    st = state()
    flood(K.flood_serial, st, w)
    err = float(np.abs(st[0] - ref).max())
    rnu, rmu, rbel = ref_state()
    K.reference_iterate(rnu, rmu, rbel, g.field, offsets, pos, k, m, w, 1, 0, g.tables,
                        g.clause_table, si, so, md)
    err = max(err, float(np.abs(rnu[pos] - ref).max()))
    assert err < 1e-12, err

    rnu, rmu, rbel = ref_state()
    t_ref = timeit(lambda: K.reference_iterate(rnu, rmu, rbel, g.field, offsets, pos, k, m, w, 1,
                                               0, g.tables, g.clause_table, si, so, md),
                   args.reps)
    st = state()
    t_serial = timeit(lambda: flood(K.flood_serial, st, w), args.reps)
    st = state()
    t_par = timeit(lambda: flood(K.flood_parallel, st, w), args.reps)
    nu, prod, zeros, _, bel = state()[:5]
    order = rng.permutation(inst.num_clauses).astype(np.int64)
    t_seq = timeit(lambda: K.sweep_sequential(nu, prod, zeros, bel, g.field, offsets, edges,
                                              flat, order, kt, mt, 0.3, 1, 0, g.tables,
                                              g.clause_table, si, so), max(3, args.reps // 4))
    t_np = timeit(lambda: numpy_flooding_step(nu_edge, inst.clauses, n, w),
                  max(3, args.reps // 4))
    rows = [("numpy flooding (reference)", t_np),
            ("numba prefix/suffix flooding, serial", t_ref),
            ("lohard flooding, serial", t_serial),
            (f"lohard flooding, {numba.get_num_threads()} threads", t_par),
            ("lohard random-sequential sweep", t_seq)]
    out = {"lohard_version": __version__, "n": inst.n, "clauses": inst.num_clauses,
           "edges": E, "degree": inst.degree, "threads": numba.get_num_threads(),
           "max_abs_diff_vs_numpy": err,
           "results": [{"name": r, "ms_per_iter": t * 1e3, "edge_updates_per_s": E / t,
                        "speedup_vs_numpy": t_np / t} for r, t in rows]}
    if args.json:
        print(json.dumps(out, indent=2))
        return
    print(f"planted NAE(3,3): N = {inst.n}, P = {inst.num_clauses}, E = {E}, "
          f"d = {inst.degree:.2f}; numba threads = {numba.get_num_threads()}")
    print(f"{'implementation':36s} {'ms/iter':>9s} {'Medge/s':>9s} {'vs numpy':>9s}")
    for r, t in rows:
        print(f"{r:36s} {t * 1e3:9.2f} {E / t / 1e6:9.2f} {t_np / t:8.1f}x")
    print("target: <= 3 ms per flooding iteration on the 2-core CI machine")


if __name__ == "__main__":
    main()
