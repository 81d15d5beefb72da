"""lohard's BP next to PGMax's on planted NAE(3,3), d = 64: speed and agreement of the fixed points.

Both libraries run the same loopy BP on the same factor graph: the planted
NAE(3,3) instance (k = 3 slots, m = 3 colours, not-all-equal clauses) at
degree d = (k-1) k P / N = 64, i.e. P ~ d N / 6 clauses. PGMax gets one
``EnumFactorGroup`` whose valid configurations are exactly the nonzero
entries of lohard's 0/1 predicate table (24 of 27; log potential 0), with the
factors' variables in lohard's slot order, so PGMax's flat messages
``(a * k + s) * m + c`` line up with lohard's edges ``e = a * k + s``.

Same schedule and start on both sides: flooding (all variables, then all
factors), sum-product (PGMax ``temperature=1``), no damping (PGMax damps log
messages and lohard linear ones, so only w = 0 is the same update), no
field (PGMax evidence 0). The clause-to-variable messages start at half the
planted colour and half uniform, ``nu0 = 0.5 onehot(sigma) + 0.5 / m`` (lohard
``nu0``, PGMax ``ftov_msgs = log nu0``). Why that start: undamped flooding
from the near-uniform start falls into the period-2 oscillation of NAE's global
mode at d = 64 (see ``lohard.bp._bp._DEFAULTS``), which is not a fixed point
to compare; from this start lohard converges in about 40 iterations (PGMax's
messages do not converge: see ``benchmarks/RESULTS.md``).

For each N it prints ms per iteration (medians of calls of ``--iters``
iterations, interleaved with lohard's) for lohard with one thread and with
its default thread choice, and for PGMax after JIT compilation
(``block_until_ready``), in float32 and, up to ``--float64-max-n``, float64
(``jax_enable_x64``). Then it runs PGMax one iteration at a time from the same
start for ``--conv-factor`` times the iterations lohard needs to converge,
and prints the largest absolute difference of the beliefs (PGMax's marginals)
and of the clause-to-variable messages against lohard after the same number
of iterations: after ``--iters``, when lohard has converged, and at the end.
Convergence is judged the same way on both sides: max |delta nu| of the
normalised messages between iterations (PGMax's own max |delta log nu| is
printed too).

PGMax (with JAX) is not a dependency of lohard; without it the script says so
and exits 0. pgmax 0.6.1 fails on jax 0.10 (it calls ``jax.lib.xla_bridge``);
it was measured with jax 0.4.30.

    python benchmarks/bp_vs_pgmax.py [--n 10000,100000] [--iters 10] [--reps 3] [--json]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import time
from contextlib import contextmanager

import numba
import numpy as np

from lohard import __version__
from lohard.bp import run_bp
from lohard.csp import planted_instance
from lohard.predicates import Predicate

PGMAX_MISSING = ("bp_vs_pgmax: PGMax is not installed; `pip install pgmax` (pulls JAX) to run "
                 "this comparison. PGMax is not a dependency of lohard.")

# Weight of the planted colour in the starting messages. 0.5 is far enough from
# the uniform point that undamped flooding leaves the global mode's oscillation
# and close enough that the first iterations change the messages a lot (so the
# comparison after a few iterations is not of the start against itself).
PLANTED_WEIGHT = 0.5

# "Converged": max |delta nu| below this, on either side. 1e-12 is about 1e4
# float64 ulps of a message of order 1/3; lohard reaches it in about 40 iterations.
CONV_TOL = 1e-12
# lohard's default tolerance, to say whether float32 PGMax gets anywhere near it.
LOOSE_TOL = 1e-6


def _import_pgmax():
    """(jax, pgmax submodules) or None when PGMax or JAX is not importable."""
    try:
        import jax
        from pgmax import factor, fgraph, fgroup, infer, vgroup
    except ImportError:
        return None
    return jax, factor, fgraph, fgroup, infer, vgroup


def planted_start(inst) -> np.ndarray:
    """float64 array, shape (E, m): the starting clause-to-variable messages, edges e = a*k + s."""
    m = inst.predicate.m
    nu = np.full((inst.clauses.size, m), (1.0 - PLANTED_WEIGHT) / m)
    nu[np.arange(nu.shape[0]), inst.sigma[inst.clauses.reshape(-1)]] += PLANTED_WEIGHT
    return nu


@contextmanager
def _swapped(obj, values: dict):
    """Set attributes of a frozen dataclass for the duration of the block."""
    old = {name: getattr(obj, name) for name in values}
    for name, val in values.items():
        object.__setattr__(obj, name, val)
    try:
        yield
    finally:
        for name, val in old.items():
            object.__setattr__(obj, name, val)


class PGMaxBP:
    """PGMax's BP on a lohard instance: the factor graph once, jitted runs per precision.

    PGMax's ``run_with_diffs`` reads its index arrays (which factor
    configuration touches which message entry: 3 * 24 * P entries, 77 million
    at N = 10^5) from the inferer's context as NumPy arrays. Under ``jax.jit``
    those would be compiled in as constants: 4.5 GB of memory and 6-10 s of
    compilation at N = 10^4 already. So the jitted wrapper takes them as
    arguments, swapping them into the context while it is traced; the update
    itself is PGMax's code, unchanged.
    """

    def __init__(self, inst, pg):
        jax, factor, fgraph, fgroup, infer, vgroup = pg
        self.jax, self.infer, self.enum = jax, infer, factor.EnumFactor
        pred = inst.predicate
        self.n, self.m, k = inst.n, pred.m, pred.k
        t = time.perf_counter()
        self.vars = vgroup.NDVarArray(num_states=self.m, shape=(self.n,))
        flat = self.vars[inst.clauses.reshape(-1)]  # (hash, m) per edge, e = a*k + s
        configs = np.argwhere(pred.table.reshape((self.m,) * k) != 0).astype(np.int64)
        group = fgroup.EnumFactorGroup(
            variables_for_factors=[flat[i:i + k] for i in range(0, len(flat), k)],
            factor_configs=configs, log_potentials=np.zeros(configs.shape[0]))
        graph = fgraph.FactorGraph(self.vars)
        graph.add_factors(group)
        state = graph.fg_state
        # the only factor group, so the flat messages are its own, in clause order
        assert state.factor_type_to_msgs_range[self.enum] == (0, inst.clauses.size * self.m)
        self.num_potentials = state.log_potentials.shape[0]
        self.bp = infer.build_inferer(graph.bp_state, backend="bp")
        del graph, group, flat  # the graph's per-factor Python objects
        cells = dict(zip(self.bp.run_with_diffs.__code__.co_freevars,
                         self.bp.run_with_diffs.__closure__ or ()))
        if "inferer_context" not in cells:
            raise RuntimeError("this script knows the internals of pgmax 0.6.1 only")
        self.ctx = cells["inferer_context"].cell_contents
        self.build_s = time.perf_counter() - t
        self._jitted = {}
        self._index = None

    def use(self, dtype: str) -> None:
        """Switch JAX to float32 or float64 (jax_enable_x64) and put the index arrays on the device.

        Drops the previous precision's compiled functions and arrays.
        """
        self.jax.config.update("jax_enable_x64", dtype == "float64")
        jnp = self.jax.numpy
        ctx = self.ctx
        self._jitted = {}
        self._index = None
        enum_args = ctx.inference_arguments[self.enum]
        self._index = (
            {name: jnp.asarray(getattr(ctx, name))
             for name in ("var_states_for_edge_states", "edge_indices_for_edge_states")},
            {name: jnp.asarray(val) for name, val in enum_args.items()
             if isinstance(val, np.ndarray)})
        self.dtype = dtype

    def arrays(self, nu0: np.ndarray):
        """BPArrays with log nu0 as messages, zero evidence and zero log potentials."""
        jnp = self.jax.numpy
        return self.infer.BPArrays(
            log_potentials=jnp.zeros(self.num_potentials, dtype=self.dtype),
            ftov_msgs=jnp.asarray(np.log(nu0).reshape(-1), dtype=self.dtype),
            evidence=jnp.zeros(self.n * self.m, dtype=self.dtype))

    def _compiled(self, iters: int):
        if iters not in self._jitted:
            bp, ctx, enum = self.bp, self.ctx, self.enum

            def run(arrays, index):
                top, enum_arrays = index
                args = dict(ctx.inference_arguments)
                args[enum] = {**args[enum], **enum_arrays}
                with _swapped(ctx, {**top, "inference_arguments": args}):
                    return bp.run_with_diffs(arrays, iters, damping=0.0, temperature=1.0)

            self._jitted[iters] = self.jax.jit(run)
        return self._jitted[iters]

    def run(self, arrays, iters: int):
        """``iters`` undamped sum-product iterations: (BPArrays, max |delta log nu| per iteration).

        Compiled on first use per ``iters``; blocks until done.
        """
        out, deltas = self._compiled(iters)(arrays, self._index)
        out.ftov_msgs.block_until_ready()
        return out, deltas

    def beliefs(self, arrays) -> np.ndarray:
        """float64 array, shape (n, m): normalised beliefs (PGMax's marginals)."""
        marg = self.infer.get_marginals(self.bp.get_beliefs(arrays))[self.vars]
        return np.asarray(marg, dtype=np.float64)

    def messages(self, arrays) -> np.ndarray:
        """float64 array, shape (E, m): clause-to-variable messages, normalised to sum 1."""
        log = np.asarray(arrays.ftov_msgs, dtype=np.float64).reshape(-1, self.m)
        nu = np.exp(log - log.max(axis=1, keepdims=True))
        return nu / nu.sum(axis=1, keepdims=True)

    def linear_change(self, old, new) -> float:
        """max |delta nu| between two BPArrays, nu normalised to sum 1 (lohard's criterion)."""
        if "change" not in self._jitted:
            jax, m = self.jax, self.m

            def change(a, b):
                pa = jax.nn.softmax(a.reshape(-1, m), axis=1)
                pb = jax.nn.softmax(b.reshape(-1, m), axis=1)
                return jax.numpy.abs(pa - pb).max()

            self._jitted["change"] = jax.jit(change)
        return float(self._jitted["change"](old.ftov_msgs, new.ftov_msgs))


def lohard_run(inst, nu0, iters: int, threads, tol: float = 1e-300):
    """Undamped flooding from nu0 for ``iters`` iterations (fewer if the change drops below tol)."""
    return run_bp(inst, schedule="parallel", damping=0.0, nu0=nu0, tol=tol, max_iter=iters,
                  threads=threads, warn=False)


def first_below(deltas, tol: float) -> int | None:
    """1-based iteration at which the change first fell below ``tol``, or None."""
    hit = np.flatnonzero(np.asarray(deltas) < tol)
    return int(hit[0]) + 1 if hit.size else None


def diffs(P: PGMaxBP, arrays, ref) -> dict:
    """Largest absolute differences of beliefs and messages, PGMax against a lohard result."""
    return {"beliefs": float(np.abs(P.beliefs(arrays) - ref.beliefs).max()),
            "messages": float(np.abs(P.messages(arrays) - ref.nu).max())}


def compare(inst, pg, args) -> dict:
    """Timings and agreement at one N, one PGMax precision after the other."""
    nu0 = planted_start(inst)
    dtypes = ("float32", "float64") if inst.n <= args.float64_max_n else ("float32",)
    P = PGMaxBP(inst, pg)
    row = {"dtypes": dtypes, "n": inst.n, "clauses": inst.num_clauses,
           "edges": int(inst.clauses.size), "degree": inst.degree, "pgmax_build_s": P.build_s,
           "iters": args.iters}
    lohard_run(inst, nu0, 2, 1)  # compile both kernels outside the timings
    lohard_run(inst, nu0, 2, "auto")
    # lohard's references: after `iters` iterations; converged; and run on as long as PGMax
    ref_t = lohard_run(inst, nu0, args.iters, 1)
    conv = lohard_run(inst, nu0, args.max_iter, 1, tol=CONV_TOL)
    K = conv.iterations
    steps = max(int(np.ceil(args.conv_factor * K)), args.iters)
    ref_end = lohard_run(inst, nu0, steps, 1)
    row.update(lohard_converged=bool(conv.converged), lohard_conv_iters=K, pgmax_steps=steps,
               lohard_history=conv.history.tolist())
    times = {"lohard_1": [], "lohard_auto": []}
    used = {}
    for dt in dtypes:
        P.use(dt)
        start = P.arrays(nu0)
        t = time.perf_counter()
        P.run(start, args.iters)
        row[f"pgmax_{dt}_compile_s"] = time.perf_counter() - t
        # interleaved timings: one call of each variant per round
        times[f"pgmax_{dt}"] = []
        for _ in range(args.reps):
            for th in (1, "auto"):
                r = lohard_run(inst, nu0, args.iters, th)
                times[f"lohard_{th}"].append(r.timings["iterations"] / r.iterations)
                if th == "auto":
                    for key, c in r.options["threads_used"].items():
                        used[key] = used.get(key, 0) + c
            t = time.perf_counter()
            P.run(start, args.iters)
            times[f"pgmax_{dt}"].append((time.perf_counter() - t) / args.iters)
        # agreement: one iteration at a time from the same start, PGMax's change in both forms
        a, lin, log = start, [], []
        res = {}
        for it in range(1, steps + 1):
            new, d = P.run(a, 1)
            lin.append(P.linear_change(a, new))
            log.append(float(np.asarray(d)[0]))
            a = new
            if it == args.iters:
                res["after_iters"] = diffs(P, a, ref_t)
            if it == K:
                res["at_lohard_convergence"] = diffs(P, a, conv)
        res["at_end"] = diffs(P, a, ref_end)
        res.update(first_below_conv_tol=first_below(lin, CONV_TOL),
                   first_below_1e6=first_below(lin, LOOSE_TOL),
                   min_change=float(min(lin)), argmin_change=int(np.argmin(lin)) + 1,
                   last_change=lin[-1], log_change_min=float(min(log)),
                   log_change_last=log[-1], linear_changes=lin)
        row[dt] = res
    ms = {key: float(np.median(v)) * 1e3 for key, v in times.items()}
    row["ms_per_iter"] = ms
    row["lohard_auto_threads_used"] = used
    row["pgmax_over_lohard_1"] = {dt: ms[f"pgmax_{dt}"] / ms["lohard_1"] for dt in dtypes}
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", default="10000,100000",
                    help="comma-separated list of N (default 10000,100000)")
    ap.add_argument("--degree", type=float, default=64.0)
    ap.add_argument("--iters", type=int, default=10,
                    help="iterations per timed call, and of the first agreement check")
    ap.add_argument("--reps", type=int, default=3, help="interleaved timed calls per variant")
    ap.add_argument("--max-iter", type=int, default=200, help="cap of lohard's convergence run")
    ap.add_argument("--conv-factor", type=float, default=1.5,
                    help="PGMax's agreement run: this many times lohard's iterations to converge")
    ap.add_argument("--float64-max-n", type=int, default=10_000,
                    help="PGMax also in float64 (jax_enable_x64) up to this N; at N = 10^5 "
                         "float64 peaks at 8 GB and takes twice float32's time")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="print JSON instead of the text")
    ap.add_argument("--json-out", help="also write the JSON to this file")
    args = ap.parse_args()
    pg = _import_pgmax()
    if pg is None:
        print(PGMAX_MISSING)
        return
    jax = pg[0]
    import pgmax

    ns = [int(s) for s in args.n.split(",") if s.strip()]
    out = {"date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "lohard_version": __version__, "numba_version": numba.__version__,
           "pgmax_version": getattr(pgmax, "__version__", "unknown"),
           "jax_version": jax.__version__, "jax_backend": jax.default_backend(),
           "numba_threads": numba.get_num_threads(), "loadavg_start": os.getloadavg(),
           "config": vars(args), "results": []}
    pred = Predicate.nae(3, 3)
    for n in ns:
        inst = planted_instance(n, pred, args.degree, rng=args.seed)
        # PGMax keeps one factor per variable set; two clauses on one set would be refused
        sets = np.sort(inst.clauses, axis=1)
        if np.unique(sets, axis=0).shape[0] != sets.shape[0]:
            raise SystemExit(f"N = {n}, seed {args.seed}: two clauses share a variable set, "
                             "which PGMax refuses; pass another --seed")
        out["results"].append(compare(inst, pg, args))
        del inst
        jax.clear_caches()  # jitted PGMax methods keep their graph (a static argument) alive
    out["loadavg_end"] = os.getloadavg()
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(out, f, indent=2)
    if args.json:
        print(json.dumps(out, indent=2))
        return
    load = " ".join(f"{x:.2f}" for x in out["loadavg_start"])
    print(f"planted NAE(3,3), d = {args.degree:g}, seed {args.seed}; undamped flooding "
          f"sum-product from {PLANTED_WEIGHT} onehot(sigma) + {1 - PLANTED_WEIGHT} uniform; "
          f"lohard {__version__}, numba {numba.__version__} ({out['numba_threads']} threads), "
          f"pgmax {out['pgmax_version']}, jax {jax.__version__} ({out['jax_backend']}); "
          f"load average {load}; ms/iter: medians of {args.reps} interleaved calls of "
          f"{args.iters} iterations")
    for r in out["results"]:
        ms, dtypes = r["ms_per_iter"], r["dtypes"]
        print(f"\nN = {r['n']}, P = {r['clauses']}, E = {r['edges']}, d = {r['degree']:.2f} "
              f"(PGMax graph built in {r['pgmax_build_s']:.1f} s; compile "
              + ", ".join(f"{dt} {r[f'pgmax_{dt}_compile_s']:.1f} s" for dt in dtypes) + ")")
        print(f"  ms/iter: lohard 1 thread {ms['lohard_1']:.2f}, lohard default "
              f"{ms['lohard_auto']:.2f} (threads used {r['lohard_auto_threads_used']}); "
              + ", ".join(f"PGMax {dt} {ms[f'pgmax_{dt}']:.1f} = "
                          f"{r['pgmax_over_lohard_1'][dt]:.1f}x lohard 1 thread"
                          for dt in dtypes))
        K, S = r["lohard_conv_iters"], r["pgmax_steps"]
        print(f"  lohard: max |delta nu| < {CONV_TOL:g} after {K} iterations "
              f"(converged: {r['lohard_converged']})")
        for dt in dtypes:
            x = r[dt]
            a, c, e = x["after_iters"], x["at_lohard_convergence"], x["at_end"]
            conv = (f"< {CONV_TOL:g} at iteration {x['first_below_conv_tol']}"
                    if x["first_below_conv_tol"] else
                    f"never < {CONV_TOL:g} in {S} iterations (< 1e-6 at iteration "
                    f"{x['first_below_1e6']}; smallest {x['min_change']:.1e} at iteration "
                    f"{x['argmin_change']}, last {x['last_change']:.1e})")
            print(f"  PGMax {dt}: max |diff| of beliefs / messages vs lohard after "
                  f"{r['iters']} iterations {a['beliefs']:.1e} / {a['messages']:.1e}; after {K} "
                  f"{c['beliefs']:.1e} / {c['messages']:.1e}; after {S} {e['beliefs']:.1e} / "
                  f"{e['messages']:.1e}")
            print(f"    PGMax's max |delta nu| {conv}; its own max |delta log nu| smallest "
                  f"{x['log_change_min']:.1e}, last {x['log_change_last']:.1e}")
    print(f"\nload average at the end: {' '.join(f'{x:.2f}' for x in out['loadavg_end'])}")


if __name__ == "__main__":
    main()
