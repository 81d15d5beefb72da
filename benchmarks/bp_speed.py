"""BP speed on planted NAE(3,3), d = 64: kernels, scaling in N, fixed cost, threads under load.

Default (N = 10^4): ms per iteration and edge updates per second for lohard's
Numba kernels (flooding schedule, serial and multi-threaded; random-sequential
sweep) next to two references measured in the same process on the same
instance and messages: a plain vectorised-NumPy implementation of the same
flooding update, and the plain Numba loop (variable-major storage,
prefix/suffix leave-one-out products) that the production kernels are tested
against. It checks that all compute the same messages. Then run_bp's fixed
cost (the work outside the iterations) in iterations' worth.

``--n N`` (N != 10^4) adds the cost per edge at N and at N = 10^4, measured in
the same run, and their ratio (target <= 3x), and reports run_bp's fixed cost
at N (target <= 2 iterations' worth); the references run at N = 10^4 only.

``--under-load`` compares run_bp's default thread choice (``threads="auto"``)
with one thread, interleaved, first on the machine as it is, then next to
``--load-procs`` busy processes that this script starts: medians of whole
runs, per iteration, and their ratio (target <= 1.2 under load).

    python benchmarks/bp_speed.py [--n 10000] [--degree 64] [--reps 20]
    python benchmarks/bp_speed.py --n 1000000
    python benchmarks/bp_speed.py --under-load [--load-procs 1] [--iters 100]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import time

import numba
import numpy as np

from lohard import __version__
from lohard.bp import FactorGraph, _layout, run_bp
from lohard.bp import _kernels as K
from lohard.bp._bp import _initial_messages
from lohard.bp._order import sweep_order
from lohard.csp import planted_instance
from lohard.predicates import Predicate

REFERENCE_N = 10_000


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


class Kernels:
    """lohard's kernels on one instance, in run_bp's internal layout, from the default start."""

    def __init__(self, inst, seed):
        self.inst = inst
        self.g = g = FactorGraph.from_instance(inst)
        self.L = g._layout
        self.si, self.so = g._sat
        self.kt, self.mt = K.shape_tuples(g.k, g.m)
        self.fld = self.L.variables_in(g.field)
        self.fld.setflags(write=False)
        self.rng = np.random.default_rng(seed)
        self.nu_user = _initial_messages(g, "uniform", 0.02, None, np.random.default_rng(seed))
        self.nu_user = self.L.edges_out(self.nu_user)  # the same start in the user's order
        self.nch = K.flood_chunks(g.num_edges, g.n)

    def state(self):
        """Messages, then products, beliefs and partial products as run_bp sets them up."""
        nu = np.ascontiguousarray(self.L.edges_in(self.nu_user))
        arrays, _ = K.flood_start(nu, self.fld, self.L.offsets, self.L.edges,
                                  self.L.clauses.reshape(-1), self.g.clauses.shape[0], self.mt,
                                  self.nch)
        return (nu, *arrays)

    def flood(self, st, damping, threads=1):
        fn = K.flood_parallel if threads > 1 else K.flood_serial
        L = self.L
        return fn(*st, self.fld, L.offsets, L.edges, L.clauses.reshape(-1), self.kt, self.mt,
                  damping, 1, 0, self.g.tables, L.clause_table, self.si, self.so, 8 * threads)

    def sweep_timer(self, reps):
        L = self.L
        nu = self.state()[0]
        n, m = self.g.n, self.g.m
        prod, zeros, bel = np.empty((n, m)), np.empty((n, m), dtype=np.int64), np.empty((n, m))
        order = np.empty(self.g.clauses.shape[0], dtype=np.int64)

        def sweep():  # as run_bp does it: a fresh random clause order, then the sweep
            sweep_order(self.rng, L.clause_pos, order)
            K.sweep_sequential(nu, prod, zeros, bel, self.fld, L.offsets, L.edges,
                               L.clauses.reshape(-1), order, self.kt, self.mt, 0.3, 1, 0,
                               self.g.tables, L.clause_table, self.si, self.so)

        return timeit(sweep, reps)


def kernel_table(kn: Kernels, reps: int) -> tuple[list, float]:
    """The implementations table at one N; returns (rows, max abs diff vs NumPy)."""
    g, inst = kn.g, kn.inst
    offsets, edges = g._csr
    pos = g._pos
    md = K.max_degree(offsets)
    m, k, n = g.m, g.k, g.n
    w = 0.5

    def ref_state():
        nu = np.ascontiguousarray(kn.nu_user[edges])  # variable-major rows pos[e]
        return nu, np.empty_like(nu), np.empty((n, m))

    # correctness: one step of each kernel equals one NumPy step
    ref = numpy_flooding_step(kn.nu_user, inst.clauses, n, w)
    st = kn.state()
    kn.flood(st, w)
    err = float(np.abs(kn.L.edges_out(st[0]) - ref).max())
    rnu, rmu, rbel = ref_state()
    K.reference_iterate(rnu, rmu, rbel, g.field, offsets, pos, k, m, w, 1, 0, g.tables,
                        g.clause_table, kn.si, kn.so, md)
    err = max(err, float(np.abs(rnu[pos] - ref).max()))
    assert err < 1e-12, err

    rnu, rmu, rbel = ref_state()
    t_ref = timeit(lambda: K.reference_iterate(rnu, rmu, rbel, g.field, offsets, pos, k, m, w, 1,
                                               0, g.tables, g.clause_table, kn.si, kn.so, md),
                   reps)
    st = kn.state()
    t_serial = timeit(lambda: kn.flood(st, w), reps)
    threads = numba.get_num_threads()
    st = kn.state()
    t_par = timeit(lambda: kn.flood(st, w, threads), reps)
    t_seq = kn.sweep_timer(max(3, reps // 4))
    t_np = timeit(lambda: numpy_flooding_step(kn.nu_user, inst.clauses, n, w), max(3, reps // 4))
    rows = [("numpy flooding (reference)", t_np),
            ("numba prefix/suffix flooding, serial", t_ref),
            ("lohard flooding, serial", t_serial),
            (f"lohard flooding, {threads} threads", t_par),
            ("lohard random-sequential sweep", t_seq)]
    return rows, err


def per_edge(kn: Kernels, reps: int) -> dict:
    """Serial seconds per iteration (flooding) and per sweep, and per edge."""
    st = kn.state()
    t_flood = timeit(lambda: kn.flood(st, 0.5), reps)
    t_sweep = kn.sweep_timer(reps)
    E = kn.g.num_edges
    return {"n": kn.g.n, "edges": E, "flood_s": t_flood, "sweep_s": t_sweep,
            "flood_ns_per_edge": t_flood / E * 1e9, "sweep_ns_per_edge": t_sweep / E * 1e9}


_PARTS = ("graph", "init", "start", "final")


def page_cost(mb: int = 256, settle: float = 3.0) -> dict:
    """This machine's cost of touching memory, in ms per MB written: fresh and just freed.

    A virtual machine with free page reporting (virtio-balloon; this one) hands
    memory a process frees back to the host within about two seconds, and the
    next touch of each page then costs a host page fault. So a first fill of
    ``mb`` MB right after freeing the same amount is the cost on reused memory,
    and one made ``settle`` seconds later the cost on memory the host took back.
    """
    size = mb * (1 << 20) // 8

    def fill():
        t = time.perf_counter()
        a = np.empty(size)
        a.fill(1.0)
        return time.perf_counter() - t, a

    _, a = fill()
    del a
    warm, a = fill()
    t = time.perf_counter()
    a.fill(2.0)
    again = time.perf_counter() - t  # the same pages, already mapped
    del a
    time.sleep(settle)
    cold, a = fill()
    del a
    return {"mb": mb, "settle_s": settle, "reused_ms_per_mb": warm * 1e3 / mb,
            "returned_ms_per_mb": cold * 1e3 / mb, "mapped_ms_per_mb": again * 1e3 / mb}


def fixed_cost(inst, schedule: str, iters: int, reps: int, seed: int,
               settle: float = 3.0) -> dict:
    """run_bp's own timings (one thread): the work outside the iterations, per iteration.

    Medians over ``reps`` calls after a warm-up call, in two conditions:
    ``reused``, where each call starts as soon as the previous call's result is
    released (a loop over starts, seeds or instances, a sweep worker), and
    ``returned``, where it starts ``settle`` seconds later, when a virtual
    machine with free page reporting has taken that memory back (see
    :func:`page_cost`; the fixed work writes about 1.1 GB of fresh arrays at
    N = 10^6). Each call builds the factor graph from the instance; its
    locality layout is built once per instance (the first call), so
    ``layout`` times that build on its own. ``mu`` is the first access of
    ``BPResult.mu``. ``settle = 0`` measures the first condition only.
    """
    run_bp(inst, schedule=schedule, max_iter=1, warn=False, rng=seed, threads=1)
    g = FactorGraph.from_instance(inst)
    builds = []
    for _ in range(max(1, reps // 2)):
        t = time.perf_counter()
        _layout.locality_layout(g.clauses, g.clause_table, g.n, 1)
        builds.append(time.perf_counter() - t)
    del g
    rows = {"reused": [], "returned": []} if settle > 0 else {"reused": []}
    for _ in range(reps):
        for cond in rows:
            if cond == "returned":
                time.sleep(settle)
            r = run_bp(inst, schedule=schedule, max_iter=iters, tol=1e-300, warn=False,
                       rng=seed, threads=1)
            t = time.perf_counter()
            _ = r.mu  # computed on first access
            rows[cond].append({**r.timings, "mu": time.perf_counter() - t,
                               "per_iter": r.timings["iterations"] / r.iterations})
            del r, _
    per_iter = float(np.median([row["per_iter"] for cond in rows for row in rows[cond]]))
    out = {"schedule": schedule, "per_iter": per_iter, "settle_s": settle,
           "layout": float(np.median(builds))}
    for cond, cr in rows.items():
        med = {key: float(np.median([row[key] for row in cr])) for key in (*_PARTS, "mu")}
        fixed = float(np.median([sum(row[key] for key in _PARTS) for row in cr]))
        out[cond] = {**med, "fixed": fixed, "fixed_iters": fixed / per_iter,
                     "mu_iters": med["mu"] / per_iter}
    out["first_call_iters"] = (out[list(rows)[-1]]["fixed"] + out["layout"]) / per_iter
    return out


def _busy(stop) -> None:
    """A CPU-bound loop until ``stop`` is set (the other process of --under-load)."""
    x = 0
    while not stop.is_set():
        for _ in range(100_000):
            x += 1


def compare_threads(inst, iters: int, reps: int, seed: int) -> dict:
    """Whole flooding runs of ``iters`` iterations, default threads vs 1 vs all, interleaved."""
    variants = {"auto": "auto", "1": 1, "all": numba.config.NUMBA_NUM_THREADS}
    times = {v: [] for v in variants}
    used = {}
    for _ in range(reps):
        for name, th in variants.items():
            t = time.perf_counter()
            r = run_bp(inst, schedule="parallel", max_iter=iters, tol=1e-300, warn=False,
                       rng=seed, threads=th)
            times[name].append((time.perf_counter() - t) / iters)
            if name == "auto":
                for key, c in r.options["threads_used"].items():
                    used[key] = used.get(key, 0) + c
    med = {name: float(np.median(ts)) for name, ts in times.items()}
    return {"ms_per_iter": {name: v * 1e3 for name, v in med.items()},
            "auto_over_1": med["auto"] / med["1"], "all_over_1": med["all"] / med["1"],
            "auto_threads_used": used}


def under_load(args) -> None:
    inst = planted_instance(args.n, Predicate.nae(3, 3), args.degree, rng=args.seed)
    allt = numba.config.NUMBA_NUM_THREADS
    # compile both kernels outside the measurements
    for th in (1, allt):
        run_bp(inst, schedule="parallel", max_iter=2, warn=False, rng=args.seed, threads=th)
    out = {"lohard_version": __version__, "n": inst.n, "edges": inst.clauses.size,
           "numba_threads": allt, "threading_layer": numba.threading_layer(),
           "iters": args.iters, "reps": args.reps}
    out["idle"] = compare_threads(inst, args.iters, args.reps, args.seed)
    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    procs = [ctx.Process(target=_busy, args=(stop,), daemon=True)
             for _ in range(args.load_procs)]
    for p in procs:
        p.start()
    try:
        time.sleep(1.0)  # let them start and spin
        out["loaded"] = compare_threads(inst, args.iters, args.reps, args.seed)
    finally:
        stop.set()
        for p in procs:
            p.join(5)
    if args.json:
        print(json.dumps(out, indent=2))
        return
    print(f"planted NAE(3,3): N = {inst.n}, E = {inst.clauses.size}; flooding runs of "
          f"{args.iters} iterations, {args.reps} interleaved reps, medians; numba threads = "
          f"{allt} ({out['threading_layer']})")
    for phase, label in (("idle", "machine as it is"),
                         ("loaded", f"next to {args.load_procs} busy process(es)")):
        r = out[phase]
        ms = r["ms_per_iter"]
        print(f"{label:34s} default {ms['auto']:7.2f} ms/iter | 1 thread {ms['1']:7.2f} | "
              f"{allt} threads {ms['all']:7.2f} | default/1 = {r['auto_over_1']:.2f}x, "
              f"{allt}/1 = {r['all_over_1']:.2f}x; default used {r['auto_threads_used']}")
    print("target: default/1 <= 1.2 under load; default as fast as the threads when idle")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=REFERENCE_N)
    ap.add_argument("--degree", type=float, default=64.0)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--iters", type=int, default=100,
                    help="iterations per run_bp call of --under-load")
    ap.add_argument("--under-load", action="store_true",
                    help="default thread choice vs 1 thread, idle and next to busy processes")
    ap.add_argument("--load-procs", type=int, default=1)
    ap.add_argument("--settle", type=float, default=3.0,
                    help="seconds idle before the fixed-cost calls on returned memory (N > 10^5)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.under_load:
        under_load(args)
        return

    pred = Predicate.nae(3, 3)
    ref_inst = planted_instance(REFERENCE_N, pred, args.degree, rng=args.seed)
    ref = Kernels(ref_inst, args.seed)
    rows, err = kernel_table(ref, args.reps)
    t_np = rows[0][1]
    E0 = ref.g.num_edges
    out = {"lohard_version": __version__, "n": REFERENCE_N, "clauses": ref_inst.num_clauses,
           "edges": E0, "degree": ref_inst.degree, "threads": numba.get_num_threads(),
           "max_abs_diff_vs_numpy": err,
           "results": [{"name": r, "ms_per_iter": t * 1e3, "edge_updates_per_s": E0 / t,
                        "speedup_vs_numpy": t_np / t} for r, t in rows]}
    big = None
    if args.n != REFERENCE_N:
        inst = planted_instance(args.n, pred, args.degree, rng=args.seed)
        big_reps = max(3, args.reps // 5)
        big = Kernels(inst, args.seed)
        small_cost, big_cost = per_edge(ref, big_reps), per_edge(big, big_reps)
        out["scaling"] = {
            "reference": small_cost, "large": big_cost,
            "flood_ratio": big_cost["flood_ns_per_edge"] / small_cost["flood_ns_per_edge"],
            "sweep_ratio": big_cost["sweep_ns_per_edge"] / small_cost["sweep_ns_per_edge"]}
        del big
    else:
        inst = ref_inst
    fixed_reps = 5 if inst.n > 100_000 else 7
    # memory handed back to the host matters only for the large arrays of large N
    settle = args.settle if inst.n > 100_000 else 0.0
    out["page_cost"] = page_cost(settle=settle) if settle > 0 else None
    out["fixed_cost"] = [fixed_cost(inst, s, 3, fixed_reps, args.seed, settle)
                         for s in ("parallel", "random-sequential")]
    if args.json:
        print(json.dumps(out, indent=2))
        return
    print(f"planted NAE(3,3): N = {ref_inst.n}, P = {ref_inst.num_clauses}, E = {E0}, "
          f"d = {ref_inst.degree:.2f}; numba threads = {numba.get_num_threads()}")
    print(f"{'implementation':36s} {'ms/iter':>9s} {'Medge/s':>9s} {'vs numpy':>9s}")
    for r, t in rows:
        print(f"{r:36s} {t * 1e3:9.2f} {E0 / t / 1e6:9.2f} {t_np / t:8.1f}x")
    print("target: <= 3 ms per flooding iteration on the 2-core CI machine")
    if "scaling" in out:
        sc = out["scaling"]
        print(f"\ncost per edge, 1 thread (medians of {max(3, args.reps // 5)} calls):")
        for key in ("reference", "large"):
            c = sc[key]
            print(f"  N = {c['n']:>8d} (E = {c['edges']:>9d}): flooding "
                  f"{c['flood_ns_per_edge']:6.1f} ns/edge ({c['flood_s'] * 1e3:9.1f} ms/iter), "
                  f"sweep {c['sweep_ns_per_edge']:6.1f} ns/edge ({c['sweep_s'] * 1e3:9.1f} ms)")
        print(f"  ratio N = {args.n} / N = {REFERENCE_N}: flooding {sc['flood_ratio']:.2f}x, "
              f"random-sequential sweep {sc['sweep_ratio']:.2f}x (target <= 3x)")
    pc = out["page_cost"]
    print(f"\nrun_bp fixed cost at N = {inst.n}, 1 thread, medians of {fixed_reps} calls:")
    for fc in out["fixed_cost"]:
        print(f"  {fc['schedule']}: {fc['per_iter'] * 1e3:.1f} ms per iteration")
        for cond, label in (("reused", "memory just freed by the previous call"),
                            ("returned", f"memory idle {fc['settle_s']:g} s before the call")):
            if cond not in fc:
                continue
            c = fc[cond]
            print(f"    {label:40s} fixed {c['fixed'] * 1e3:7.1f} ms = {c['fixed_iters']:.2f} "
                  f"iterations' worth (graph {c['graph'] * 1e3:.0f}, init {c['init'] * 1e3:.0f}, "
                  f"start {c['start'] * 1e3:.0f}, final {c['final'] * 1e3:.0f} ms)")
        print(f"    first run on an instance also builds its layout "
              f"({fc['layout'] * 1e3:.0f} ms): {fc['first_call_iters']:.2f} iterations' worth"
              f"{' with idle memory' if 'returned' in fc else ''}; mu on first access "
              f"{fc['reused']['mu_iters']:.2f} iterations")
    if pc is not None:
        print(f"  this machine writes fresh memory at {pc['reused_ms_per_mb']:.3f} ms/MB when the "
              f"process has just freed it, {pc['returned_ms_per_mb']:.3f} ms/MB after "
              f"{pc['settle_s']:g} s idle (the host took it back), "
              f"{pc['mapped_ms_per_mb']:.3f} ms/MB when already mapped")
    print("  target: fixed cost <= 2 iterations' worth")


if __name__ == "__main__":
    main()
